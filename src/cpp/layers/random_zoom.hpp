// RandomZoom: Keras' keras.layers.RandomZoom(height_factor, width_factor=None,
// fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0). Each training image
// is scaled about its centre by zh = 1 + u (vertically) and zw = 1 + v (horizontally), u and v
// drawn from the factors' [lower, upper] (within [-1, 1]); without a width factor zw = zh (the
// aspect ratio is kept). Keras' sign convention: a positive factor zooms out (output (x, y)
// reads input (zw x + (w - 1) (1 - zw) / 2, zh y + (h - 1) (1 - zh) / 2)), negative zooms in.
// last_parameters(): (zh, zw) per image.
#pragma once

#include "cnnx/layers/random_zoom.hpp"
#include "layers/image_augmentation.hpp"

namespace cnnx {

class RandomZoom : public RandomAffine {
 public:
  RandomZoom(std::string name, float height_lower, float height_upper, bool has_width, float width_lower,
             float width_upper, AffineOptions options);
  std::string class_name() const override { return "RandomZoom"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  float height_lower() const { return h_lo_; }
  float height_upper() const { return h_hi_; }
  bool has_width() const { return has_width_; }
  float width_lower() const { return w_lo_; }
  float width_upper() const { return w_hi_; }

 protected:
  void draw_one(std::int64_t img, float* transform) override;

 private:
  float h_lo_, h_hi_;
  bool has_width_;
  float w_lo_, w_hi_;
};

}  // namespace cnnx
