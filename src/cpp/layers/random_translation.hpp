// RandomTranslation: Keras' keras.layers.RandomTranslation(height_factor, width_factor,
// fill_mode="reflect", interpolation="bilinear", seed=None, fill_value=0.0). Each training image
// is shifted by dy = u * height pixels down and dx = v * width pixels right, u and v drawn
// uniformly from the factors' [lower, upper] (within [-1, 1]); output (x, y) reads input
// (x - dx, y - dy). last_parameters(): (dy, dx) in pixels per image.
#pragma once

#include "cnnx/layers/random_translation.hpp"
#include "layers/image_augmentation.hpp"

namespace cnnx {

class RandomTranslation : public RandomAffine {
 public:
  RandomTranslation(std::string name, float height_lower, float height_upper, float width_lower, float width_upper,
                    AffineOptions options);
  std::string class_name() const override { return "RandomTranslation"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  float height_lower() const { return h_lo_; }
  float height_upper() const { return h_hi_; }
  float width_lower() const { return w_lo_; }
  float width_upper() const { return w_hi_; }

 protected:
  void draw_one(std::int64_t img, float* transform) override;

 private:
  float h_lo_, h_hi_, w_lo_, w_hi_;
};

}  // namespace cnnx
