// GEMM driver: argument checks, run-time ISA choice, cache blocking, packing and OpenMP over C tiles.
#include "gemm.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

#include "dispatch.h"
#include "gemm_kernel.h"
#include "parallel.h"
#include "threads.h"

namespace cnnlite {

using gemm_detail::GemmKernel;

namespace {

// The micro-kernel of the level in use (dispatch.h).
const GemmKernel& kernel() {
#ifdef CNNLITE_X86
  switch (isa()) {
    case Isa::kAvx512: return *gemm_detail::gemm_kernel_avx512();
    case Isa::kAvx2: return *gemm_detail::gemm_kernel_avx2();
    default: break;
  }
#endif
  return *gemm_detail::gemm_kernel_generic();
}

// Up to this many columns the micro-kernels read op(a) in place instead of packing it.
constexpr idx kInPlaceMaxN = 320;
// Upper bound on the packed op(b) panel (all of k times the panel width), in floats: 8 MiB, inside L3.
constexpr idx kPanelFloats = 2 * 1024 * 1024;

inline idx ceil_div(idx a, idx b) { return (a + b - 1) / b; }
inline idx round_up(idx a, idx b) { return ceil_div(a, b) * b; }

// Per-thread packing buffers, grown on demand and reused across calls.
struct PackedATag;
struct PackedBTag;
Workspace& a_workspace() { return thread_workspace<PackedATag>(); }
Workspace& b_workspace() { return thread_workspace<PackedBTag>(); }

// c = beta * c [+ bias] [relu] (used when k == 0 or alpha == 0).
void scale_c(idx m, idx n, float beta, float* c, idx ldc, const float* bias, bool relu) {
  for (idx i = 0; i < m; ++i) {
    float* row = c + i * ldc;
    for (idx j = 0; j < n; ++j) {
      float r = beta == 0.0f ? 0.0f : beta * row[j];
      if (bias) r += bias[j];
      row[j] = relu && r < 0.0f ? 0.0f : r;
    }
  }
}

void check_args(bool ta, bool tb, idx m, idx n, idx k, const float* a, idx lda, const float* b, idx ldb, float* c,
                idx ldc) {
  if (m < 0 || n < 0 || k < 0)
    throw std::invalid_argument("sgemm: sizes must be >= 0, got m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                " k=" + std::to_string(k));
  const idx min_lda = std::max<idx>(1, ta ? m : k);
  const idx min_ldb = std::max<idx>(1, tb ? k : n);
  if (lda < min_lda) throw std::invalid_argument("sgemm: lda=" + std::to_string(lda) + " < " + std::to_string(min_lda));
  if (ldb < min_ldb) throw std::invalid_argument("sgemm: ldb=" + std::to_string(ldb) + " < " + std::to_string(min_ldb));
  if (ldc < std::max<idx>(1, n))
    throw std::invalid_argument("sgemm: ldc=" + std::to_string(ldc) + " < " + std::to_string(n));
  if (m > 0 && n > 0 && (!c || (k > 0 && (!a || !b)))) throw std::invalid_argument("sgemm: null pointer");
}

struct PointersTag;
std::vector<const float*>& pointer_workspace() { return thread_workspace<PointersTag, std::vector<const float*>>(); }

}  // namespace

const char* gemm_isa() { return kernel().name; }

namespace {

// Operand a given as row pointers (sgemm_indirect_t): op(a) = A^T, A (k, taps * span) with row p the concatenation
// over t of the span floats at ind[p * taps + t].
struct IndirectA {
  const float* const* ind;
  idx taps, span;
};

// The blocked, threaded GEMM behind sgemm and sgemm_indirect_t (ind non-null: a is read through it).
void gemm_driver(bool trans_a, bool trans_b, idx m, idx n, idx k, float alpha, const float* a, idx lda,
                 const IndirectA* ind, const float* b, idx ldb, float beta, float* c, idx ldc, const float* bias,
                 bool relu) {
  if (m == 0 || n == 0) return;
  if (k == 0 || alpha == 0.0f) {
    scale_c(m, n, beta, c, ldc, bias, relu);
    return;
  }
  const GemmKernel& K = kernel();
  const idx MR = K.mr;
  const idx NR = K.nr_narrow > 0 && n <= K.nr_narrow ? K.nr_narrow : K.nr_wide;
  // Few columns: each row of op(a) is used by few micro-tiles, so copying it into a packed block costs more than it
  // saves; the micro-kernels then read op(a) in place (the skinny convolution and dense shapes).
  const bool a_in_place = n <= kInPlaceMaxN;
  const int a_mode = !a_in_place ? gemm_detail::kPacked : trans_a ? gemm_detail::kColumns : gemm_detail::kRows;
  // Depth blocks depend on k alone (never on threads), so every element's summation order is fixed.
  const idx k_blocks = ceil_div(k, K.kc);
  const idx kc_max = ceil_div(k, k_blocks);

  int nthreads = available_threads();
  if (!enough_work(static_cast<double>(m) * n * k)) nthreads = 1;
  // Columns per panel: op(b) is packed for the whole depth at once (so a task can run every depth block without a
  // barrier), which bounds the panel width.
  idx nc_max = std::min<idx>(K.nc, round_up(n, NR));
  nc_max = std::max<idx>(NR, std::min<idx>(nc_max, kPanelFloats / k / NR * NR));
  // Row blocks: at most K.mc rows, and a multiple of the thread count so the last wave of tasks is full.
  idx m_blocks = ceil_div(m, K.mc);
  if (nthreads > 1) m_blocks = std::min<idx>(round_up(m_blocks, nthreads), ceil_div(m, MR));
  const idx mc = round_up(ceil_div(m, m_blocks), MR);
  m_blocks = ceil_div(m, mc);

  const idx panel_floats = k * nc_max + kc_max * NR;
  float* bp = b_workspace().get(panel_floats);
  const idx a_size = (a_in_place ? 0 : kc_max * mc) + MR * kc_max;  // packed block + edge sliver
  if (nthreads == 1) a_workspace().get(a_size);  // allocate outside any parallel region where possible

  for (idx jc = 0; jc < n; jc += nc_max) {
    const idx nc = std::min<idx>(nc_max, n - jc);
    const idx n_slivers = ceil_div(nc, NR);
    const idx nc_pad = n_slivers * NR;
    // When there are fewer row blocks than threads, also split the columns (in whole slivers).
    const idx n_parts = m_blocks >= nthreads ? 1 : std::min<idx>(n_slivers, ceil_div(nthreads, m_blocks));
    const idx slivers_per_part = ceil_div(n_slivers, n_parts);
    const idx tasks = m_blocks * n_parts;
    // op(b) exactly one sliver wide and dense is already in packed layout: use it in place.
    const bool b_packed = !trans_b && n == NR && ldb == NR;
    const idx pack_tasks = b_packed ? 0 : k_blocks * n_slivers;

    // Depth block pc of the panel starts at bp + pc * nc_pad; its sliver j0 at + j0 * kc.
    auto pack_b_sliver = [&](idx t) {
      const idx pc = (t / n_slivers) * kc_max, j0 = (t % n_slivers) * NR;
      const idx kc = std::min<idx>(kc_max, k - pc), cols = std::min<idx>(NR, nc - j0);
      const float* src = trans_b ? b + (jc + j0) * ldb + pc : b + pc * ldb + jc + j0;
      K.pack_b(bp + pc * nc_pad + j0 * kc, src, ldb, trans_b, kc, cols, NR);
    };
    auto run_task = [&](idx t) {
      const idx ib = t / n_parts, part = t % n_parts;
      const idx i0 = ib * mc, rows = std::min<idx>(mc, m - i0);
      const idx j0 = part * slivers_per_part * NR;
      if (j0 >= nc) return;
      const idx cols = std::min<idx>(slivers_per_part * NR, nc - j0);
      float* ws = a_workspace().get(a_size);
      float* edge = ws + (a_size - MR * kc_max);
      for (idx pc = 0; pc < k; pc += kc_max) {
        const idx kc = std::min<idx>(kc_max, k - pc);
        const float* b_blk = b_packed ? b + pc * ldb : bp + pc * nc_pad + j0 * kc;
        if (ind) {
          K.macro_indirect_t(rows, cols, kc, ind->ind + pc * ind->taps, ind->taps, ind->span, i0, m, b_blk, NR,
                             c + i0 * ldc + jc + j0, ldc, pc == 0 ? beta : 1.0f, edge);
          continue;
        }
        const float* a_blk = trans_a ? a + pc * lda + i0 : a + i0 * lda + pc;
        if (!a_in_place) {
          K.pack_a(ws, a_blk, lda, trans_a, rows, kc);
          a_blk = ws;
        }
        // The epilogue (bias, ReLU) runs with the last depth block only.
        const bool last = pc + kc >= k;
        const float* bias_j = last && bias ? bias + jc + j0 : nullptr;
        K.macro(rows, cols, kc, a_blk, lda, a_mode, b_blk, NR, c + i0 * ldc + jc + j0, ldc, alpha,
                pc == 0 ? beta : 1.0f, bias_j, last && relu, edge);
      }
    };

    if (nthreads == 1) {
      for (idx t = 0; t < pack_tasks; ++t) pack_b_sliver(t);
      for (idx t = 0; t < tasks; ++t) run_task(t);
      continue;
    }
    ErrorSlot error;
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel num_threads(nthreads)
    {
#pragma omp for schedule(static)
      for (idx t = 0; t < pack_tasks; ++t) {
        note_parallel_work();
        pack_b_sliver(t);
      }
#pragma omp for schedule(dynamic, 1) nowait
      for (idx t = 0; t < tasks; ++t) error.run([&] {
        note_parallel_work();
        run_task(t);
      });
    }
#endif
    error.rethrow();
  }
}

}  // namespace

void sgemm(bool trans_a, bool trans_b, idx m, idx n, idx k, float alpha, const float* a, idx lda, const float* b,
           idx ldb, float beta, float* c, idx ldc, const float* bias, bool relu) {
  check_args(trans_a, trans_b, m, n, k, a, lda, b, ldb, c, ldc);
  gemm_driver(trans_a, trans_b, m, n, k, alpha, a, lda, nullptr, b, ldb, beta, c, ldc, bias, relu);
}

void sgemm_indirect_t(idx taps, idx span, idx n, idx k, const float* const* ind, const float* b, idx ldb, float* c,
                      idx ldc) {
  if (taps <= 0 || span <= 0 || n < 0 || k < 0 || ldb < std::max<idx>(1, n) || ldc < std::max<idx>(1, n))
    throw std::invalid_argument("sgemm_indirect_t: bad sizes taps=" + std::to_string(taps) + " span=" +
                                std::to_string(span) + " n=" + std::to_string(n) + " k=" + std::to_string(k));
  if (n > 0 && (!c || (k > 0 && (!ind || !b)))) throw std::invalid_argument("sgemm_indirect_t: null pointer");
  const IndirectA indirect{ind, taps, span};
  gemm_driver(true, false, taps * span, n, k, 1.0f, nullptr, 1, &indirect, b, ldb, 0.0f, c, ldc, nullptr, false);
}

void sgemm_indirect(idx m, idx n, idx taps, idx cin, const float* const* ind, const float* zero, const float* b,
                    float* c, idx ldc, const float* bias, bool relu) {
  if (m < 0 || n < 0 || taps <= 0 || cin <= 0 || ldc < std::max<idx>(1, n))
    throw std::invalid_argument("sgemm_indirect: bad sizes m=" + std::to_string(m) + " n=" + std::to_string(n) +
                                " taps=" + std::to_string(taps) + " cin=" + std::to_string(cin) +
                                " ldc=" + std::to_string(ldc));
  if (m == 0 || n == 0) return;
  if (!ind || !zero || !b || !c) throw std::invalid_argument("sgemm_indirect: null pointer");
  const GemmKernel& K = kernel();
  const idx MR = K.mr;
  const idx NR = K.nr_narrow > 0 && n <= K.nr_narrow ? K.nr_narrow : K.nr_wide;
  const idx depth = taps * cin, n_slivers = ceil_div(n, NR);
  int nthreads = available_threads();
  if (!enough_work(static_cast<double>(m) * n * depth)) nthreads = 1;
  idx m_blocks = ceil_div(m, K.mc);
  if (nthreads > 1) m_blocks = std::min<idx>(round_up(m_blocks, nthreads), ceil_div(m, MR));
  const idx mc = round_up(ceil_div(m, m_blocks), MR);
  m_blocks = ceil_div(m, mc);

  float* bp = b_workspace().get(depth * n_slivers * NR);
  for (idx s = 0; s < n_slivers; ++s) {
    const idx j0 = s * NR;
    K.pack_b(bp + j0 * depth, b + j0, n, false, depth, std::min<idx>(NR, n - j0), NR);
  }
  auto run_task = [&](idx ib) {
    std::vector<const float*>& scratch = pointer_workspace();
    if (static_cast<idx>(scratch.size()) < taps * MR) scratch.resize(taps * MR);
    const idx i0 = ib * mc, rows = std::min<idx>(mc, m - i0);
    K.macro_indirect(rows, n, taps, cin, ind + i0 * taps, zero, bp, NR, c + i0 * ldc, ldc, bias, relu, scratch.data());
  };
  parallel_for(m_blocks, run_task, nthreads > 1);
}

namespace {

// Layout of a pre-packed b (sgemm_pack_b): depth blocks as in gemm_driver, block pc at bp + pc * round_up(n, NR),
// its sliver j0 at + j0 * kc.
struct PackedLayout {
  idx nr, kc_max, n_pad;
  PackedLayout(const GemmKernel& K, idx k, idx n) {
    nr = K.nr_narrow > 0 && n <= K.nr_narrow ? K.nr_narrow : K.nr_wide;
    kc_max = ceil_div(k, std::max<idx>(1, ceil_div(k, K.kc)));
    n_pad = round_up(n, nr);
  }
};

}  // namespace

idx sgemm_packed_size(idx k, idx n) {
  if (k <= 0 || n <= 0) throw std::invalid_argument("sgemm_packed_size: k and n must be > 0");
  return k * PackedLayout(kernel(), k, n).n_pad;
}

void sgemm_pack_b(float* bp, const float* b, idx ldb, idx k, idx n) {
  if (k <= 0 || n <= 0 || ldb < n) throw std::invalid_argument("sgemm_pack_b: bad sizes");
  const GemmKernel& K = kernel();
  const PackedLayout L(K, k, n);
  for (idx pc = 0; pc < k; pc += L.kc_max) {
    const idx kc = std::min<idx>(L.kc_max, k - pc);
    for (idx j0 = 0; j0 < n; j0 += L.nr)
      K.pack_b(bp + pc * L.n_pad + j0 * kc, b + pc * ldb + j0, ldb, false, kc, std::min<idx>(L.nr, n - j0), L.nr);
  }
}

void sgemm_packed(idx m, idx n, idx k, const float* a, idx lda, const float* bp, float* c, idx ldc) {
  if (m < 0 || n <= 0 || k <= 0 || lda < k || ldc < n) throw std::invalid_argument("sgemm_packed: bad sizes");
  if (m == 0) return;
  const GemmKernel& K = kernel();
  const PackedLayout L(K, k, n);
  float* edge = a_workspace().get(K.mr * L.kc_max);
  for (idx pc = 0; pc < k; pc += L.kc_max) {
    const idx kc = std::min<idx>(L.kc_max, k - pc);
    K.macro(m, n, kc, a + pc, lda, gemm_detail::kRows, bp + pc * L.n_pad, L.nr, c, ldc, 1.0f, pc == 0 ? 0.0f : 1.0f,
            nullptr, false, edge);
  }
}

}  // namespace cnnlite
