// Skinny GEMMs: the three products of a Dense layer with few units (n <= kSkinnyMax columns of w), where the general
// sgemm spends most of its time on 16-wide micro-tiles holding 10 useful columns, or on 12-row strided slivers of a
// wide operand. Each output element gets exactly the float operations sgemm gives it (the same depth blocks, one FMA
// per k step in k order from zero, block results added to the running total in block order), so the bits equal
// sgemm's; only the vectorisation differs (across the long dimension instead of the short one). AVX-512 kernels; at
// any other ISA level (dispatch.h), or off x86-64, the functions run sgemm itself. Results do not depend on the
// thread count; runs serially when called inside a parallel region.
#pragma once
#include "common.h"

namespace cnnlite {

// Most columns (units) a skinny product takes.
constexpr idx kSkinnyMax = 16;

// True when the skinny kernels run at the current ISA level (else they fall back on sgemm).
bool skinny_gemm_native();

// c (m, n) = a^T @ b with a (k, m) and b (k, n) row-major (a weight gradient x^T @ dz); n <= kSkinnyMax. Overwrites c.
void sgemm_skinny_tn(float* c, const float* a, const float* b, idx m, idx n, idx k);

// c (m, n) = a @ b^T with a (m, k) and b (n, k) row-major (an input gradient dz @ w^T); k <= kSkinnyMax. Overwrites c.
void sgemm_skinny_nt(float* c, const float* a, const float* b, idx m, idx n, idx k);

// sgemm_skinny_nt in two parts, for many products with one b (a convolution's dy computed image by image from the
// next Dense layer's dz): sgemm_skinny_nt_pack writes b^T (k, n) into bt (k * n floats) once, then each
// sgemm_skinny_nt_packed(c, a, bt, m, n, k) gives sgemm_skinny_nt(c, a, b, m, n, k)'s bits for its rows of a.
void sgemm_skinny_nt_pack(float* bt, const float* b, idx n, idx k);
void sgemm_skinny_nt_packed(float* c, const float* a, const float* bt, idx m, idx n, idx k);

}  // namespace cnnlite
