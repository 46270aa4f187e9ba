// Single-precision GEMM: cache-blocked, packed panels, one register-blocked micro-kernel per ISA chosen at run time.
#pragma once
#include "common.h"

namespace cnnlite {

// c (m, n) = alpha * op(a) (m, k) @ op(b) (k, n) + beta * c [+ bias (n) added to every row] [then max(c, 0) when
// relu: the ReLU is applied in the store, NaN propagating as in relu_forward]; row-major.
// op(a) = a (m x k, lda >= k) or, with trans_a, a^T where a is (k x m, lda >= m); likewise b (ldb) and c (ldc >= n).
// beta == 0 means c is only written, never read. bias may be null. k == 0 gives beta * c [+ bias] [relu].
// Each element's summation order depends only on k (fixed KC blocks), never on the thread count. Runs serially
// when called inside a parallel region. Throws std::invalid_argument on negative sizes or too-small leading dims.
void sgemm(bool trans_a, bool trans_b, idx m, idx n, idx k, float alpha, const float* a, idx lda, const float* b,
           idx ldb, float beta, float* c, idx ldc, const float* bias = nullptr, bool relu = false);

// Indirect GEMM, a convolution without im2col: c (m, n) = A (m, taps * cin) @ b (taps * cin, n, row-major)
// [+ bias (n)] [then max(c, 0) when relu], where row i of A is the concatenation over t = 0 .. taps of the cin floats at ind[i * taps + t]
// (a pointer into the input, or at `zero`, cin zeros, for padding). Same threading rules as sgemm.
void sgemm_indirect(idx m, idx n, idx taps, idx cin, const float* const* ind, const float* zero, const float* b,
                    float* c, idx ldc, const float* bias = nullptr, bool relu = false);

// Transposed indirect GEMM, a convolution's weight gradient without im2col: c (taps * span, n) = A^T @ b (k, n,
// leading dimension ldb), where A (k, taps * span) has row p equal to the concatenation over t = 0 .. taps of the
// span floats at ind[p * taps + t]. Overwrites c. Same summation order and threading rules as sgemm.
void sgemm_indirect_t(idx taps, idx span, idx n, idx k, const float* const* ind, const float* b, idx ldb, float* c,
                      idx ldc);

// Many products with one right-hand side (Winograd's 16 small GEMMs per tile block): b (k, n) is packed once for the
// micro-kernels by sgemm_pack_b into sgemm_packed_size(k, n) floats, then sgemm_packed computes
// c (m, n) = a (m, k, row-major, lda >= k) @ b, overwriting c, on the calling thread only (for use inside a parallel
// region). Same micro-kernels and the same summation order as sgemm (fixed depth blocks that depend on k alone).
idx sgemm_packed_size(idx k, idx n);
void sgemm_pack_b(float* bp, const float* b, idx ldb, idx k, idx n);
void sgemm_packed(idx m, idx n, idx k, const float* a, idx lda, const float* bp, float* c, idx ldc);

// Name of the micro-kernel in use: "avx512", "avx2" or "generic", the ISA level (dispatch.h).
const char* gemm_isa();

}  // namespace cnnlite
