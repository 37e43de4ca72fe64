// RandomFlip: Keras' keras.layers.RandomFlip(mode="horizontal_and_vertical", seed=None). In
// training each image is mirrored left-right and/or top-bottom, each with probability 1/2
// (drawn independently, as in Keras). last_parameters(): (flipped_horizontally,
// flipped_vertically) as 0 / 1 per image. Backward flips dy the same way (a flip is its own
// transpose).
#pragma once

#include "cnnx/layers/random_flip.hpp"
#include "layers/image_augmentation.hpp"

namespace cnnx {

class RandomFlip : public ImageAugmentation {
 public:
  RandomFlip(std::string name, std::string mode, bool has_seed, std::uint64_t seed);
  std::string class_name() const override { return "RandomFlip"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  const std::string& mode() const { return mode_; }

 protected:
  void draw(std::int64_t n) override;
  void apply(const float* x, float* y, std::int64_t n) override;
  void apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) override;

 private:
  std::string mode_;
  bool horizontal_, vertical_;
};

}  // namespace cnnx
