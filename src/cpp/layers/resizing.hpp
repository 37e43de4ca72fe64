// Resizing: Keras' keras.layers.Resizing(height, width, interpolation="bilinear",
// crop_to_aspect_ratio=False). Always active (training and inference), as tf.image.resize with
// half-pixel centres and antialias off: "bilinear" or "nearest". crop_to_aspect_ratio first
// takes the largest centred window with the target aspect ratio (Keras' crop box). Backward
// scatters dy with the same bilinear weights (the transpose of the sampling).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/resizing.hpp"

namespace cnnx {

class Resizing : public Layer {
 public:
  Resizing(std::string name, ResizingConfig config);
  std::string class_name() const override { return "Resizing"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  const ResizingConfig& config() const { return cfg_; }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;

 private:
  ResizingConfig cfg_;
  // Sampling tables per output row / column (kernels::ResizeAxis), filled at build.
  std::vector<std::int64_t> row_lo_, row_hi_, col_lo_, col_hi_;
  std::vector<float> row_frac_, col_frac_;
};

}  // namespace cnnx
