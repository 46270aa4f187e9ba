// GEMM driver: argument checks, run-time ISA choice, cache blocking, packing and OpenMP over C tiles.
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>

#include "gemm_kernel.h"
#include "threads.h"

namespace cnnlite {

using gemm_detail::GemmKernel;

namespace {

const GemmKernel* choose_kernel() {
  const char* env = std::getenv("CNNLITE_GEMM_ISA");
  const std::string want = env ? env : "";
#ifdef CNNLITE_X86
  __builtin_cpu_init();
  const bool has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
  const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  if (has_avx512 && want != "avx2" && want != "generic") return gemm_detail::gemm_kernel_avx512();
  if (has_avx2 && want != "generic") return gemm_detail::gemm_kernel_avx2();
#endif
  return gemm_detail::gemm_kernel_generic();
}

const GemmKernel& kernel() {
  static const GemmKernel* const k = choose_kernel();
  return *k;
}

inline idx ceil_div(idx a, idx b) { return (a + b - 1) / b; }
inline idx round_up(idx a, idx b) { return ceil_div(a, b) * b; }

// Per-thread packing buffers, grown on demand and reused across calls.
Workspace& a_workspace() {
  static thread_local Workspace ws;
  return ws;
}
Workspace& b_workspace() {
  static thread_local Workspace ws;
  return ws;
}

// c = beta * c [+ bias] (used when k == 0 or alpha == 0).
void scale_c(idx m, idx n, float beta, float* c, idx ldc, const float* bias) {
  for (idx i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    for (idx j = 0; j < n; ++j) {
      float r = beta == 0.0f ? 0.0f : beta * row[j];
      row[j] = bias ? r + bias[j] : r;
    }
  }
}

void check_args(bool ta, bool tb, idx m, idx n, idx k, const float* a, idx lda, const float* b, idx ldb, float* c,
                idx ldc) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("sgemm: sizes must be >= 0, got m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + " k=" + std::to_string(k));
  const idx min_lda = std::max<idx>(1, ta ? m : k);
  const idx min_ldb = std::max<idx>(1, tb ? k : n);
  if (lda < min_lda) throw std::invalid_argument("sgemm: lda=" + std::to_string(lda) + " < " + std::to_string(min_lda));
  if (ldb < min_ldb) throw std::invalid_argument("sgemm: ldb=" + std::to_string(ldb) + " < " + std::to_string(min_ldb));
  if (ldc < std::max<idx>(1, n))
    throw std::invalid_argument("sgemm: ldc=" + std::to_string(ldc) + " < " + std::to_string(n));
  if (m > 0 && n > 0 && (!c || (k > 0 && (!a || !b)))) throw std::invalid_argument("sgemm: null pointer");
}

}  // namespace

const char* gemm_isa() { return kernel().name; }

void sgemm(bool trans_a, bool trans_b, idx m, idx n, idx k, float alpha, const float* a, idx lda, const float* b,
           idx ldb, float beta, float* c, idx ldc, const float* bias) {
  check_args(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc, bias);
    return;
  }
  const GemmKernel& K = kernel();
  const idx MR = K.mr, NR = K.nr;
  // Depth blocks depend on k alone (never on threads), so every element's summation order is fixed.
  const idx k_blocks = ceil_div(k, K.kc);
  const idx kc_max = ceil_div(k, k_blocks);

  int nthreads = in_parallel() ? 1 : get_num_threads();
  if (static_cast<double>(m) * n * k < 64.0 * 64 * 64) nthreads = 1;
  // Rows per a-block: the cache block, shrunk so there are enough tiles to keep every thread busy.
  idx mc = std::min<idx>(K.mc, round_up(ceil_div(m, nthreads), MR));
  mc = std::max<idx>(mc, MR);
  const idx m_blocks = ceil_div(m, mc);

  Workspace& bws = b_workspace();
  const idx nc_max = std::min<idx>(K.nc, round_up(n, NR));
  float* bp = bws.get(kc_max * nc_max);
  const idx a_size = kc_max * round_up(mc, MR);
  if (nthreads == 1) a_workspace().get(a_size);  // allocate outside any parallel region where possible

  for (idx jc = 0; jc < n; jc += nc_max) {
    const idx nc = std::min<idx>(nc_max, n - jc);
    const idx n_slivers = ceil_div(nc, NR);
    // When there are fewer row blocks than threads, also split the columns (in whole slivers).
    const idx n_parts = m_blocks >= nthreads ? 1 : std::min<idx>(n_slivers, ceil_div(nthreads, m_blocks));
    const idx slivers_per_part = ceil_div(n_slivers, n_parts);
    const idx tasks = m_blocks * n_parts;
    for (idx pc = 0; pc < k; pc += kc_max) {
      const idx kc = std::min<idx>(kc_max, k - pc);
      const float beta_eff = pc == 0 ? beta : 1.0f;
      const float* bias_eff = pc + kc >= k ? bias : nullptr;
      const float* b_blk = trans_b ? b + jc * ldb + pc : b + pc * ldb + jc;

      auto pack_b_sliver = [&](idx s) {
        const idx j0 = s * NR;
        const idx cols = std::min<idx>(NR, nc - j0);
        const float* src = trans_b ? b_blk + j0 * ldb : b_blk + j0;
        K.pack_b(bp + j0 * kc, src, ldb, trans_b, kc, cols);
      };
      auto run_task = [&](idx t) {
        const idx ib = t / n_parts, part = t % n_parts;
        const idx i0 = ib * mc, rows = std::min<idx>(mc, m - i0);
        const idx j0 = part * slivers_per_part * NR;
        if (j0 >= nc) return;
        const idx cols = std::min<idx>(slivers_per_part * NR, nc - j0);
        float* ap = a_workspace().get(a_size);
        const float* a_blk = trans_a ? a + pc * lda + i0 : a + i0 * lda + pc;
        K.pack_a(ap, a_blk, lda, trans_a, rows, kc);
        K.macro(rows, cols, kc, ap, bp + j0 * kc, c + i0 * ldc + jc + j0, ldc, alpha, beta_eff,
                bias_eff ? bias_eff + jc + j0 : nullptr);
      };

      if (nthreads == 1) {
        for (idx s = 0; s < n_slivers; ++s) pack_b_sliver(s);
        for (idx t = 0; t < tasks; ++t) run_task(t);
        continue;
      }
#ifdef CNNLITE_HAVE_OPENMP
      std::exception_ptr error;
#pragma omp parallel num_threads(nthreads)
      {
#pragma omp for schedule(static)
        for (idx s = 0; s < n_slivers; ++s) pack_b_sliver(s);
#pragma omp for schedule(dynamic, 1)
        for (idx t = 0; t < tasks; ++t) {
          try {
            run_task(t);
          } catch (...) {
#pragma omp critical(cnnlite_gemm_error)
            if (!error) error = std::current_exception();
          }
        }
      }
      if (error) std::rethrow_exception(error);
#endif
    }
  }
}

}  // namespace cnnlite
