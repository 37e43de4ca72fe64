// Concatenate: Keras' keras.layers.Concatenate(axis=-1). Joins a list of inputs along `axis`;
// every other dimension must match. The axis counts the batch axis as Keras does (axis=1 is the
// first per-sample axis, -1 the last); the batch axis itself (0, or -(rank + 1)) is refused.
// The common case is the channels of NHWC maps (DenseNet): each input then contributes one
// contiguous run of channels per pixel.
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/concatenate.hpp"

namespace cnnx {

class Concatenate : public Layer {
 public:
  Concatenate(std::string name, std::int64_t axis);  // ValueError for axis=0 (the batch axis)
  std::string class_name() const override { return "Concatenate"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  std::int64_t axis() const { return axis_; }
  int min_inputs() const override { return 1; }
  int max_inputs() const override { return -1; }

  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;
  void forward_inputs(const float* const* xs, float* y, std::int64_t n, bool training) override;
  void backward_inputs(const float* const* xs, const float* y, float* dy, float* const* dxs, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;
  Shape do_build_inputs(const std::vector<Shape>& input_shapes, Rng& rng) override;

 private:
  std::int64_t axis_;
  // Set by build: per sample, `outer_` rows; in each, input i is a run of runs_[i] floats at
  // offsets_[i] inside an output row of out_run_ floats.
  std::int64_t outer_ = 0, out_run_ = 0;
  std::vector<std::int64_t> runs_, offsets_;
};

}  // namespace cnnx
