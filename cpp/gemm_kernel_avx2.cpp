// AVX2+FMA GEMM micro-kernel: 6 x 16 tile, 12 ymm accumulators.
#include <immintrin.h>

#include "gemm_pack.h"

namespace cnnlite {
namespace gemm_detail {
namespace {

constexpr int MR = 6;
constexpr int NR = 16;

// Lane mask for _mm256_maskload/maskstore: lanes [0, n) active.
inline __m256i lane_mask(idx n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int v = n < 0 ? 0 : n > 8 ? 8 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), lanes);
}

void micro_6x16(idx kc, const float* __restrict a, const float* __restrict b, float* c, idx ldc, float alpha,
                float beta, idx mv, idx nv, const float* bias) {
  __m256 acc0[MR], acc1[MR];
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm256_setzero_ps();
  for (idx p = 0; p < kc; ++p) {
    const __m256 b0 = _mm256_load_ps(b);
    const __m256 b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc0[i] = _mm256_fmadd_ps(ai, b0, acc0[i]);
      acc1[i] = _mm256_fmadd_ps(ai, b1, acc1[i]);
    }
    a += MR;
    b += NR;
  }
  const __m256i k0 = lane_mask(nv), k1 = lane_mask(nv - 8);
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  const __m256 bias0 = bias ? _mm256_maskload_ps(bias, k0) : _mm256_setzero_ps();
  const __m256 bias1 = bias ? _mm256_maskload_ps(bias + 8, k1) : _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    if (i >= mv) break;
    float* row = c + i * ldc;
    __m256 r0 = _mm256_mul_ps(va, acc0[i]);
    __m256 r1 = _mm256_mul_ps(va, acc1[i]);
    if (beta != 0.0f) {
      r0 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row, k0), r0);
      r1 = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8, k1), r1);
    }
    if (bias) {
      r0 = _mm256_add_ps(r0, bias0);
      r1 = _mm256_add_ps(r1, bias1);
    }
    _mm256_maskstore_ps(row, k0, r0);
    _mm256_maskstore_ps(row + 8, k1, r1);
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
  macro_tmpl<MR, NR>(micro_6x16, mc, nc, kc, ap, bp, c, ldc, alpha, beta, bias);
}

const GemmKernel kKernel = {"avx2", MR, NR, /*kc=*/256, /*mc=*/240, /*nc=*/4096, pack_a, pack_b, macro};

}  // namespace

const GemmKernel* gemm_kernel_avx2() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
