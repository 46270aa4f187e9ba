// Shared helpers for cnnlite kernels: index type, OpenMP shims, aligned buffers.
#pragma once
#include <cstdint>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <stdexcept>
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
