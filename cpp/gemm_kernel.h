// Internal interface between the GEMM driver (gemm.cpp) and the per-ISA kernel files (gemm_kernel_*.cpp).
// The ISA files hold only intrinsics code with internal linkage plus one exported table each, so no inline function
// compiled with wider ISA flags can be picked by the linker for the portable code paths.
#pragma once
#include <cstdint>

namespace cnnlite {
namespace gemm_detail {

using idx = int64_t;

struct GemmKernel {
  const char* name;
  idx mr, nr;      // micro-tile: rows of op(a) x columns of op(b)
  idx kc, mc, nc;  // cache blocks: depth, rows of an a-block (multiple of mr), columns of a b-panel (multiple of nr)
  // Packs the (mc x kc) block of op(a) starting at `a` into mr-row slivers, k-major, zero-padded to a multiple of mr.
  void (*pack_a)(float* dst, const float* a, idx lda, bool trans, idx mc, idx kc);
  // Packs the (kc x nc) block of op(b) starting at `b` into nr-column slivers, k-major, zero-padded to nr.
  void (*pack_b)(float* dst, const float* b, idx ldb, bool trans, idx kc, idx nc);
  // c (mc x nc) = alpha * ap @ bp + beta * c [+ bias]; beta == 0: c not read. Edge tiles handled.
  void (*macro)(idx mc, idx nc, idx kc, const float* ap, const float* bp, float* c, idx ldc, float alpha, float beta,
                const float* bias);
};

const GemmKernel* gemm_kernel_generic();
#ifdef CNNLITE_X86
const GemmKernel* gemm_kernel_avx2();
const GemmKernel* gemm_kernel_avx512();
#endif

}  // namespace gemm_detail
}  // namespace cnnlite
