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

template <int NV, bool RowMajor>
__attribute__((always_inline)) inline void tile(idx kp, const uint32_t* a, idx ars, idx aps, const uint32_t* b,
                                                float* c, idx ldc, idx mv, idx nv, const float* bias, bool relu) {
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
      const __m512bh ai = (__m512bh)_mm512_set1_epi32(static_cast<int>(RowMajor ? a[i * ars] : a[i]));
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_dpbf16_ps(acc[i][v], ai, bv[v]);
    }
    a += RowMajor ? 1 : aps;
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

template <int NV>
void micro(idx kp, const uint32_t* a, idx ars, idx aps, const uint32_t* b, float* c, idx ldc, idx mv, idx nv,
           const float* bias, bool relu) {
  if (ars > 0)
    tile<NV, true>(kp, a, ars, aps, b, c, ldc, mv, nv, bias, relu);
  else
    tile<NV, false>(kp, a, ars, aps, b, c, ldc, mv, nv, bias, relu);
}

void convert_rows(uint32_t* dst, idx dst_ld, const float* x, idx ld, idx rows, idx k) {
  for (idx r = 0; r < rows; ++r) {
    const float* src = x + r * ld;
    uint32_t* d = dst + r * dst_ld;
    for (idx p = 0; p < k; p += 32) {
      const idx rem = k - p;
      const __mmask16 mlo = low_mask(rem), mhi = low_mask(rem - 16);
      const __m512 lo = _mm512_maskz_loadu_ps(mlo, src + p), hi = _mm512_maskz_loadu_ps(mhi, src + p + 16);
      const __m512i pairs = (__m512i)_mm512_cvtne2ps_pbh(hi, lo);  // bf16 j < 16 from lo, j >= 16 from hi
      _mm512_mask_storeu_epi32(d + p / 2, low_mask((rem + 1) / 2), pairs);
    }
  }
}

void pack_pairs(uint32_t* dst, idx width, const float* x, idx ld, idx k, idx count) {
  const idx kp = (k + 1) / 2;
  for (idx q = 0; q < kp; ++q) {
    const float* lo = x + 2 * q * ld;
    const bool has_hi = 2 * q + 1 < k;
    uint32_t* d = dst + q * width;
    for (idx r = 0; r < width; r += 16) {
      const __mmask16 m = low_mask(count - r);  // past count: zeros (masked loads of nothing)
      const __m512i l = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, lo + r)));
      __m512i pairs = l;
      if (has_hi) {
        const __m512i h = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(m, lo + ld + r)));
        pairs = _mm512_or_si512(l, _mm512_slli_epi32(h, 16));
      }
      _mm512_mask_storeu_epi32(d + r, low_mask(width - r), pairs);
    }
  }
}

}  // namespace

PackPairsFn pack_pairs_avx512bf16() { return pack_pairs; }
MicroFn micro_avx512bf16(int nv_vectors) { return nv_vectors == 1 ? micro<1> : micro<2>; }
ConvertFn convert_rows_avx512bf16() { return convert_rows; }

}  // namespace gemm_bf16_detail
}  // namespace cnnlite
