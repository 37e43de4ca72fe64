// Peak probe, AVX2+FMA: 12 independent ymm FMA chains. Compiled with -mavx2 -mfma only.
#include <immintrin.h>

#include "kernels/peak_probe.hpp"

namespace cnnx::kernels {

double peak_probe_avx2(std::int64_t iterations) {
  constexpr int kChains = 12;
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(float(i) * 1e-3f);
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
  for (std::int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
  }
  __m256 sum = acc[0];
  for (int i = 1; i < kChains; ++i) sum = _mm256_add_ps(sum, acc[i]);
  alignas(32) float out[8];
  _mm256_store_ps(out, sum);
  volatile float sink = out[0];
  (void)sink;
  return double(iterations) * kChains * 8 * 2;
}

}  // namespace cnnx::kernels
