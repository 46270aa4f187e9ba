// Internal interface between the GEMM driver (gemm.cpp) and the per-ISA kernel files (gemm_kernel_*.cpp).
// The ISA files hold only intrinsics code with internal linkage plus one exported table each, so no inline function
// compiled with wider ISA flags can be picked by the linker for the portable code paths.
#pragma once
#include <cstdint>

namespace cnnlite {
namespace gemm_detail {

using idx = int64_t;

// How a micro-kernel reads its MR x kc sliver of op(a); element (i, p) is at
//   kPacked:  a[p * MR + i]   (packed, zero-padded to MR rows)
//   kColumns: a[p * lda + i]  (op(a) = a^T, read in place: each k step is MR contiguous floats)
//   kRows:    a[i * lda + p]  (op(a) = a, read in place: MR row streams)
enum AMode { kPacked = 0, kColumns = 1, kRows = 2 };

struct GemmKernel {
  const char* name;
  idx mr;          // micro-tile rows
  idx nr_wide;     // micro-tile columns
  idx nr_narrow;   // narrower micro-tile used when n <= nr_narrow (0: none)
  idx kc, mc, nc;  // cache blocks: depth, rows of an a-block (multiple of mr), columns of a b-panel
  // Packs the (mc x kc) block of op(a) starting at `a` into mr-row slivers, k-major, zero-padded to a multiple of mr.
  void (*pack_a)(float* dst, const float* a, idx lda, bool trans, idx mc, idx kc);
  // Packs the (kc x nc) block of op(b) starting at `b` into nr-column slivers, k-major, zero-padded to nr.
  void (*pack_b)(float* dst, const float* b, idx ldb, bool trans, idx kc, idx nc, idx nr);
  // c (mc x nc) = alpha * op(a) @ bp + beta * c [+ bias] [then max(., 0) if relu]; beta == 0: c not read. `mode` is
  // an AMode (gemm_pack.h): a packed by pack_a, or op(a) read in place with leading dimension lda. `edge` holds
  // mr * kc floats.
  void (*macro)(idx mc, idx nc, idx kc, const float* a, idx lda, int mode, const float* bp, idx nr, float* c, idx ldc,
                float alpha, float beta, const float* bias, bool relu, float* edge);
  // Indirect GEMM block: c (mc x nc) = A @ bp [+ bias] [then max(., 0) if relu], row i of A being the taps * cin floats
  // ind[i * taps + t][0 .. cin) for t = 0 .. taps; bp holds op(b) for the whole depth taps * cin packed in nr-slivers.
  // `zero` points at cin zeros (rows past mc read it); `scratch` holds taps * mr pointers.
  void (*macro_indirect)(idx mc, idx nc, idx taps, idx cin, const float* const* ind, const float* zero, const float* bp,
                         idx nr, float* c, idx ldc, const float* bias, bool relu, const float** scratch);
  // Transposed indirect GEMM block: rows [row0, row0 + mc) and columns (nc) of c = A^T @ bp + beta * c, where A
  // (kc x m, m = taps * span) has row p equal to the concatenation over t of the span floats at ind[p * taps + t].
  // `edge` holds mr * kc floats.
  void (*macro_indirect_t)(idx mc, idx nc, idx kc, const float* const* ind, idx taps, idx span, idx row0, idx m,
                           const float* bp, idx nr, float* c, idx ldc, float beta, float* edge);
};

const GemmKernel* gemm_kernel_generic();
#ifdef CNNLITE_X86
const GemmKernel* gemm_kernel_avx2();
const GemmKernel* gemm_kernel_avx512();
#endif

}  // namespace gemm_detail
}  // namespace cnnlite
