// Shared helpers for cnnlite kernels: index type, OpenMP shims, aligned buffers.
#pragma once
#include <cstdint>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef CNNLITE_HAVE_OPENMP
#include <omp.h>
#endif

namespace cnnlite {

using idx = int64_t;

inline int thread_id() {
#ifdef CNNLITE_HAVE_OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

inline bool in_parallel() {
#ifdef CNNLITE_HAVE_OPENMP
  return omp_in_parallel() != 0;
#else
  return false;
#endif
}

// Largest image dimension, channel count, kernel/pool size, stride or pad a kernel accepts: small enough that the
// sums of a few of them never overflow idx. Products of sizes are checked with `checked_product`.
constexpr idx kMaxExtent = (idx{1} << 31) - 1;

// The product of non-negative sizes, or std::invalid_argument naming `what` when it would overflow idx (the byte
// count of a buffer that large could not be represented, let alone allocated).
inline idx checked_product(const char* what, std::initializer_list<idx> sizes) {
  idx product = 1;
  for (idx s : sizes) {
    if (s < 0 || __builtin_mul_overflow(product, s, &product))
      throw std::invalid_argument(std::string(what) + ": sizes too large (their product overflows 64 bits)");
  }
  if (product > INT64_MAX / 8) throw std::invalid_argument(std::string(what) + ": sizes too large (byte count overflows)");
  return product;
}

// 64-byte aligned float buffer that only grows; used for per-thread workspaces reused across batches.
class Workspace {
 public:
  Workspace() = default;
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  ~Workspace() { std::free(ptr_); }
  float* get(idx n) {
    if (n > cap_) {
      std::free(ptr_);
      ptr_ = nullptr;
      cap_ = 0;
      size_t bytes = ((static_cast<size_t>(n) * sizeof(float) + 63) / 64) * 64;
      ptr_ = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!ptr_) throw std::bad_alloc();
      cap_ = n;
    }
    return ptr_;
  }

 private:
  float* ptr_ = nullptr;
  idx cap_ = 0;
};

}  // namespace cnnlite
