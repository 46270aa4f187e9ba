// AVX-512 skinny GEMM kernels (gemm_skinny.h): vectorised across the long dimension, one FMA per output element and
// k step, in k order from zero, as the sgemm micro-kernels.
#include <immintrin.h>

#include <algorithm>

#include "common.h"

namespace cnnlite {
namespace gemm_detail {

using idx = int64_t;

namespace {

inline __mmask16 low_mask(idx n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1);
}

// A tn strip is RV x 16 rows of c and all of its n <= 16 columns, n * RV <= 24 accumulators: RV = 3 up to 8 columns, 2
// up to 12, else 1. Each k step loads RV vectors of a row of a (whole cache lines) and broadcasts n floats of b.
constexpr int strip_vectors(int n) { return n <= 8 ? 3 : n <= 12 ? 2 : 1; }

// c rows [0, rows) of the strip at `c` (ldc) = a^T @ b, columns [0, G) of b, depth [0, k) in blocks of kc_max: per
// block acc = fma(a[p][r], b[p][j], acc) from zero in p order (sgemm's fma(a, b, acc) with the product commuted: the
// same rounding), then c = acc (first block) or c + acc, as sgemm's store with beta 0, then 1. The lines of a two
// strips ahead are prefetched into L2 (the rows of a are far apart: too many streams for the hardware prefetcher;
// into L1 they would evict the current strip's lines, which share few cache sets: measured 2x slower).
template <int G>
void tn_strip(float* c, idx ldc, const float* a, idx lda, const float* b, idx ldb, idx rows, idx k, idx kc_max) {
  constexpr int RV = strip_vectors(G);
  constexpr int kRows = 16 * RV;
  alignas(64) float tmp[G * kRows];
  __mmask16 mask[RV];
#pragma GCC unroll 3
  for (int v = 0; v < RV; ++v) mask[v] = low_mask(rows - 16 * v);
  for (idx pc = 0; pc < k; pc += kc_max) {
    const idx kc = std::min<idx>(kc_max, k - pc);
    __m512 acc[G][RV];
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 3
      for (int v = 0; v < RV; ++v) acc[g][v] = _mm512_setzero_ps();
    for (idx p = pc; p < pc + kc; ++p) {
      const float* ap = a + p * lda;
#pragma GCC unroll 3
      for (int v = 0; v < RV; ++v) _mm_prefetch(reinterpret_cast<const char*>(ap + 2 * kRows + 16 * v), _MM_HINT_T1);
      __m512 x[RV];
#pragma GCC unroll 3
      for (int v = 0; v < RV; ++v) x[v] = _mm512_maskz_loadu_ps(mask[v], ap + 16 * v);
      const float* bp = b + p * ldb;
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) {
        const __m512 bv = _mm512_set1_ps(bp[g]);
#pragma GCC unroll 3
        for (int v = 0; v < RV; ++v) acc[g][v] = _mm512_fmadd_ps(x[v], bv, acc[g][v]);
      }
    }
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g)
#pragma GCC unroll 3
      for (int v = 0; v < RV; ++v) _mm512_store_ps(tmp + g * kRows + 16 * v, acc[g][v]);
    for (idx i = 0; i < rows; ++i) {
      float* row = c + i * ldc;
      if (pc == 0) {
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) row[g] = tmp[g * kRows + i];
      } else {
#pragma GCC unroll 16
        for (int g = 0; g < G; ++g) row[g] = row[g] + tmp[g * kRows + i];
      }
    }
  }
}

// c (rows, n) = a (rows, KK, lda) @ wt (KK, n): per 16 columns the KK rows of wt stay in registers and every row of
// c runs its chain acc = fma(a[i][p], wt[p][j], acc) from zero in p order.
template <int KK, int R>
__attribute__((always_inline)) inline void nt_rows(float* c, idx ldc, const float* a, idx lda, const float* wt,
                                                   idx n) {
  for (idx j = 0; j < n; j += 16) {
    const __mmask16 m = low_mask(n - j);
    __m512 w[KK];
#pragma GCC unroll 16
    for (int p = 0; p < KK; ++p) w[p] = _mm512_maskz_loadu_ps(m, wt + p * n + j);
    __m512 acc[R];
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
#pragma GCC unroll 16
    for (int p = 0; p < KK; ++p)
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(a[i * lda + p]), w[p], acc[i]);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) _mm512_mask_storeu_ps(c + i * ldc + j, m, acc[i]);
  }
}

template <int KK>
void nt_block(float* c, idx ldc, const float* a, idx lda, const float* wt, idx rows, idx n) {
  if (rows == 8) return nt_rows<KK, 8>(c, ldc, a, lda, wt, n);
  for (idx i = 0; i < rows; ++i) nt_rows<KK, 1>(c + i * ldc, ldc, a + i * lda, lda, wt, n);
}

}  // namespace

idx skinny_tn_strip_rows_avx512(idx n) { return 16 * strip_vectors(static_cast<int>(n)); }

void skinny_tn_strip_avx512(float* c, idx ldc, const float* a, idx lda, const float* b, idx ldb, idx rows, idx n,
                            idx k, idx kc_max) {
  switch (n) {
#define CNNLITE_TN_CASE(G) \
  case G: return tn_strip<G>(c, ldc, a, lda, b, ldb, rows, k, kc_max);
    CNNLITE_TN_CASE(1) CNNLITE_TN_CASE(2) CNNLITE_TN_CASE(3) CNNLITE_TN_CASE(4) CNNLITE_TN_CASE(5)
    CNNLITE_TN_CASE(6) CNNLITE_TN_CASE(7) CNNLITE_TN_CASE(8) CNNLITE_TN_CASE(9) CNNLITE_TN_CASE(10)
    CNNLITE_TN_CASE(11) CNNLITE_TN_CASE(12) CNNLITE_TN_CASE(13) CNNLITE_TN_CASE(14) CNNLITE_TN_CASE(15)
    CNNLITE_TN_CASE(16)
#undef CNNLITE_TN_CASE
    default: break;
  }
}

void skinny_nt_rows_avx512(float* c, idx ldc, const float* a, idx lda, const float* wt, idx rows, idx n, idx k) {
  switch (k) {
#define CNNLITE_NT_CASE(KK) \
  case KK: return nt_block<KK>(c, ldc, a, lda, wt, rows, n);
    CNNLITE_NT_CASE(1) CNNLITE_NT_CASE(2) CNNLITE_NT_CASE(3) CNNLITE_NT_CASE(4) CNNLITE_NT_CASE(5)
    CNNLITE_NT_CASE(6) CNNLITE_NT_CASE(7) CNNLITE_NT_CASE(8) CNNLITE_NT_CASE(9) CNNLITE_NT_CASE(10)
    CNNLITE_NT_CASE(11) CNNLITE_NT_CASE(12) CNNLITE_NT_CASE(13) CNNLITE_NT_CASE(14) CNNLITE_NT_CASE(15)
    CNNLITE_NT_CASE(16)
#undef CNNLITE_NT_CASE
    default: break;
  }
}

}  // namespace gemm_detail
}  // namespace cnnlite
