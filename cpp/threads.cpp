#include "threads.h"

#include <atomic>
#include <cstdint>

#include <pthread.h>

#include "common.h"

namespace cnnlite {

namespace {

// The OMP_NUM_THREADS default as the process starts: the global ICV, read before anything changes a thread's own.
int initial_threads() {
#ifdef CNNLITE_HAVE_OPENMP
  const int n = omp_get_max_threads();
  return n < 1 ? 1 : n;
#else
  return 1;
#endif
}

std::atomic<int> g_requested{initial_threads()};
// Bumped on every change of the effective count; each thread re-applies its ICV when it sees a new value.
std::atomic<unsigned> g_generation{1};
// A parallel region with more than one thread may have run (so an OpenMP thread pool exists).
std::atomic<bool> g_pool_used{false};
std::atomic<bool> g_forked_serial{false};
thread_local unsigned t_generation = 0;

void after_fork_in_child() {
  // Only the forking thread exists here. Its OpenMP pool (if any) names threads that are gone: run serially.
  if (g_pool_used.load(std::memory_order_relaxed)) {
    g_forked_serial.store(true, std::memory_order_relaxed);
    g_generation.fetch_add(1, std::memory_order_relaxed);
  }
}

[[maybe_unused]] const bool g_atfork_registered = [] { return pthread_atfork(nullptr, nullptr, after_fork_in_child) == 0; }();

}  // namespace

namespace {
std::atomic<uint64_t> g_workers[4];  // bit t: OpenMP thread t ran work (thread ids < 256 = MAX_THREADS)
std::atomic<int> g_team{0};
}  // namespace

void note_parallel_work() {
#ifdef CNNLITE_HAVE_OPENMP
  const int t = omp_get_thread_num();
  std::atomic<uint64_t>& word = g_workers[(t >> 6) & 3];
  const uint64_t bit = uint64_t{1} << (t & 63);
  if (!(word.load(std::memory_order_relaxed) & bit)) word.fetch_or(bit, std::memory_order_relaxed);
  const int team = omp_get_num_threads();
  int seen = g_team.load(std::memory_order_relaxed);
  while (team > seen && !g_team.compare_exchange_weak(seen, team, std::memory_order_relaxed)) {
  }
#endif
}

void take_parallel_record(int* team, int* workers) {
  *team = g_team.exchange(0, std::memory_order_relaxed);
  int count = 0;
  for (std::atomic<uint64_t>& word : g_workers) count += __builtin_popcountll(word.exchange(0, std::memory_order_relaxed));
  *workers = count;
}

int get_num_threads() {
#ifdef CNNLITE_HAVE_OPENMP
  if (g_forked_serial.load(std::memory_order_relaxed)) return 1;
  return g_requested.load(std::memory_order_relaxed);
#else
  return 1;
#endif
}

int requested_num_threads() { return g_requested.load(std::memory_order_relaxed); }

void set_num_threads(int n) {
#ifdef CNNLITE_HAVE_OPENMP
  g_requested.store(n < 1 ? 1 : n, std::memory_order_relaxed);
  g_generation.fetch_add(1, std::memory_order_relaxed);
  sync_thread();
#else
  (void)n;
#endif
}

void sync_thread() {
#ifdef CNNLITE_HAVE_OPENMP
  const unsigned gen = g_generation.load(std::memory_order_relaxed);
  if (t_generation != gen) {
    const int n = get_num_threads();
    omp_set_num_threads(n);
    if (n > 1) g_pool_used.store(true, std::memory_order_relaxed);
    t_generation = gen;
  }
#endif
}

bool forked_serial() { return g_forked_serial.load(std::memory_order_relaxed); }

int probe_team_size() {
  sync_thread();
  int team = 1;
#ifdef CNNLITE_HAVE_OPENMP
#pragma omp parallel
  {
#pragma omp single
    team = omp_get_num_threads();
  }
#endif
  return team;
}

int num_procs() {
#ifdef CNNLITE_HAVE_OPENMP
  return omp_get_num_procs();
#else
  return 1;
#endif
}

bool has_openmp() {
#ifdef CNNLITE_HAVE_OPENMP
  return true;
#else
  return false;
#endif
}

}  // namespace cnnlite
