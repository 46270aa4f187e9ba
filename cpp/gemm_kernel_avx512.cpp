// AVX-512 GEMM micro-kernels: 12 x 32 (24 zmm accumulators) and, for n <= 16, 12 x 16; one broadcast of a and one
// FMA per accumulator and k step.
#include <immintrin.h>

#include "gemm_pack.h"

namespace cnnlite {
namespace gemm_detail {
namespace {

constexpr int MR = 12;

inline __mmask16 low_mask(idx n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// c tile (mv x nv) = alpha * acc + beta * c [+ bias] [then max(., 0) with relu]; beta == 0: c not read.
template <int NV>
__attribute__((always_inline)) inline void store_tile(const __m512 (&acc)[MR][NV], float* c, idx ldc, float alpha,
                                                      float beta, idx mv, idx nv, const float* bias,
                                                      bool relu) {
  __mmask16 mask[NV];
  __m512 bias_v[NV];
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mask[v] = low_mask(nv - 16 * v);
    bias_v[v] = bias ? _mm512_maskz_loadu_ps(mask[v], bias + 16 * v) : _mm512_setzero_ps();
  }
#pragma GCC unroll 12
  for (int i = 0; i < MR; ++i) {
    if (i >= mv) break;
    float* row = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m512 r = alpha == 1.0f ? acc[i][v] : _mm512_mul_ps(va, acc[i][v]);
      if (beta != 0.0f) r = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask[v], row + 16 * v), r);
      if (bias) r = _mm512_add_ps(r, bias_v[v]);
      // max(0, r) returns r when r is NaN: NaN propagates and -0 stays -0, as relu_forward's r < 0 ? 0 : r.
      if (relu) r = _mm512_max_ps(_mm512_setzero_ps(), r);
      _mm512_mask_storeu_ps(row + 16 * v, mask[v], r);
    }
  }
}

// One MR x NR tile; a last, half-empty tile of a 2-vector-wide sliver runs the 1-vector kernel (same b layout).
template <int NR>
struct Micro {
  static constexpr int NV = NR / 16;
  template <class Acc>
  __attribute__((always_inline)) static inline void run(idx kc, Acc a, const float* __restrict b, float* c, idx ldc,
                                                        float alpha, float beta, idx mv, idx nv, const float* bias,
                                                        bool relu) {
    if constexpr (NV == 2) {
      if (nv <= 16) return tile<1>(kc, a, b, c, ldc, alpha, beta, mv, nv, bias, relu);
    }
    tile<NV>(kc, a, b, c, ldc, alpha, beta, mv, nv, bias, relu);
  }
  template <int TV, class Acc>
  __attribute__((always_inline)) static inline void tile(idx kc, Acc a, const float* __restrict b, float* c, idx ldc,
                                                         float alpha, float beta, idx mv, idx nv, const float* bias,
                                                        bool relu) {
    __m512 acc[MR][TV];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < TV; ++v) acc[i][v] = _mm512_setzero_ps();
    for (idx p = 0; p < kc; ++p) {
      __m512 bv[TV];
#pragma GCC unroll 2
      for (int v = 0; v < TV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 12
      for (int i = 0; i < MR; ++i) {
        const __m512 ai = _mm512_set1_ps(*a.at(i));
#pragma GCC unroll 2
        for (int v = 0; v < TV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
      }
      a.next();
      b += NR;
    }
    store_tile<TV>(acc, c, ldc, alpha, beta, mv, nv, bias, relu);
  }
};

template <int NR>
struct MicroInd {
  static constexpr int NV = NR / 16;
  __attribute__((always_inline)) static inline void run(idx taps, idx cin, const float* const* ptrs,
                                                        const float* __restrict b, float* c, idx ldc, idx mv, idx nv,
                                                        const float* bias, bool relu) {
    if constexpr (NV == 2) {
      if (nv <= 16) return tile<1>(taps, cin, ptrs, b, c, ldc, mv, nv, bias, relu);
    }
    tile<NV>(taps, cin, ptrs, b, c, ldc, mv, nv, bias, relu);
  }
  template <int TV>
  __attribute__((always_inline)) static inline void tile(idx taps, idx cin, const float* const* ptrs,
                                                         const float* __restrict b, float* c, idx ldc, idx mv, idx nv,
                                                         const float* bias, bool relu) {
    __m512 acc[MR][TV];
#pragma GCC unroll 12
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < TV; ++v) acc[i][v] = _mm512_setzero_ps();
    for (idx t = 0; t < taps; ++t, ptrs += MR) {
      for (idx ci = 0; ci < cin; ++ci) {
        __m512 bv[TV];
#pragma GCC unroll 2
        for (int v = 0; v < TV; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 12
        for (int i = 0; i < MR; ++i) {
          const __m512 ai = _mm512_set1_ps(ptrs[i][ci]);
#pragma GCC unroll 2
          for (int v = 0; v < TV; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        b += NR;
      }
    }
    store_tile<TV>(acc, c, ldc, 1.0f, 0.0f, mv, nv, bias, relu);
  }
};

const GemmKernel kKernel =
    KernelTable<MR, 32, 16, Micro, MicroInd>::make("avx512", /*kc=*/256, /*mc=*/240, /*nc=*/4096);

}  // namespace

const GemmKernel* gemm_kernel_avx512() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
