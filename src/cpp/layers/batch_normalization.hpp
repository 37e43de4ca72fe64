// BatchNormalization: Keras' keras.layers.BatchNormalization over the last (channels) axis of an
// input of any rank. Training normalises with the batch's mean and biased variance and moves
// moving = moving * momentum + batch * (1 - momentum); inference uses the moving statistics.
// Weights in Keras' order: gamma (if scale), beta (if center), moving_mean, moving_variance; the
// moving ones are non-trainable (the optimizer skips them).
#pragma once

#include <string>

#include "cnnx/layer.hpp"
#include "cnnx/layers/batch_normalization.hpp"

namespace cnnx {

class BatchNormalization : public Layer {
 public:
  BatchNormalization(std::string name, BatchNormalizationConfig config);
  std::string class_name() const override { return "BatchNormalization"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool updates_state_in_training() const override { return trainable(); }
  const BatchNormalizationConfig& config() const { return cfg_; }
  bool backward_reads_output() const override { return false; }

  void reserve(std::int64_t batch) override;
  // The [rows, c] scratch plus eight per-channel vectors (allocated at build).
  std::int64_t workspace_floats(std::int64_t batch) const override;
  std::int64_t allocated_workspace_floats() const override;
  // Backward follows the mode of the last forward: through the batch statistics after a
  // training forward, through the fixed moving statistics after an inference one.
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  std::int64_t channels() const { return input_shape().back(); }
  std::int64_t rows(std::int64_t n) const { return n * (shape_size(input_shape()) / channels()); }

  BatchNormalizationConfig cfg_;
  int gamma_ = -1, beta_ = -1, moving_mean_ = -1, moving_var_ = -1;  // indices into params()
  bool training_ = false;                                            // mode of the last forward
  // Per channel: the statistics the last forward used, the variance, and coefficients.
  Buffer mean_, var_, invstd_, k1_, k2_, k3_, sum_dy_, sum_dyx_;
  Buffer tmp_;  // [rows, c] scratch for the squared deviations and dy * (x - mean)
};

}  // namespace cnnx
