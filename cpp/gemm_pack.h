// Packing and the macro-kernel loops, shared by the per-ISA kernel files. Everything here is `static` (internal
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
    if (trans) {
      for (idx p = 0; p < kc; ++p) {
        const float* s = a + p * lda + i0;
        if (rows == MR) {
          for (int i = 0; i < MR; ++i) d[p * MR + i] = s[i];
        } else {
          for (int i = 0; i < MR; ++i) d[p * MR + i] = i < rows ? s[i] : 0.0f;
        }
      }
    } else {  // read rows contiguously, write with stride MR
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

// Operand-a accessors for the micro-kernels: at k step p (after p calls to next()), element i of the MR-row sliver
// is *at(i).
template <int MR>
struct APacked {  // packed, zero-padded to MR rows: a[p * MR + i]
  const float* p;
  const float* at(int i) const { return p + i; }
  void next() { p += MR; }
};
struct AColumns {  // op(a) = a^T read in place: a[p * lda + i]
  const float* p;
  idx lda;
  const float* at(int i) const { return p + i; }
  void next() { p += lda; }
};
struct ARows {  // op(a) = a read in place: a[i * lda + p]
  const float* p;
  idx lda;
  const float* at(int i) const { return p + i * lda; }
  void next() { p += 1; }
};
struct AIndirectColumns {  // (k, taps * span) rows given by pointers, transposed: ind[p * taps][s0 + i]
  const float* const* ind;
  idx taps, s0;
  const float* at(int i) const { return *ind + s0 + i; }
  void next() { ind += taps; }
};

// Loops a micro-kernel family over one (mc x nc x kc) block. Micro<NR>::run(kc, acc, b, c, ldc, alpha, beta, mv, nv,
// bias, relu) computes one MR x NR tile reading a through the accessor `acc`. With a packed a-block the b-sliver is the
// outer loop (it stays in L1) and the a-slivers stream from L2; with a read in place the a-sliver is the outer loop
// (it stays in L1) and the few packed b-slivers are the inner one. In-place edge slivers (fewer than MR rows) are
// first copied into `edge` (MR * kc floats, zero-padded) so no row past the matrix is ever read.
template <int MR, int NR, template <int> class Micro>
static void macro_tmpl(idx mc, idx nc, idx kc, const float* a, idx lda, int mode, const float* bp, float* c, idx ldc,
                       float alpha, float beta, const float* bias, bool relu, float* edge) {
  if (mode == kPacked) {
    for (idx j0 = 0; j0 < nc; j0 += NR) {
      const idx nv = nc - j0 < NR ? nc - j0 : NR;
      const float* bs = bp + j0 * kc;
      const float* bias_j = bias ? bias + j0 : nullptr;
      for (idx i0 = 0; i0 < mc; i0 += MR) {
        const idx mv = mc - i0 < MR ? mc - i0 : MR;
        Micro<NR>::run(kc, APacked<MR>{a + i0 * kc}, bs, c + i0 * ldc + j0, ldc, alpha, beta, mv, nv, bias_j, relu);
      }
    }
    return;
  }
  for (idx i0 = 0; i0 < mc; i0 += MR) {
    const idx mv = mc - i0 < MR ? mc - i0 : MR;
    const float* as = mode == kColumns ? a + i0 : a + i0 * lda;
    const bool packed_edge = mv < MR;
    if (packed_edge) pack_a_tmpl<MR>(edge, as, lda, mode == kColumns, mv, kc);
    for (idx j0 = 0; j0 < nc; j0 += NR) {
      const idx nv = nc - j0 < NR ? nc - j0 : NR;
      const float* bs = bp + j0 * kc;
      float* ct = c + i0 * ldc + j0;
      const float* bias_j = bias ? bias + j0 : nullptr;
      if (packed_edge)
        Micro<NR>::run(kc, APacked<MR>{edge}, bs, ct, ldc, alpha, beta, mv, nv, bias_j, relu);
      else if (mode == kColumns)
        Micro<NR>::run(kc, AColumns{as, lda}, bs, ct, ldc, alpha, beta, mv, nv, bias_j, relu);
      else
        Micro<NR>::run(kc, ARows{as, lda}, bs, ct, ldc, alpha, beta, mv, nv, bias_j, relu);
    }
  }
}

// Transposed indirect variant (see GemmKernel::macro_indirect_t): c rows [row0, row0 + mc) of A^T @ b. A sliver that
// lies inside one kernel-row span is read through the pointers; one that straddles two spans, or the matrix end, is
// gathered into `edge` first.
template <int MR, int NR, template <int> class Micro>
static void macro_indirect_t_tmpl(idx mc, idx nc, idx kc, const float* const* ind, idx taps, idx span, idx row0, idx m,
                                  const float* bp, float* c, idx ldc, float beta, float* edge) {
  for (idx i0 = 0; i0 < mc; i0 += MR) {
    const idx mv = mc - i0 < MR ? mc - i0 : MR;
    const idx r = row0 + i0, t0 = r / span, s0 = r % span;
    const bool direct = mv == MR && s0 + MR <= span;
    if (!direct) {
      for (idx p = 0; p < kc; ++p)
        for (int i = 0; i < MR; ++i) {
          const idx ri = r + i;
          edge[p * MR + i] = i < mv && ri < m ? ind[p * taps + ri / span][ri % span] : 0.0f;
        }
    }
    for (idx j0 = 0; j0 < nc; j0 += NR) {
      const idx nv = nc - j0 < NR ? nc - j0 : NR;
      const float* bs = bp + j0 * kc;
      float* ct = c + i0 * ldc + j0;
      if (direct)
        Micro<NR>::run(kc, AIndirectColumns{ind + t0, taps, s0}, bs, ct, ldc, 1.0f, beta, mv, nv, nullptr, false);
      else
        Micro<NR>::run(kc, APacked<MR>{edge}, bs, ct, ldc, 1.0f, beta, mv, nv, nullptr, false);
    }
  }
}

// Indirect variant (see GemmKernel::macro_indirect): per MR-row sliver, the row pointers are first gathered tap-major
// into `scratch` (rows past mc point at `zero`), then MicroInd<NR>::run(taps, cin, scratch, b, c, ldc, mv, nv, bias,
// relu)
// runs over every b-sliver.
template <int MR, int NR, template <int> class MicroInd>
static void macro_indirect_tmpl(idx mc, idx nc, idx taps, idx cin, const float* const* ind, const float* zero,
                                const float* bp, float* c, idx ldc, const float* bias, bool relu,
                                const float** scratch) {
  const idx depth = taps * cin;
  for (idx i0 = 0; i0 < mc; i0 += MR) {
    const idx mv = mc - i0 < MR ? mc - i0 : MR;
    for (idx t = 0; t < taps; ++t)
      for (idx i = 0; i < MR; ++i) scratch[t * MR + i] = i < mv ? ind[(i0 + i) * taps + t] : zero;
    for (idx j0 = 0; j0 < nc; j0 += NR) {
      const idx nv = nc - j0 < NR ? nc - j0 : NR;
      MicroInd<NR>::run(taps, cin, scratch, bp + j0 * depth, c + i0 * ldc + j0, ldc, mv, nv,
                        bias ? bias + j0 : nullptr, relu);
    }
  }
}

// One ISA file's exported table: its micro-kernel families instantiated into the loops above for a wide (NRW) and a
// narrow (NRN) tile width. In an unnamed namespace, so each ISA file compiles its own copy with its own flags.
namespace {
template <int MR, int NRW, int NRN, template <int> class Micro, template <int> class MicroInd>
struct KernelTable {
  static void pack_a(float* dst, const float* a, idx lda, bool trans, idx mc, idx kc) {
    pack_a_tmpl<MR>(dst, a, lda, trans, mc, kc);
  }
  static void pack_b(float* dst, const float* b, idx ldb, bool trans, idx kc, idx nc, idx nr) {
    if (nr == NRN)
      pack_b_tmpl<NRN>(dst, b, ldb, trans, kc, nc);
    else
      pack_b_tmpl<NRW>(dst, b, ldb, trans, kc, nc);
  }
  static void macro(idx mc, idx nc, idx kc, const float* a, idx lda, int mode, const float* bp, idx nr, float* c,
                    idx ldc, float alpha, float beta, const float* bias, bool relu, float* edge) {
    if (nr == NRN)
      macro_tmpl<MR, NRN, Micro>(mc, nc, kc, a, lda, mode, bp, c, ldc, alpha, beta, bias, relu, edge);
    else
      macro_tmpl<MR, NRW, Micro>(mc, nc, kc, a, lda, mode, bp, c, ldc, alpha, beta, bias, relu, edge);
  }
  static void macro_indirect(idx mc, idx nc, idx taps, idx cin, const float* const* ind, const float* zero,
                             const float* bp, idx nr, float* c, idx ldc, const float* bias, bool relu,
                             const float** scratch) {
    if (nr == NRN)
      macro_indirect_tmpl<MR, NRN, MicroInd>(mc, nc, taps, cin, ind, zero, bp, c, ldc, bias, relu, scratch);
    else
      macro_indirect_tmpl<MR, NRW, MicroInd>(mc, nc, taps, cin, ind, zero, bp, c, ldc, bias, relu, scratch);
  }
  static void macro_indirect_t(idx mc, idx nc, idx kc, const float* const* ind, idx taps, idx span, idx row0, idx m,
                               const float* bp, idx nr, float* c, idx ldc, float beta, float* edge) {
    if (nr == NRN)
      macro_indirect_t_tmpl<MR, NRN, Micro>(mc, nc, kc, ind, taps, span, row0, m, bp, c, ldc, beta, edge);
    else
      macro_indirect_t_tmpl<MR, NRW, Micro>(mc, nc, kc, ind, taps, span, row0, m, bp, c, ldc, beta, edge);
  }
  static GemmKernel make(const char* name, idx kc, idx mc, idx nc) {
    return {name, MR, NRW, NRN, kc, mc, nc, pack_a, pack_b, macro, macro_indirect, macro_indirect_t};
  }
};
}  // namespace

}  // namespace gemm_detail
}  // namespace cnnlite
