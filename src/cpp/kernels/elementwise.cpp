// See elementwise.hpp.
#include "kernels/elementwise.hpp"

#include "cnnx/random.hpp"
#include "core/parallel_for.hpp"

namespace cnnx::kernels {
namespace {
constexpr std::int64_t kParallelMin = 1 << 15;  // below this, thread start-up costs more
constexpr std::int64_t kMaskChunk = 1 << 12;    // fixed: the mask must not depend on threads
}  // namespace

void scale_offset(const float* x, float* y, std::int64_t n, float scale, float offset) {
  const bool par = n >= kParallelMin;
  parallel_for(n, par, [&](std::int64_t i) { y[i] = x[i] * scale + offset; });
}

void multiply(const float* a, const float* b, float* out, std::int64_t n) {
  const bool par = n >= kParallelMin;
  parallel_for(n, par, [&](std::int64_t i) { out[i] = a[i] * b[i]; });
}

void dropout_mask(float* mask, std::int64_t n, float rate, float scale, std::uint64_t seed) {
  const std::int64_t chunks = (n + kMaskChunk - 1) / kMaskChunk;
  const bool par = n >= kParallelMin;
  parallel_for(chunks, par, [&](std::int64_t c) {
    // Rng seeds its four state words from splitmix64 steps of the golden-ratio increment, so
    // chunk seeds must not differ by multiples of it (they would share state words): xor with an
    // odd multiple of the chunk index by another constant.
    Rng rng(seed ^ (0xd1b54a32d192ed03ULL * static_cast<std::uint64_t>(c + 1)));
    const std::int64_t end = c + 1 < chunks ? (c + 1) * kMaskChunk : n;
    for (std::int64_t i = c * kMaskChunk; i < end; ++i) mask[i] = rng.uniform() >= rate ? scale : 0.0f;
  });
}

}  // namespace cnnx::kernels
