// Fixed-size blocking for element- and row-wise kernels: the partition never depends on the thread count, so
// vectorised main loops and scalar tails always fall on the same elements and results are bitwise identical for
// any thread count.
#pragma once
#include <algorithm>
#include <exception>

#include "common.h"

namespace cnnlite {

constexpr idx kElementChunk = 16384;

// Calls body(begin, end) for consecutive blocks [begin, end) of `block` items covering [0, n), in parallel when
// there are several blocks.
template <class Body>
inline void for_each_block(idx n, idx block, Body body) {
  const idx blocks = (n + block - 1) / block;
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel for schedule(static) if (blocks > 1)
#endif
  for (idx b = 0; b < blocks; ++b) {
    const idx begin = b * block;
    body(begin, std::min(n, begin + block));
  }
}

// Element-wise kernels: blocks of kElementChunk elements.
template <class Body>
inline void for_each_chunk(idx n, Body body) {
  for_each_block(n, kElementChunk, body);
}

// Row-wise kernels over rows of k elements: blocks of about kElementChunk elements.
inline idx rows_per_block(idx k) { return std::max<idx>(1, kElementChunk / std::max<idx>(k, 1)); }

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

}  // namespace cnnlite
