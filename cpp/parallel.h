// The one parallel layer of the kernels: a parallel-for over fixed chunks, one deterministic ordered reduction, the
// per-thread workspaces, and the thresholds that decide when a call is worth the thread team.
//
// Determinism: work is cut into chunks that depend on the sizes alone, never on the thread count; a chunk writes only
// its own output (or its own partial), so any thread may run any chunk; partials are added in chunk order. Results are
// therefore bitwise identical for any thread count. No exception leaves a parallel region: the first one is caught
// (ErrorSlot) and rethrown once the region has ended. Without OpenMP everything runs serially, in the same order.
#pragma once
#include <algorithm>
#include <exception>
#include <stdexcept>
#include <string>

#include "common.h"
#include "threads.h"

namespace cnnlite {

// Element-wise kernels: blocks of this many elements.
constexpr idx kElementChunk = 16384;

// Below this many multiply-adds (some tens of microseconds on one core) a GEMM or convolution runs on one thread:
// waking the team would cost more than it saves.
constexpr double kMinParallelWork = 2.0 * 1024 * 1024;

// Row-wise kernels over rows of k elements: rows per block, about kElementChunk elements.
inline idx rows_per_block(idx k) { return std::max<idx>(1, kElementChunk / std::max<idx>(k, 1)); }

// Threads a parallel loop may use from here: 1 inside a parallel region (no nesting), else the configured count.
inline int available_threads() { return in_parallel() ? 1 : get_num_threads(); }

// True when `work` multiply-adds are worth several threads.
inline bool enough_work(double work) { return work >= kMinParallelWork; }

// True when there are at least as many chunks as threads. With fewer, a caller whose chunks run GEMMs runs the
// chunks one after the other and lets each GEMM use the threads instead.
inline bool enough_chunks(idx chunks) { return chunks >= available_threads(); }

// Captures the first exception thrown inside a parallel region (no exception may leave one), to rethrow once the
// region has ended: `error.run([&] { ... })` in the loop body, `error.rethrow()` after the region.
class ErrorSlot {
 public:
  template <class Fn>
  void run(Fn&& fn) {
    try {
      fn();
    } catch (...) {
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp critical(cnnlite_error_slot)
#endif
      if (!error_) error_ = std::current_exception();
    }
  }
  void rethrow() {
    if (error_) std::rethrow_exception(error_);
  }

 private:
  std::exception_ptr error_;
};

// Calls body(c) for every chunk c in [0, chunks), each exactly once, on any thread; in parallel when `parallel` is
// true, there are at least two chunks and two threads available. Rethrows the first exception a chunk threw.
template <class Body>
void parallel_for(idx chunks, Body&& body, bool parallel = true) {
  const int nthreads = available_threads();
  if (!parallel || nthreads <= 1 || chunks < 2) {
    for (idx c = 0; c < chunks; ++c) body(c);
    return;
  }
  ErrorSlot error;
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(dynamic, 1) num_threads(nthreads)
#endif
  for (idx c = 0; c < chunks; ++c) error.run([&] {
    note_parallel_work();
    body(c);
  });
  error.rethrow();
}

// Calls body(begin, end) for consecutive blocks [begin, end) of `block` items covering [0, n), in parallel when there
// are several blocks.
template <class Body>
void parallel_for_blocks(idx n, idx block, Body&& body) {
  const idx blocks = (n + block - 1) / block;
  parallel_for(blocks, [&](idx b) {
    const idx begin = b * block;
    body(begin, std::min(n, begin + block));
  });
}

// Element-wise kernels: parallel_for_blocks over blocks of kElementChunk elements.
template <class Body>
void parallel_for_elements(idx n, Body&& body) {
  parallel_for_blocks(n, kElementChunk, body);
}

// total[e] += parts[c * stride + e] for c = 0, 1, ... count - 1 in that order, for e in [0, len).
inline void add_in_order(float* __restrict total, const float* __restrict parts, idx count, idx stride, idx len) {
  for (idx c = 0; c < count; ++c)
    for (idx e = 0; e < len; ++e) total[e] += parts[c * stride + e];
}

// The deterministic ordered reduction: total (size floats, overwritten) = the sum over chunks c in [0, chunks) of
// the partial that body(c, partial) writes (all `size` floats of it), each element summed in chunk order from zero.
// The partials of up to `wave` chunks are held at once in `partials` (room for min(chunks, wave) * size floats);
// neither the waves nor the order depend on the thread count, so the sums are bitwise reproducible. The chunks of a
// wave run through parallel_for(..., parallel); the additions are spread over slices of the elements.
template <class Body>
void sum_over_chunks(float* total, float* partials, idx chunks, idx size, idx wave, Body&& body, bool parallel = true) {
  constexpr idx kSlice = 1024;  // elements per reduction task
  wave = std::max<idx>(1, wave);
  std::fill(total, total + size, 0.0f);
  const idx slices = (size + kSlice - 1) / kSlice;
  for (idx w0 = 0; w0 < chunks; w0 += wave) {
    const idx w1 = std::min(chunks, w0 + wave);
    parallel_for(w1 - w0, [&](idx c) { body(w0 + c, partials + c * size); }, parallel);
    parallel_for(slices, [&](idx s) {
      const idx e0 = s * kSlice, e1 = std::min(size, e0 + kSlice);
      add_in_order(total + e0, partials + e0, w1 - w0, size, e1 - e0);
    }, parallel && size >= 4 * kSlice);
  }
}

// Reduction shards (the engine's row ranges of a batch): std::invalid_argument naming `fn` unless bounds holds
// shards + 1 strictly increasing row indices from 0 to n.
inline void require_shard_bounds(const idx* bounds, idx shards, idx n, const char* fn) {
  bool ok = shards >= 1 && bounds[0] == 0 && bounds[shards] == n;
  for (idx s = 0; ok && s < shards; ++s) ok = bounds[s + 1] > bounds[s];
  if (!ok) throw std::invalid_argument(std::string(fn) + ": shards must be increasing row indices from 0 to n");
}

// Calls body(s, r0, rows) for every reduction shard s, rows [r0, r0 + rows) of the batch (bounds as
// require_shard_bounds checks them): side by side, one thread each, when there are at least as many shards as
// threads, else one after the other with each shard's kernel using the threads (enough_chunks).
template <class Body>
void for_each_shard(const idx* bounds, idx shards, Body&& body) {
  parallel_for(shards, [&](idx s) { body(s, bounds[s], bounds[s + 1] - bounds[s]); }, enough_chunks(shards));
}

// The calling thread's workspace of type T for the (translation-unit local) tag type Tag: allocated on first use,
// grown on demand, reused across calls.
template <class Tag, class T = Workspace>
T& thread_workspace() {
  static thread_local T ws;
  return ws;
}

}  // namespace cnnlite
