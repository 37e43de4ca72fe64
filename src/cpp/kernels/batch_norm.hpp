// Batch-normalisation kernels on a row-major [rows, c] block: rows = batch x pixels of an NHWC
// activation, c = channels (the normalised axis is the contiguous one). Per-channel sums go
// through kernels::column_sums (fixed chunks of rows summed in chunk order), so statistics and
// gradients are the same bits on any thread count; the element-wise passes are OpenMP static
// over rows. Per-channel coefficients are computed by the layer; these are the O(rows*c) loops.
#pragma once

#include <cstdint>

namespace cnnx::kernels {

// Biased batch moments per channel, two-pass: mean, then the mean of (x - mean)^2 (tmp is a
// [rows, c] scratch).
void channel_moments(const float* x, std::int64_t rows, std::int64_t c, float* tmp, float* mean, float* var);
// y = (x - m) * a + b with per-channel m, a, b (y may be x).
void channel_affine(const float* x, std::int64_t rows, std::int64_t c, const float* m, const float* a, const float* b,
                    float* y);
// out = dy * (x - mean), the terms of sum(dy * xhat) / invstd.
void centered_product(const float* dy, const float* x, const float* mean, std::int64_t rows, std::int64_t c,
                      float* out);
// dx = dy * k1 + (x - mean) * k2 + k3 with per-channel mean, k1, k2, k3 (centred, so a large mean
// does not cancel digits).
void channel_affine2(const float* dy, const float* x, const float* mean, std::int64_t rows, std::int64_t c,
                     const float* k1, const float* k2, const float* k3, float* dx);

}  // namespace cnnx::kernels
