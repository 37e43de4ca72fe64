// A peak-FLOP probe, so benchmarks report "% of peak" from a measurement on this machine rather
// than a datasheet figure. Each thread runs independent FMA chains held in registers (no memory
// traffic): enough chains to cover FMA latency on both ports, for the widest ISA available.
#pragma once

#include <cstdint>

namespace cnnx::kernels {

// FLOPs (2 per lane per FMA) actually executed by `iterations` rounds of the probe kernel.
double peak_probe_avx512(std::int64_t iterations);
double peak_probe_avx2(std::int64_t iterations);
double peak_probe_generic(std::int64_t iterations);

// Runs the active ISA's probe on `threads` threads for about `seconds`; returns GFLOP/s.
double measure_peak_gflops(int threads, double seconds);

}  // namespace cnnx::kernels
