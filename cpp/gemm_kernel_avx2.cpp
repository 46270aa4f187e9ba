// AVX2+FMA GEMM micro-kernels: 6 x 16 (12 ymm accumulators) and, for n <= 8, 6 x 8.
#include <immintrin.h>

#include "gemm_pack.h"

namespace cnnlite {
namespace gemm_detail {
namespace {

constexpr int MR = 6;

// Lane mask for _mm256_maskload/maskstore: lanes [0, n) active.
inline __m256i lane_mask(idx n) {
  const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int v = n < 0 ? 0 : n > 8 ? 8 : static_cast<int>(n);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(v), lanes);
}

// c tile (mv x nv) = alpha * acc + beta * c [+ bias] [then max(., 0) with relu]; beta == 0: c not read.
template <int NV>
__attribute__((always_inline)) inline void store_tile(const __m256 (&acc)[MR][NV], float* c, idx ldc, float alpha,
                                                      float beta, idx mv, idx nv, const float* bias,
                                                      bool relu) {
  __m256i mask[NV];
  __m256 bias_v[NV];
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#pragma GCC unroll 2
  for (int v = 0; v < NV; ++v) {
    mask[v] = lane_mask(nv - 8 * v);
    bias_v[v] = bias ? _mm256_maskload_ps(bias + 8 * v, mask[v]) : _mm256_setzero_ps();
  }
#pragma GCC unroll 6
  for (int i = 0; i < MR; ++i) {
    if (i >= mv) break;
    float* row = c + i * ldc;
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      __m256 r = alpha == 1.0f ? acc[i][v] : _mm256_mul_ps(va, acc[i][v]);
      if (beta != 0.0f) r = _mm256_fmadd_ps(vb, _mm256_maskload_ps(row + 8 * v, mask[v]), r);
      if (bias) r = _mm256_add_ps(r, bias_v[v]);
      // max(0, r) returns r when r is NaN: NaN propagates and -0 stays -0, as relu_forward's r < 0 ? 0 : r.
      if (relu) r = _mm256_max_ps(_mm256_setzero_ps(), r);
      _mm256_maskstore_ps(row + 8 * v, mask[v], r);
    }
  }
}

// One MR x NR tile; a last, half-empty tile of a 2-vector-wide sliver runs the 1-vector kernel (same b layout).
template <int NR>
struct Micro {
  static constexpr int NV = NR / 8;
  template <class Acc>
  __attribute__((always_inline)) static inline void run(idx kc, Acc a, const float* __restrict b, float* c, idx ldc,
                                                        float alpha, float beta, idx mv, idx nv, const float* bias,
                                                        bool relu) {
    if constexpr (NV == 2) {
      if (nv <= 8) return tile<1>(kc, a, b, c, ldc, alpha, beta, mv, nv, bias, relu);
    }
    tile<NV>(kc, a, b, c, ldc, alpha, beta, mv, nv, bias, relu);
  }
  template <int TV, class Acc>
  __attribute__((always_inline)) static inline void tile(idx kc, Acc a, const float* __restrict b, float* c, idx ldc,
                                                         float alpha, float beta, idx mv, idx nv, const float* bias,
                                                        bool relu) {
    __m256 acc[MR][TV];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < TV; ++v) acc[i][v] = _mm256_setzero_ps();
    for (idx p = 0; p < kc; ++p) {
      __m256 bv[TV];
#pragma GCC unroll 2
      for (int v = 0; v < TV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
      for (int i = 0; i < MR; ++i) {
        const __m256 ai = _mm256_broadcast_ss(a.at(i));
#pragma GCC unroll 2
        for (int v = 0; v < TV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
      }
      a.next();
      b += NR;
    }
    store_tile<TV>(acc, c, ldc, alpha, beta, mv, nv, bias, relu);
  }
};

template <int NR>
struct MicroInd {
  static constexpr int NV = NR / 8;
  __attribute__((always_inline)) static inline void run(idx taps, idx cin, const float* const* ptrs,
                                                        const float* __restrict b, float* c, idx ldc, idx mv, idx nv,
                                                        const float* bias, bool relu) {
    if constexpr (NV == 2) {
      if (nv <= 8) return tile<1>(taps, cin, ptrs, b, c, ldc, mv, nv, bias, relu);
    }
    tile<NV>(taps, cin, ptrs, b, c, ldc, mv, nv, bias, relu);
  }
  template <int TV>
  __attribute__((always_inline)) static inline void tile(idx taps, idx cin, const float* const* ptrs,
                                                         const float* __restrict b, float* c, idx ldc, idx mv, idx nv,
                                                         const float* bias, bool relu) {
    __m256 acc[MR][TV];
#pragma GCC unroll 6
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 2
      for (int v = 0; v < TV; ++v) acc[i][v] = _mm256_setzero_ps();
    for (idx t = 0; t < taps; ++t, ptrs += MR) {
      for (idx ci = 0; ci < cin; ++ci) {
        __m256 bv[TV];
#pragma GCC unroll 2
        for (int v = 0; v < TV; ++v) bv[v] = _mm256_loadu_ps(b + 8 * v);
#pragma GCC unroll 6
        for (int i = 0; i < MR; ++i) {
          const __m256 ai = _mm256_broadcast_ss(ptrs[i] + ci);
#pragma GCC unroll 2
          for (int v = 0; v < TV; ++v) acc[i][v] = _mm256_fmadd_ps(ai, bv[v], acc[i][v]);
        }
        b += NR;
      }
    }
    store_tile<TV>(acc, c, ldc, 1.0f, 0.0f, mv, nv, bias, relu);
  }
};

const GemmKernel kKernel =
    KernelTable<MR, 16, 8, Micro, MicroInd>::make("avx2", /*kc=*/256, /*mc=*/240, /*nc=*/4096);

}  // namespace

const GemmKernel* gemm_kernel_avx2() { return &kKernel; }

}  // namespace gemm_detail
}  // namespace cnnlite
