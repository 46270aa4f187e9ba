// Mixed-precision GEMM (cnnlite.mixed_precision's "mixed_bfloat16"): both operands rounded from float32 to bfloat16,
// products accumulated in float32, as AVX512_BF16's vdpbf16ps does. One micro-kernel on CPUs with AVX512_BF16 (when
// the ISA level in use is avx512), and a portable one that gives the same bits everywhere else.
#pragma once
#include <cstdint>

#include "common.h"

namespace cnnlite {

// float32 -> bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN, subnormals become a zero of their sign
// (the instruction treats subnormal inputs as zero), a finite value past the largest bfloat16 becomes an infinity.
uint16_t bf16_round(float x);
// The bfloat16 `h` as the float32 it stands for (exact).
float bf16_to_float(uint16_t h);

// c (m, n) = bf16(op(a)) (m, k) @ bf16(op(b)) (k, n) [+ bias (n) in float32] [then max(c, 0) when relu], overwriting
// c (row-major, leading dimension n). op(a) = a (m, k) or, with trans_a, a^T where a is (k, m); op(b) = b (k, n) or,
// with trans_b, b^T where b is (n, k); all contiguous. For each output element, over k-pairs q = 0, 1, ...:
//   acc = ftz(acc + a[i][2q+1] * b[2q+1][j]); acc = ftz(acc + a[i][2q] * b[2q][j])      (acc from +0; odd k: a
// zero pair element), each step rounded to nearest even, a subnormal result flushed to a zero of its sign: the
// vdpbf16ps order. The order depends on k alone; every element is computed by one micro-kernel call, so the bits are
// the same for any thread count, and the same for the AVX512_BF16 and portable kernels (products of two bfloat16 are
// exact in float32; only a product below FLT_MIN in magnitude, |values| ~1e-19, could round differently).
// Throws std::invalid_argument on negative sizes or null pointers. Runs serially inside a parallel region.
void gemm_bf16(float* c, const float* a, const float* b, const float* bias, idx m, idx n, idx k, bool trans_a,
               bool trans_b, bool relu = false);

// Many products with one right-hand side (Winograd's 16 small GEMMs per tile block), as sgemm_pack_b / sgemm_packed:
// b (k, n, row-major, leading dimension ldb) is rounded and packed once into gemm_bf16_packed_size(k, n) words by
// gemm_bf16_pack_b; gemm_bf16_packed then computes c (m, n, leading dimension ldc) = bf16(a) (m, k, row-major,
// lda >= k) @ b, overwriting c, on the calling thread only (for use inside a parallel region). Same micro-kernels and
// bits as gemm_bf16.
idx gemm_bf16_packed_size(idx k, idx n);
void gemm_bf16_pack_b(uint32_t* bp, const float* b, idx ldb, idx k, idx n);
void gemm_bf16_packed(float* c, idx ldc, const float* a, idx lda, const uint32_t* bp, idx m, idx n, idx k);

// gemm_bf16_packed with a already in bfloat16: ap holds ceil(m / gemm_bf16_rows_per_sliver()) * that many rows of
// ceil(k / 2) pairs each, row-major (row i, pair q at ap[i * ceil(k / 2) + q]: the bf16 pair (a[i][2q], a[i][2q + 1]));
// rows past m are read, their results dropped. The same bits as gemm_bf16_packed on the float32 a.
void gemm_bf16_packed_pairs(float* c, idx ldc, const uint32_t* ap, const uint32_t* bp, idx m, idx n, idx k);
idx gemm_bf16_rows_per_sliver();
// dst[i] = the bf16 pair (x[2i], x[2i + 1]) for i < count / 2 (count even): rows of an even depth k stored one after
// another give gemm_bf16_packed_pairs's layout. bf16_round's bits, vdpbf16ps's conversion where gemm_bf16 uses it.
void bf16_convert_pairs(uint32_t* dst, const float* x, idx count);

// "avx512_bf16" when gemm_bf16 runs the vdpbf16ps micro-kernel (the CPU has AVX512_BF16 and the ISA level in use is
// avx512), else "portable".
const char* gemm_bf16_isa();

// True when this CPU has AVX512_BF16 (whatever the ISA cap).
bool cpu_has_avx512_bf16();

namespace gemm_bf16_detail {

constexpr int kMR = 12;  // micro-tile rows
// One micro-tile: c (mv x nv, leading dimension ldc) = the pair-wise dot products of an a-sliver (kp pairs x kMR
// rows; pair q of row i, low half k = 2q and high half k = 2q + 1, at a[q * aps + i] when ars == 0 (pair-major, aps
// >= kMR words from one pair to the next), else at a[i * ars + q] (row-major)) and a b-sliver (kp pairs x nr columns,
// b[q * nr + j]) [+ bias (nv)] [relu]. nr = 16 * nv_vectors.
using MicroFn = void (*)(idx kp, const uint32_t* a, idx ars, idx aps, const uint32_t* b, float* c, idx ldc, idx mv,
                         idx nv, const float* bias, bool relu);
// Row-major pairs of `rows` rows of x (k floats each, leading dimension ld): dst[r * dst_ld + q] = the bf16 pair
// (x[r][2q], x[r][2q + 1]) (an odd k's last pair has a zero high half), bf16_round's bits.
using ConvertFn = void (*)(uint32_t* dst, idx dst_ld, const float* x, idx ld, idx rows, idx k);
// Pair-major packing of the first `count` columns of x (k rows, leading dimension ld): for each pair q < ceil(k / 2),
// dst[q * width + r] = the bf16 pair (x[2q][r], x[2q + 1][r]) for r < count (an odd k's last pair has a zero high
// half) and 0 for count <= r < width.
using PackPairsFn = void (*)(uint32_t* dst, idx width, const float* x, idx ld, idx k, idx count);
#ifdef CNNLITE_X86
MicroFn micro_avx512bf16(int nv_vectors);  // gemm_bf16_avx512bf16.cpp
ConvertFn convert_rows_avx512bf16();       // vcvtne2ps2bf16 / vcvtneps2bf16: the same bits as bf16_round
PackPairsFn pack_pairs_avx512bf16();
#endif

}  // namespace gemm_bf16_detail

}  // namespace cnnlite
