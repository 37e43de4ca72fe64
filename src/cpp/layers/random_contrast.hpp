// RandomContrast: Keras' keras.layers.RandomContrast(factor, value_range=(0, 255), seed=None).
// Each training image draws one contrast factor c uniformly in [1 - lower, 1 + upper] (factor a
// float f: lower = upper = f, or a (lower, upper) pair, all in [0, 1]); per channel, with m the
// image's mean over height and width, y = clip((x - m) * c + m, value_range). Backward is the
// exact derivative (zero where the value was clipped). last_parameters(): c per image.
#pragma once

#include "cnnx/layers/random_contrast.hpp"
#include "cnnx/tensor.hpp"
#include "layers/image_augmentation.hpp"

namespace cnnx {

class RandomContrast : public ImageAugmentation {
 public:
  RandomContrast(std::string name, float lower, float upper, float value_min, float value_max, bool has_seed,
                 std::uint64_t seed);
  std::string class_name() const override { return "RandomContrast"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  float lower() const { return lower_; }
  float upper() const { return upper_; }
  float value_min() const { return value_min_; }
  float value_max() const { return value_max_; }

 protected:
  void draw(std::int64_t n) override;
  void apply(const float* x, float* y, std::int64_t n) override;
  void apply_backward(const float* x, const float* dy, float* dx, std::int64_t n) override;
  void reserve_extra(std::int64_t batch) override;
  std::int64_t extra_workspace_floats(std::int64_t batch) const override {
    return checked_mul(2, checked_mul(batch, channels()));
  }
  std::int64_t allocated_extra_floats() const override { return means_.size() + sums_.size(); }

 private:
  float lower_, upper_, value_min_, value_max_;
  Buffer means_;  // [capacity, channels]
  Buffer sums_;   // [capacity, channels], backward
};

}  // namespace cnnx
