// Reference GEMM: the obvious triple loop, same contract as gemm() (see gemm.hpp).
//
// Exists only so tests can check the fast path. It sums each C element in double, in k order,
// which makes it more accurate than any float kernel; tests compare with a tolerance scaled
// by sqrt(k). Single-threaded, no blocking: clarity over speed.
#include "kernels/gemm.hpp"

namespace cnnx::kernels {

void gemm_ref(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rs_a, std::int64_t cs_a,
              const float* b, std::int64_t rs_b, std::int64_t cs_b, float beta, float* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double sum = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        sum += static_cast<double>(a[i * rs_a + p * cs_a]) * b[p * rs_b + j * cs_b];
      }
      float& cij = c[i * ldc + j];
      // beta == 0 must not read C: 0 * NaN would be NaN.
      cij = beta == 0.0f ? static_cast<float>(sum) : static_cast<float>(beta * cij + sum);
    }
  }
}

}  // namespace cnnx::kernels
