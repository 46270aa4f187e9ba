#include "threads.h"

#include "common.h"

namespace cnnlite {

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
