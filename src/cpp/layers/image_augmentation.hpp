// What the random image layers (RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
// RandomContrast) share. Each acts only when forward is called with training = true: it draws
// per-image parameters from its own seeded Rng (the `seed` argument, else one drawn from the
// model's seed at build), serially before any threaded kernel, so the same seed gives the same
// images on any thread count. With training = false the layer is an exact copy. The parameters
// of the last training call are kept (last_parameters()) because backward is the exact transpose
// of that call's transform; tests read them to rebuild the expected images.
// Input: one (height, width, channels) image per sample; the output has the same shape.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/image_augmentation.hpp"
#include "cnnx/random.hpp"
#include "kernels/image_sampling.hpp"

namespace cnnx {

class ImageAugmentation : public Layer {
 public:
  void reseed_noise(std::uint64_t seed) override { rng_.seed_with(seed); }
  void reserve(std::int64_t batch) override;
  std::int64_t workspace_floats(std::int64_t batch) const override {
    return checked_add(checked_mul(batch, per_image_), extra_workspace_floats(batch));
  }
  std::int64_t allocated_workspace_floats() const override {
    return static_cast<std::int64_t>(params_.size()) + allocated_extra_floats();
  }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

  // [last_batch(), parameters_per_image()] floats, row-major: the parameters drawn by the last
  // training forward (empty before the first one).
  std::int64_t last_batch() const { return last_n_; }
  int parameters_per_image() const { return per_image_; }
  const float* last_parameters() const { return params_.data(); }
  bool has_seed() const { return has_seed_; }
  std::uint64_t seed() const { return seed_; }

 protected:
  ImageAugmentation(std::string name, bool has_seed, std::uint64_t seed, int per_image);
  Shape do_build(const Shape& input_shape, Rng& rng) override;
  // Called once per training forward with room for n images: draw each image's parameters
  // (serially, from rng_), then transform.
  virtual void draw(std::int64_t n) = 0;
  virtual void apply(const float* x, float* y, std::int64_t n) = 0;
  virtual void apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) = 0;
  // Extra workspaces, sized for `batch` images (called by reserve and before each draw).
  virtual void reserve_extra(std::int64_t batch) { (void)batch; }
  virtual std::int64_t extra_workspace_floats(std::int64_t batch) const {
    (void)batch;
    return 0;
  }
  virtual std::int64_t allocated_extra_floats() const { return 0; }

  float* params(std::int64_t img) { return params_.data() + img * per_image_; }
  std::int64_t height() const { return input_shape()[0]; }
  std::int64_t width() const { return input_shape()[1]; }
  std::int64_t channels() const { return input_shape()[2]; }

  Rng rng_;

 private:
  bool has_seed_;
  std::uint64_t seed_;
  int per_image_;
  bool active_ = false;  // the last forward transformed (training)
  std::int64_t last_n_ = 0;
  std::vector<float> params_;  // [capacity, per_image_]
};

// RandomRotation, RandomTranslation, RandomZoom: each draws a per-image projective transform
// (kernels/image.hpp, Keras' 8-float convention) and samples the input through it.
class RandomAffine : public ImageAugmentation {
 public:
  const AffineOptions& options() const { return options_; }

 protected:
  RandomAffine(std::string name, AffineOptions options, int per_image);
  // Writes image img's 8-float transform from its drawn parameters.
  virtual void draw_one(std::int64_t img, float* transform) = 0;
  void draw(std::int64_t n) override;
  void apply(const float* x, float* y, std::int64_t n) override;
  void apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) override;
  void reserve_extra(std::int64_t batch) override;
  std::int64_t extra_workspace_floats(std::int64_t batch) const override { return checked_mul(8, batch); }
  std::int64_t allocated_extra_floats() const override { return static_cast<std::int64_t>(transforms_.size()); }

  // Parses and validates the options; each subclass constructor calls it first.
  void check_options();
  // Per-axis factor validation shared by the layers: lo <= hi, both in [min, max].
  void check_range(const std::string& arg, float lo, float hi, float min, float max) const;

 private:
  AffineOptions options_;
  kernels::AffineSpec spec_;
  std::vector<float> transforms_;  // [capacity, 8]
};

}  // namespace cnnx
