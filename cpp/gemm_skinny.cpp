// Skinny GEMM drivers: argument checks, the fallback on sgemm, the depth blocks and the parallel loop over row strips.
#include "gemm_skinny.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "dispatch.h"
#include "gemm.h"
#include "gemm_kernel.h"
#include "parallel.h"

namespace cnnlite {

namespace gemm_detail {
#ifdef CNNLITE_X86
// gemm_skinny_avx512.cpp. Rows of c per call of skinny_nt_rows_avx512:
constexpr idx kNtRows = 8;
// Rows of c per strip of skinny_tn_strip_avx512 for n columns (depends on n alone).
idx skinny_tn_strip_rows_avx512(idx n);
// c (rows, n) (ldc) = a^T @ b for the strip of columns [0, rows) of a (k, lda) and b (k, n, ldb), rows <= the strip
// rows, k in depth blocks of kc_max.
void skinny_tn_strip_avx512(float* c, idx ldc, const float* a, idx lda, const float* b, idx ldb, idx rows, idx n,
                            idx k, idx kc_max);
// c (rows, n) = a (rows, k, lda) @ wt (k, n, row-major), rows <= kNtRows, k <= kSkinnyMax.
void skinny_nt_rows_avx512(float* c, idx ldc, const float* a, idx lda, const float* wt, idx rows, idx n, idx k);
#endif
}  // namespace gemm_detail

namespace {

struct TransposedTag;  // sgemm_skinny_nt's b^T

void check(const char* fn, idx m, idx n, idx k, idx skinny, const char* which, const float* c, const float* a,
           const float* b) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument(std::string(fn) + ": sizes must be >= 0, got m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + " k=" + std::to_string(k));
  if (skinny > kSkinnyMax)
    throw std::invalid_argument(std::string(fn) + ": " + which + "=" + std::to_string(skinny) + " > " +
                                std::to_string(kSkinnyMax) + " (not a skinny product)");
  if (m > 0 && n > 0 && (!c || (k > 0 && (!a || !b)))) throw std::invalid_argument(std::string(fn) + ": null pointer");
}

}  // namespace

bool skinny_gemm_native() {
#ifdef CNNLITE_X86
  return isa() == Isa::kAvx512;
#else
  return false;
#endif
}

void sgemm_skinny_tn(float* c, const float* a, const float* b, idx m, idx n, idx k) {
  check("sgemm_skinny_tn", m, n, k, n, "n", c, a, b);
  if (m == 0 || n == 0) return;
#ifdef CNNLITE_X86
  if (skinny_gemm_native() && k > 0) {
    using namespace gemm_detail;
    // sgemm's depth blocks: ceil(k / kc) blocks of equal size (the last one shorter), kc the AVX-512 kernel's.
    const idx kc = gemm_kernel_avx512()->kc;
    const idx blocks = (k + kc - 1) / kc, kc_max = (k + blocks - 1) / blocks;
    const idx strip = skinny_tn_strip_rows_avx512(n), strips = (m + strip - 1) / strip;
    parallel_for(strips, [&](idx s) {
      const idx r0 = s * strip;
      skinny_tn_strip_avx512(c + r0 * n, n, a + r0, m, b, n, std::min(strip, m - r0), n, k, kc_max);
    }, enough_work(static_cast<double>(m) * n * k));
    return;
  }
#endif
  sgemm(true, false, m, n, k, 1.0f, a, m, b, n, 0.0f, c, n);
}

void sgemm_skinny_nt_pack(float* bt, const float* b, idx n, idx k) {
  check("sgemm_skinny_nt_pack", 1, n, k, k, "k", bt, b, b);
  for (idx j = 0; j < n; ++j)
    for (idx p = 0; p < k; ++p) bt[p * n + j] = b[j * k + p];
}

void sgemm_skinny_nt_packed(float* c, const float* a, const float* bt, idx m, idx n, idx k) {
  check("sgemm_skinny_nt_packed", m, n, k, k, "k", c, a, bt);
  if (m == 0 || n == 0) return;
#ifdef CNNLITE_X86
  if (skinny_gemm_native() && k > 0) {
    using namespace gemm_detail;
    const idx blocks = (m + kNtRows - 1) / kNtRows;
    parallel_for(blocks, [&](idx blk) {
      const idx i0 = blk * kNtRows;
      skinny_nt_rows_avx512(c + i0 * n, n, a + i0 * k, k, bt, std::min(kNtRows, m - i0), n, k);
    }, enough_work(static_cast<double>(m) * n * k));
    return;
  }
#endif
  // sgemm's summation order depends on k alone, so a @ (b^T as stored) has the bits of a @ b^T.
  sgemm(false, false, m, n, k, 1.0f, a, k, bt, n, 0.0f, c, n);
}

void sgemm_skinny_nt(float* c, const float* a, const float* b, idx m, idx n, idx k) {
  check("sgemm_skinny_nt", m, n, k, k, "k", c, a, b);
  if (m == 0 || n == 0) return;
  if (!skinny_gemm_native() || k == 0) {
    sgemm(false, true, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    return;
  }
  float* bt = thread_workspace<TransposedTag>().get(checked_product("sgemm_skinny_nt", {k, n}));
  sgemm_skinny_nt_pack(bt, b, n, k);
  sgemm_skinny_nt_packed(c, a, bt, m, n, k);
}

}  // namespace cnnlite
