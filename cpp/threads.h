// Thread-count control shared by every kernel.
#pragma once

namespace cnnlite {

// Number of threads kernels use (>= 1). Without OpenMP always 1.
int get_num_threads();
// Sets the thread count for later kernel calls; n >= 1.
void set_num_threads(int n);
// Number of logical processors OpenMP sees (1 without OpenMP).
int num_procs();
// True when the library was built with OpenMP.
bool has_openmp();

}  // namespace cnnlite
