// GlobalAveragePooling2D and GlobalMaxPooling2D: Keras' layers of those names on NHWC input,
// (h, w, c) -> (c,), or (1, 1, c) with keepdims=True.
#pragma once

#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/layers/global_pooling2d.hpp"

namespace cnnx {

class GlobalPooling2D : public Layer {
 public:
  GlobalPooling2D(std::string name, bool keepdims) : Layer(std::move(name)), keepdims_(keepdims) {}
  bool backward_reads_inputs() const override { return false; }
  bool backward_reads_output() const override { return false; }
  bool keepdims() const { return keepdims_; }

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;
  std::int64_t pixels() const { return input_shape()[0] * input_shape()[1]; }
  std::int64_t channels() const { return input_shape()[2]; }

 private:
  bool keepdims_;
};

class GlobalAveragePooling2D : public GlobalPooling2D {
 public:
  using GlobalPooling2D::GlobalPooling2D;
  std::string class_name() const override { return "GlobalAveragePooling2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;
};

class GlobalMaxPooling2D : public GlobalPooling2D {
 public:
  using GlobalPooling2D::GlobalPooling2D;
  std::string class_name() const override { return "GlobalMaxPooling2D"; }
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  void reserve(std::int64_t batch) override;
  std::int64_t workspace_floats(std::int64_t batch) const override { return checked_mul(batch, channels()); }
  std::int64_t allocated_workspace_floats() const override { return static_cast<std::int64_t>(argmax_.size()); }
  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;

 private:
  std::vector<std::int32_t> argmax_;  // [n, c]: the winning pixel per image and channel
};

}  // namespace cnnx
