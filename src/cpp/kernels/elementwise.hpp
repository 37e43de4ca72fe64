// Element-wise kernels on flat float arrays (any layout: every element is independent), for
// Rescaling and Dropout. Threading: OpenMP static over elements above a size where starting
// the threads pays, and only outside a parallel region.
// Dropout's mask is drawn in fixed chunks of kMaskChunk elements, each from its own Rng seeded
// by (call seed, chunk index): chunks can run on any thread and the mask is the same bits on
// 1 or N threads.
#pragma once

#include <cstdint>

namespace cnnx::kernels {

// y = x * scale + offset (y may be x).
void scale_offset(const float* x, float* y, std::int64_t n, float scale, float offset);
// out = a * b (out may be a or b).
void multiply(const float* a, const float* b, float* out, std::int64_t n);
// mask[i] = u_i >= rate ? scale : 0 with u_i uniform in [0, 1) (24 bits) from the chunked streams
// of `seed`; so P(kept) = 1 - rate up to 2^-24.
void dropout_mask(float* mask, std::int64_t n, float rate, float scale, std::uint64_t seed);

}  // namespace cnnx::kernels
