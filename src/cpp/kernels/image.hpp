// Image kernels for the resizing and augmentation layers, on NHWC float32 batches.
// Layout: x [n, h, w, c] -> y [n, oh, ow, c]; every output pixel computes its source taps once
// and then blends c contiguous floats, so the channel loop is innermost and the coordinate
// arithmetic is paid per pixel, not per value.
// Sampling: a source coordinate (sx, sy) in pixel-index space (pixel i sits at i, as in
// TensorFlow's ImageProjectiveTransformV3). Bilinear reads the taps floor(s) and floor(s) + 1,
// nearest reads floor(s + 0.5); each tap outside the image is remapped by the fill mode, as
// Keras documents them: reflect (d c b a | a b c d | d c b a), wrap (a b c d | a b c d | a b c d),
// nearest (a a a a | a b c d | d d d d), constant (k k k k | a b c d | k k k k, k = fill value).
// Remapping taps rather than the coordinate is what Keras' JAX / NumPy backends do
// (map_coordinates); TensorFlow's kernel maps the coordinate first, which differs only within one
// pixel of the border for bilinear reflect / wrap.
// Backward kernels are the exact transposes: the same taps and weights, scattered into dx.
// Threading: parallel over images (schedule static). Scatters stay inside one image, and each
// image is processed in a fixed order, so results do not depend on the thread count. Per-image
// random parameters are drawn by the layers, serially, before these kernels run.
#pragma once

#include <cstdint>

#include "kernels/image_sampling.hpp"

namespace cnnx::kernels {

// One output axis of a separable resize: output index o reads lo[o] and hi[o] with weights
// 1 - frac[o] and frac[o] (nearest: lo == hi, frac 0). Built once per layer at build time.
struct ResizeAxis {
  std::int64_t* lo;
  std::int64_t* hi;
  float* frac;
};

// tf.image.resize (antialias off, half-pixel centres) of the window [offset, offset + crop) of an
// axis of size `in` to `out` samples. Bilinear: s = (o + 0.5) * crop / out - 0.5, taps clamped
// to the window (edge replication). Nearest: floor((o + 0.5) * crop / out), clamped.
void resize_axis(std::int64_t offset, std::int64_t crop, std::int64_t out, Interpolation interp, ResizeAxis axis);

// y[img, oy, ox, :] = blend of the four taps rows[oy] x cols[ox] of x[img]; dx is overwritten.
void resize_forward(const float* x, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                    const ResizeAxis& rows, std::int64_t oh, const ResizeAxis& cols, std::int64_t ow, float* y);
void resize_backward(const float* dy, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                     const ResizeAxis& rows, std::int64_t oh, const ResizeAxis& cols, std::int64_t ow, float* dx);

// Keras' projective transform, 8 floats per image [a0 a1 a2 b0 b1 b2 c0 c1]: output pixel (x, y)
// reads the input at ((a0 x + a1 y + a2) / k, (b0 x + b1 y + b2) / k), k = c0 x + c1 y + 1.
// Output and input have the same shape [n, h, w, c]. Backward overwrites dx with the transpose.
void affine_transform(const float* x, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                      const float* transforms, const AffineSpec& spec, float* y);
void affine_transform_backward(const float* dy, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c,
                               const float* transforms, const AffineSpec& spec, float* dx);

// Per-image flips: flips[2 * img] != 0 mirrors left-right, flips[2 * img + 1] != 0 top-bottom.
// Its own transpose, so backward is the same call on dy. x and y must not overlap.
void flip(const float* x, std::int64_t n, std::int64_t h, std::int64_t w, std::int64_t c, const float* flips, float* y);

// Keras' RandomContrast on one batch: per image and channel, m = mean over h * w; y = clip((x -
// m) * factor[img] + m, lo, hi). means [n, c] receives m. Backward (exact where unclipped): with
// g = dy where lo <= z <= hi (z the unclipped value) else 0, dx = factor * g + (1 - factor) *
// mean_hw(g).
void contrast_forward(const float* x, std::int64_t n, std::int64_t hw, std::int64_t c, const float* factor, float lo,
                      float hi, float* means, float* y);
void contrast_backward(const float* x, const float* dy, std::int64_t n, std::int64_t hw, std::int64_t c,
                       const float* factor, const float* means, float lo, float hi, float* sums, float* dx);

}  // namespace cnnx::kernels
