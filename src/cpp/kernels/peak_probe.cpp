// Peak probe driver and the portable variant. Threading: one OpenMP region with exactly the
// requested threads, each running the same probe; the slowest thread's time counts.
#include "kernels/peak_probe.hpp"

#include <chrono>

#include "kernels/gemm.hpp"

namespace cnnx::kernels {

double peak_probe_generic(std::int64_t iterations) {
  constexpr int kChains = 16;
  float acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = float(i) * 1e-3f;
  for (std::int64_t it = 0; it < iterations; ++it)
    for (int i = 0; i < kChains; ++i) acc[i] = acc[i] * 0.999999f + 1e-7f;
  volatile float sink = acc[0] + acc[kChains - 1];
  (void)sink;
  return double(iterations) * kChains * 2;
}

double measure_peak_gflops(int threads, double seconds) {
  using clock = std::chrono::steady_clock;
  double (*probe)(std::int64_t) = peak_probe_generic;
#if defined(__x86_64__) || defined(_M_X64)
  if (active_isa() == Isa::avx512)
    probe = peak_probe_avx512;
  else if (active_isa() == Isa::avx2)
    probe = peak_probe_avx2;
#endif
  // Calibrate the iteration count on one thread, then run it everywhere at once.
  std::int64_t iters = 1 << 16;
  for (;;) {
    const auto t0 = clock::now();
    probe(iters);
    const double dt = std::chrono::duration<double>(clock::now() - t0).count();
    if (dt > seconds / 4 || iters > (std::int64_t{1} << 40)) {
      iters = std::int64_t(double(iters) * seconds / dt) + 1;
      break;
    }
    iters *= 4;
  }
  double flops = 0.0;
  const auto t0 = clock::now();
#pragma omp parallel num_threads(threads) reduction(+ : flops)
  { flops += probe(iters); }
  const double dt = std::chrono::duration<double>(clock::now() - t0).count();
#ifndef _OPENMP
  (void)threads;
#endif
  return flops / dt / 1e9;
}

}  // namespace cnnx::kernels
