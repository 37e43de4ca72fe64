// Dropout: Keras' keras.layers.Dropout(rate, noise_shape=None, seed=None). In training, each
// element is kept with probability 1 - rate and scaled by 1 / (1 - rate) (inverted dropout), so
// inference is the exact identity. The scaled mask is kept for backward: dx = dy * mask.
#pragma once

#include <cstdint>

#include "cnnx/layer.hpp"
#include "cnnx/layers/dropout.hpp"
#include "cnnx/random.hpp"

namespace cnnx {

class Dropout : public Layer {
 public:
  Dropout(std::string name, DropoutConfig config);
  std::string class_name() const override { return "Dropout"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  void reseed_noise(std::uint64_t seed) override { rng_.seed_with(seed); }
  bool backward_reads_output() const override { return false; }
  const DropoutConfig& config() const { return cfg_; }

  void reserve(std::int64_t batch) override;
  std::int64_t workspace_floats(std::int64_t batch) const override;
  std::int64_t allocated_workspace_floats() const override { return mask_.size() + noise_.size(); }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  std::int64_t noise_batch(std::int64_t n) const;
  void ensure_workspace(std::int64_t n);
  void expand_noise(std::int64_t n);

  DropoutConfig cfg_;
  Rng rng_;                      // draws one seed per training call; the mask kernel chunks it
  bool masked_ = false;          // the last forward applied a mask (training and rate > 0)
  Shape noise_dims_;             // per-sample noise dims, None resolved (empty: no noise_shape)
  std::int64_t noise_size_ = 0;  // floats per sample of noise
  Buffer mask_;                  // [n, input_shape...]: 0 or 1 / (1 - rate)
  Buffer noise_;                 // [noise batch, noise_dims...] before broadcasting
  Shape full_, stride_, idx_;    // expand_noise's odometer over [n, input_shape...], sized at build
};

}  // namespace cnnx
