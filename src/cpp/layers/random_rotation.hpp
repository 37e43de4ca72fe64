// RandomRotation: Keras' keras.layers.RandomRotation(factor, fill_mode="reflect",
// interpolation="bilinear", seed=None, fill_value=0.0). factor is a fraction of 2 pi: each
// training image is rotated about its centre ((w - 1) / 2, (h - 1) / 2) by an angle drawn
// uniformly in [lower, upper] * 2 pi; positive angles turn counter-clockwise on screen. The
// output pixel (x, y) reads the input at (cos x - sin y + x0, sin x + cos y + y0), Keras'
// rotation matrix. last_parameters(): the angle in radians per image.
#pragma once

#include "cnnx/layers/random_rotation.hpp"
#include "layers/image_augmentation.hpp"

namespace cnnx {

class RandomRotation : public RandomAffine {
 public:
  RandomRotation(std::string name, float lower, float upper, AffineOptions options);
  std::string class_name() const override { return "RandomRotation"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  float lower() const { return lower_; }
  float upper() const { return upper_; }

 protected:
  void draw_one(std::int64_t img, float* transform) override;

 private:
  float lower_, upper_;
};

}  // namespace cnnx
