// See reduce.hpp. Partials are per fixed chunk of rows (not per thread), so the summation tree
// does not depend on the thread count. The scratch is thread_local and grow-only.
#include "kernels/reduce.hpp"

#include <algorithm>
#include <vector>

#include "core/parallel_for.hpp"

namespace cnnx::kernels {
namespace {
constexpr std::int64_t kChunkRows = 512;
}

void column_sums(const float* a, std::int64_t rows, std::int64_t cols, float* out) {
  const std::int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  if (chunks <= 1) {
    for (std::int64_t j = 0; j < cols; ++j) out[j] = 0.0f;
    for (std::int64_t i = 0; i < rows; ++i)
      for (std::int64_t j = 0; j < cols; ++j) out[j] += a[i * cols + j];
    return;
  }
  thread_local std::vector<float> partial;
  if (static_cast<std::int64_t>(partial.size()) < chunks * cols) partial.resize(chunks * cols);
  float* part = partial.data();
  parallel_for(chunks, true, [&](std::int64_t ch) {
    float* p = part + ch * cols;
    for (std::int64_t j = 0; j < cols; ++j) p[j] = 0.0f;
    const std::int64_t end = std::min(rows, (ch + 1) * kChunkRows);
    for (std::int64_t i = ch * kChunkRows; i < end; ++i)
      for (std::int64_t j = 0; j < cols; ++j) p[j] += a[i * cols + j];
  });
  for (std::int64_t j = 0; j < cols; ++j) out[j] = 0.0f;
  for (std::int64_t ch = 0; ch < chunks; ++ch)
    for (std::int64_t j = 0; j < cols; ++j) out[j] += part[ch * cols + j];
}

}  // namespace cnnx::kernels
