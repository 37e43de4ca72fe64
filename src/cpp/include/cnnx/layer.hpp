// The Layer interface. A layer is configured at construction (arguments validated there),
// builds its weights from the per-sample input shape, and then runs forward and backward on
// raw NHWC batches whose buffers the model owns. Gradients are +dL/dtheta, stored next to each
// parameter and overwritten (not accumulated) by every backward call.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cnnx/activations.hpp"
#include "cnnx/random.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

struct Param {
  std::string name;  // Keras' weight name: "kernel", "bias"
  Tensor value;      // in Keras' shape, e.g. Conv2D kernel (kh, kw, cin, cout)
  Tensor grad;       // same shape as value
  bool trainable = true;
  // Keras' kernel_regularizer / bias_regularizer: the loss gains l1 * sum|w| + l2 * sum w^2.
  double l1 = 0.0, l2 = 0.0;
};

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  const std::string& name() const { return name_; }
  virtual std::string class_name() const = 0;

  // Validates `input_shape` (one sample, no batch dim), creates the weights drawing from a
  // seeded Rng, and returns the per-sample output shape. Building twice with the same shape
  // is a no-op; with another shape it throws ValueError. Size problems come out as ValueError
  // naming the layer: an element count that overflows int64, or an input or output sample of
  // more than kMaxSampleElements (tensor.hpp). max_param_floats >= 0 caps the parameter floats
  // the layer may create (checked before each weight is allocated, so a model file's config
  // cannot make the loader allocate more than the file holds); -1: no cap.
  const Shape& build(const Shape& input_shape, std::uint64_t seed, std::int64_t max_param_floats = -1);
  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const { return output_shape_; }

  // Sizes layer-owned workspaces for batches of up to `batch` samples. Called by the model
  // outside the training loop so that forward/backward never allocate.
  virtual void reserve(std::int64_t batch) { (void)batch; }

  // x: [n, input_shape...], y: [n, output_shape...]. `training` switches layers such as
  // Dropout; conv/dense keep what backward needs only when training.
  virtual void forward(const float* x, float* y, std::int64_t n, bool training) = 0;
  // x, y: this layer's last forward input/output. dy: dL/dy, may be overwritten. dx: dL/dx
  // written here, or nullptr when no input gradient is needed (first layer).
  virtual void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) = 0;

  // Weight penalties by weight name ("kernel", "bias"), kept for when build() creates the
  // weight; throws ValueError for negative factors.
  void set_regularizer(const std::string& weight, double l1, double l2);

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  std::int64_t count_params() const;

  // The activation fused at the end of this layer. When the model fuses the last softmax with
  // a cross-entropy loss, it calls set_output_grad_is_preactivation(true) and backward then
  // receives dL/dz directly (p - y), which is exact where the chained form would lose digits.
  virtual Activation activation() const { return Activation::linear; }
  void set_output_grad_is_preactivation(bool v) { dy_is_preactivation_ = v; }

 protected:
  virtual Shape do_build(const Shape& input_shape, Rng& rng) = 0;
  // Error message prefix naming the layer: "Conv2D 'conv2d_1'".
  std::string where() const { return class_name() + " '" + name_ + "'"; }
  // The one place weights are allocated: checks the shape's size and the build's parameter cap
  // first.
  Param& add_param(const std::string& name, const Shape& shape);
  bool dy_is_preactivation_ = false;

 private:
  std::string name_;
  bool built_ = false;
  Shape input_shape_, output_shape_;
  std::vector<Param> params_;
  std::int64_t max_param_floats_ = -1;  // the cap of the build() in progress
  std::vector<std::pair<std::string, std::pair<double, double>>> regularizers_;
};

}  // namespace cnnx
