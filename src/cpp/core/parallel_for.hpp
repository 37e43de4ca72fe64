// parallel_for: the core's one way into OpenMP (private; the public thread control is
// cnnx/parallel.hpp). cnnx uses OpenMP at one level only: a kernel that is already inside a
// parallel region runs serially. Without OpenMP everything runs on one thread.
#pragma once

#include <cstdint>

#include "cnnx/parallel.hpp"

namespace cnnx {

// True when called from inside an OpenMP parallel region, active or not (kernels then stay
// serial; see parallel_for for why an inactive region counts).
bool in_parallel_region();
// Index of the calling thread inside a parallel region (0 outside one or without OpenMP).
int thread_index();

// body(i) for i in [0, n), statically split over get_num_threads() threads when `parallel`
// (callers decide whether the work is worth waking the team) and we are not already inside a
// parallel region (one OpenMP level); otherwise a plain loop on the calling thread. A plain
// loop, not `omp parallel for if (false)`: a region switched off by its if clause still opens a
// nesting level, and a kernel called inside it that starts its own region then gets a
// brand-new nested team, a thread created and joined on every call (measured: a batch-1 conv2
// forward went from 45 us to 115 us on 2 threads that way).
template <class Body>
void parallel_for(std::int64_t n, bool parallel, Body&& body) {
#ifdef _OPENMP
  if (parallel && n > 1 && !in_parallel_region()) {
    const int nt = get_num_threads();
#pragma omp parallel for schedule(static) num_threads(nt)
    for (std::int64_t i = 0; i < n; ++i) body(i);
    return;
  }
#else
  (void)parallel;
#endif
  for (std::int64_t i = 0; i < n; ++i) body(i);
}

// body(begin, count) over [0, n) cut into blocks of `block` items (the last one shorter),
// split over threads as parallel_for does: for element loops that should vectorise, which a
// per-element body(i) does not.
template <class Body>
void parallel_for_blocks(std::int64_t n, std::int64_t block, bool parallel, Body&& body) {
  parallel_for((n + block - 1) / block, parallel, [&](std::int64_t b) {
    const std::int64_t begin = b * block;
    body(begin, n - begin < block ? n - begin : block);
  });
}

}  // namespace cnnx
