// AVX-512 GEMM micro-kernel: 12 x 32 tile, 24 zmm accumulators, one broadcast + two FMAs per row and k step.
#include <immintrin.h>

#include "gemm_pack.h"

namespace cnnlite {
namespace gemm_detail {
namespace {

constexpr int MR = 12;
constexpr int NR = 32;

inline __mmask16 low_mask(idx n) { return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }

void micro_12x32(idx kc, const float* __restrict a, const float* __restrict b, float* c, idx ldc, float alpha,
                 float beta, idx mv, idx nv, const float* bias) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (idx p = 0; p < kc; ++p) {
    const __m512 b0 = _mm512_load_ps(b);
    const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      acc0[i] = _mm512_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm512_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += NR;
  }
  const __mmask16 m0 = low_mask(nv), m1 = low_mask(nv - 16);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
  const __m512 bias0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  const __m512 bias1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= mv) break;
    float* row = c + i * ldc;
    __m512 r0 = _mm512_mul_ps(va, acc0[i]);
    __m512 r1 = _mm512_mul_ps(va, acc1[i]);
    if (beta != 0.0f) {
      r0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, row), r0);
      r1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, row + 16), r1);
    }
    if (bias) {
      r0 = _mm512_add_ps(r0, bias0);
      r1 = _mm512_add_ps(r1, bias1);
    }
    _mm512_mask_storeu_ps(row, m0, r0);
    _mm512_mask_storeu_ps(row + 16, m1, r1);
  }
}

void pack_a(float* dst, const float* a, idx lda, bool trans, idx mc, idx kc) {
  pack_a_tmpl<MR>(dst, a, lda, trans, mc, kc);
}
void pack_b(float* dst, const float* b, idx ldb, bool trans, idx kc, idx nc) {
  pack_b_tmpl<NR>(dst, b, ldb, trans, kc, nc);
}
void macro(idx mc, idx nc, idx kc, const float* ap, const float* bp, float* c, idx ldc, float alpha, float beta,
           const float* bias) {
  macro_tmpl<MR, NR>(micro_12x32, mc, nc, kc, ap, bp, c, ldc, alpha, beta, bias);
}

const GemmKernel kKernel = {"avx512", MR, NR, /*kc=*/256, /*mc=*/240, /*nc=*/4096, pack_a, pack_b, macro};

}  // namespace

const GemmKernel* gemm_kernel_avx512() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
