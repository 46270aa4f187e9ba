// Packing and the macro-kernel loop, shared by the per-ISA kernel files. Everything here is `static` (internal
// linkage) on purpose: each ISA file compiles its own copy with its own flags.
#pragma once
#include "gemm_kernel.h"

namespace cnnlite {
namespace gemm_detail {

template <int MR>
static void pack_a_tmpl(float* __restrict dst, const float* __restrict a, idx lda, bool trans, idx mc, idx kc) {
  for (idx i0 = 0; i0 < mc; i0 += MR) {
    const idx rows = mc - i0 < MR ? mc - i0 : MR;
    float* __restrict d = dst + i0 * kc;
    if (trans) {  // op(a)(i, p) = a[p * lda + i]: each k step reads MR contiguous floats
      for (idx p = 0; p < kc; ++p) {
        const float* s = a + p * lda + i0;
        if (rows == MR) {
          for (int i = 0; i < MR; ++i) d[p * MR + i] = s[i];
        } else {
          for (int i = 0; i < MR; ++i) d[p * MR + i] = i < rows ? s[i] : 0.0f;
        }
      }
    } else {  // op(a)(i, p) = a[i * lda + p]: read rows contiguously, write with stride MR
      for (idx i = 0; i < rows; ++i) {
        const float* s = a + (i0 + i) * lda;
        for (idx p = 0; p < kc; ++p) d[p * MR + i] = s[p];
      }
      for (idx i = rows; i < MR; ++i)
        for (idx p = 0; p < kc; ++p) d[p * MR + i] = 0.0f;
    }
  }
}

template <int NR>
static void pack_b_tmpl(float* __restrict dst, const float* __restrict b, idx ldb, bool trans, idx kc, idx nc) {
  for (idx j0 = 0; j0 < nc; j0 += NR) {
    const idx cols = nc - j0 < NR ? nc - j0 : NR;
    float* __restrict d = dst + j0 * kc;
    if (!trans) {  // op(b)(p, j) = b[p * ldb + j]
      for (idx p = 0; p < kc; ++p) {
        const float* s = b + p * ldb + j0;
        if (cols == NR) {
          for (int j = 0; j < NR; ++j) d[p * NR + j] = s[j];
        } else {
          for (int j = 0; j < NR; ++j) d[p * NR + j] = j < cols ? s[j] : 0.0f;
        }
      }
    } else {  // op(b)(p, j) = b[j * ldb + p]
      for (idx j = 0; j < cols; ++j) {
        const float* s = b + (j0 + j) * ldb;
        for (idx p = 0; p < kc; ++p) d[p * NR + j] = s[p];
      }
      for (idx j = cols; j < NR; ++j)
        for (idx p = 0; p < kc; ++p) d[p * NR + j] = 0.0f;
    }
  }
}

// Loops the micro-kernel over a packed block: b-sliver outer (it stays in L1), a-slivers inner (streamed from L2).
template <int MR, int NR, class Micro>
static inline void macro_tmpl(Micro micro, idx mc, idx nc, idx kc, const float* ap, const float* bp, float* c,
                              idx ldc, float alpha, float beta, const float* bias) {
  for (idx j0 = 0; j0 < nc; j0 += NR) {
    const idx nv = nc - j0 < NR ? nc - j0 : NR;
    const float* bs = bp + j0 * kc;
    const float* bias_j = bias ? bias + j0 : nullptr;
    for (idx i0 = 0; i0 < mc; i0 += MR) {
      const idx mv = mc - i0 < MR ? mc - i0 : MR;
      micro(kc, ap + i0 * kc, bs, c + i0 * ldc + j0, ldc, alpha, beta, mv, nv, bias_j);
    }
  }
}

}  // namespace gemm_detail
}  // namespace cnnlite
