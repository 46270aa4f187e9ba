// Thread-count control shared by every kernel.
//
// One process-wide setting (issue 13): set_num_threads(n) holds for kernel calls from every thread, not only the
// caller (OpenMP's own omp_set_num_threads only sets the calling thread's ICV). Bindings call sync_thread() before
// each kernel so that parallel regions without a num_threads clause also use the process-wide count.
//
// Fork safety: libgomp's thread pool does not survive fork(); a child whose forking thread had run a parallel
// region would hang in its next one. An at-fork handler marks such a child "serial": every kernel then runs on one
// thread (results are bitwise the same at any count). A child forked before any parallel region ran (e.g. from a
// 'forkserver' server, or a parent that only ran at 1 thread) keeps the full count.
#pragma once

namespace cnnlite {

// Number of threads kernels use (>= 1): the process-wide setting, or 1 in a serial forked child or without OpenMP.
int get_num_threads();
// Sets the process-wide thread count for later kernel calls from every thread; n >= 1.
void set_num_threads(int n);
// The count requested by set_num_threads (or the OMP_NUM_THREADS default), whatever a fork made of it.
int requested_num_threads();
// Makes the calling thread's OpenMP ICV agree with get_num_threads() (cheap when it already does). Kernel bindings
// call it before each kernel.
void sync_thread();
// True in a process forked after a parallel region had run: kernels run on one thread there.
bool forked_serial();
// Team size of a parallel region without num_threads clause run from the calling thread (after sync_thread);
// for tests.
int probe_team_size();
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
