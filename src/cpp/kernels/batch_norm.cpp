// See batch_norm.hpp.
#include "kernels/batch_norm.hpp"

#include "core/parallel_for.hpp"
#include "kernels/reduce.hpp"

namespace cnnx::kernels {
namespace {
constexpr std::int64_t kParallelMin = 1 << 15;  // below this, thread start-up costs more
bool parallel(std::int64_t rows, std::int64_t c) { return rows * c >= kParallelMin; }
}  // namespace

void channel_moments(const float* x, std::int64_t rows, std::int64_t c, float* tmp, float* mean, float* var) {
  column_sums(x, rows, c, mean);
  const float inv = 1.0f / static_cast<float>(rows);
  for (std::int64_t j = 0; j < c; ++j) mean[j] *= inv;
  const bool par = parallel(rows, c);
  parallel_for(rows, par, [&](std::int64_t i) {
    const float* xr = x + i * c;
    float* tr = tmp + i * c;
    for (std::int64_t j = 0; j < c; ++j) {
      const float d = xr[j] - mean[j];
      tr[j] = d * d;
    }
  });
  column_sums(tmp, rows, c, var);
  for (std::int64_t j = 0; j < c; ++j) var[j] *= inv;
}

void channel_affine(const float* x, std::int64_t rows, std::int64_t c, const float* m, const float* a, const float* b,
                    float* y) {
  const bool par = parallel(rows, c);
  parallel_for(rows, par, [&](std::int64_t i) {
    const float* xr = x + i * c;
    float* yr = y + i * c;
    for (std::int64_t j = 0; j < c; ++j) yr[j] = (xr[j] - m[j]) * a[j] + b[j];
  });
}

void centered_product(const float* dy, const float* x, const float* mean, std::int64_t rows, std::int64_t c,
                      float* out) {
  const bool par = parallel(rows, c);
  parallel_for(rows, par, [&](std::int64_t i) {
    const float* dr = dy + i * c;
    const float* xr = x + i * c;
    float* o = out + i * c;
    for (std::int64_t j = 0; j < c; ++j) o[j] = dr[j] * (xr[j] - mean[j]);
  });
}

void channel_affine2(const float* dy, const float* x, const float* mean, std::int64_t rows, std::int64_t c,
                     const float* k1, const float* k2, const float* k3, float* dx) {
  const bool par = parallel(rows, c);
  parallel_for(rows, par, [&](std::int64_t i) {
    const float* dr = dy + i * c;
    const float* xr = x + i * c;
    float* o = dx + i * c;
    for (std::int64_t j = 0; j < c; ++j) o[j] = dr[j] * k1[j] + (xr[j] - mean[j]) * k2[j] + k3[j];
  });
}

}  // namespace cnnx::kernels
