// Thread-count state. We keep our own count rather than calling omp_set_num_threads so that a
// host application embedding cnnx keeps its own OpenMP setting.
#include <string>

#include "cnnx/error.hpp"
#include "core/parallel_for.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnnx {
#ifdef _OPENMP
namespace {
int g_num_threads = 0;  // 0: not yet read from OpenMP
}
#endif

int get_num_threads() {
#ifdef _OPENMP
  if (g_num_threads <= 0) g_num_threads = omp_get_max_threads();
  return g_num_threads;
#else
  return 1;
#endif
}

void set_num_threads(std::int64_t n) {
  if (n < 1 || n > kMaxThreads)
    throw ValueError("set_num_threads: expected a number of threads between 1 and " + std::to_string(kMaxThreads) +
                     ", received " + std::to_string(n));
#ifdef _OPENMP
  g_num_threads = static_cast<int>(n);
#endif
}

bool in_parallel_region() {
#ifdef _OPENMP
  return omp_get_level() > 0;  // an inactive (if(false) or one-thread) region counts too
#else
  return false;
#endif
}

int thread_index() {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

}  // namespace cnnx
