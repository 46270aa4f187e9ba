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

// The parallel-work record, for tests that must see a kernel split its work across threads. Every thread that runs
// a piece of work (a chunk, a task, a row block) inside a parallel region calls note_parallel_work(): it records the
// region's team size and the thread's id (one relaxed load per call once the id is recorded). take_parallel_record
// returns the largest team and the number of distinct threads that ran work in any region since its previous call,
// and starts a new record. Numbers only: nothing in the kernels reads it. Without OpenMP both stay 0.
void note_parallel_work();
void take_parallel_record(int* team, int* workers);

}  // namespace cnnlite
