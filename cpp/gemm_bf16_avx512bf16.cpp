// The AVX512_BF16 micro-kernel of gemm_bf16 (gemm_bf16.h): 12 x 32 (24 zmm accumulators) or, for n <= 16, 12 x 16;
// per k-pair one broadcast of a's bf16 pair and one vdpbf16ps per accumulator. Compiled with AVX512_BF16 flags, so
// only called after the run-time check in gemm_bf16.cpp.
#include <immintrin.h>

#include "gemm_bf16.h"

namespace cnnlite {
namespace gemm_bf16_detail {
namespace {

constexpr int MR = kMR;

inline __mmask16 low_mask(idx n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

template <int NV>
void micro(idx kp, const uint32_t* a, const uint32_t* b, float* c, idx ldc, idx mv, idx nv, const float* bias,
           bool relu) {
  constexpr int NR = 16 * NV;
  __m512 acc[MR][NV];
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  for (idx q = 0; q < kp; ++q) {
    __m512bh bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) bv[v] = (__m512bh)_mm512_loadu_si512(b + 16 * v);
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i) {
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(a[i]));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
    }
    a += MR;
    b += NR;
  }
  __mmask16 mask[NV];
  __m512 bias_v[NV];
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mask[v] = low_mask(nv - 16 * v);
    bias_v[v] = bias ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= mv) break;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 r = acc[i][v];
      if (bias) r = _mm512_add_ps(r, bias_v[v]);
      if (relu) r = _mm512_max_ps(_mm512_setzero_ps(), r);  // NaN and -0 pass, as r < 0 ? 0 : r
      _mm512_mask_storeu_ps(c + i * ldc + 16 * v, mask[v], r);
    }
  }
}

}  // namespace

MicroFn micro_avx512bf16(int nv_vectors) { return nv_vectors == 1 ? micro<1> : micro<2>; }

}  // namespace gemm_bf16_detail
}  // namespace cnnlite
