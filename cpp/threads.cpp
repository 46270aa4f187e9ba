#include "threads.h"

#include <atomic>
#include <cstdint>

#include "common.h"

namespace cnnlite {

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
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_num_threads(int n) {
#ifdef CNNLITE_HAVE_OPENMP
  omp_set_num_threads(n < 1 ? 1 : n);
#else
  (void)n;
#endif
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
