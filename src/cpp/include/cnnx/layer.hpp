// The Layer interface. A layer is configured at construction (arguments validated there),
// builds its weights from the per-sample input shape(s), and then runs forward and backward on
// raw NHWC batches whose buffers the model owns. Gradients are +dL/dtheta, stored next to each
// parameter and overwritten (not accumulated) by every backward call.
// Most layers take one input tensor; merge layers (Add, Concatenate, ...) take several and
// override the *_inputs forms. A model graph calls only the *_inputs forms.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnx/activations.hpp"
#include "cnnx/export.hpp"
#include "cnnx/random.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

namespace detail {
struct LayerAccess;
}  // namespace detail

struct Param {
  std::string name;  // Keras' weight name: "kernel", "bias"
  Tensor value;      // in Keras' shape, e.g. Conv2D kernel (kh, kw, cin, cout)
  Tensor grad;       // same shape as value
  bool trainable = true;
  // Keras' kernel_regularizer / bias_regularizer: the loss gains l1 * sum|w| + l2 * sum w^2.
  double l1 = 0.0, l2 = 0.0;
};

class CNNX_API Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
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
  // The general form: one shape per input. Throws ValueError naming the layer when the number
  // of inputs is outside [min_inputs(), max_inputs()].
  const Shape& build(const std::vector<Shape>& input_shapes, std::uint64_t seed, std::int64_t max_param_floats = -1);
  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shapes_.front(); }  // the first input's
  const std::vector<Shape>& input_shapes() const { return input_shapes_; }
  const Shape& output_shape() const { return output_shape_; }
  virtual int min_inputs() const { return 1; }
  virtual int max_inputs() const { return 1; }  // -1: no limit

  // Sizes layer-owned workspaces for batches of up to `batch` samples. Called by the model
  // outside the training loop so that forward/backward never allocate.
  virtual void reserve(std::int64_t batch) { (void)batch; }
  // Floats of scratch the layer needs for batches of `batch` (what reserve(batch) allocates
  // on a fresh layer; int32 workspaces count one float each), computed without allocating:
  // for plans (cnnx.planning). 0 for layers without workspaces.
  virtual std::int64_t workspace_floats(std::int64_t batch) const {
    (void)batch;
    return 0;
  }
  // Floats of scratch the layer holds now (workspaces only grow): tests compare it with
  // workspace_floats of the largest batch reserved.
  virtual std::int64_t allocated_workspace_floats() const { return 0; }

  // x: [n, input_shape...], y: [n, output_shape...]. `training` switches layers such as
  // Dropout; conv/dense keep what backward needs only when training.
  virtual void forward(const float* x, float* y, std::int64_t n, bool training) = 0;
  // x, y: this layer's last forward input/output. dy: dL/dy, may be overwritten. dx: dL/dx
  // written here, or nullptr when no input gradient is needed (first layer).
  virtual void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) = 0;
  // Several inputs: xs[i] is input i; dxs[i] receives dL/d(input i), or is nullptr when that
  // input needs no gradient. The defaults call the one-input forms.
  virtual void forward_inputs(const float* const* xs, float* y, std::int64_t n, bool training) {
    forward(xs[0], y, n, training);
  }
  virtual void backward_inputs(const float* const* xs, const float* y, float* dy, float* const* dxs, std::int64_t n) {
    backward(xs[0], y, dy, dxs[0], n);
  }

  // What backward reads besides dy, so that a model keeps only those activations for backward
  // (graph_plan.hpp). The defaults are the safe answer; a layer overrides them only when its
  // backward never touches x or y.
  virtual bool backward_reads_inputs() const { return true; }
  virtual bool backward_reads_output() const { return true; }

  // Layers that draw random numbers in training (Dropout, the random augmentations) restart
  // their stream from `seed`. Data-parallel training gives each micro-batch a seed of its own,
  // so that its noise does not depend on which process runs it or what ran there before.
  virtual void reseed_noise(std::uint64_t seed) { (void)seed; }
  // Whether a training forward changes non-trainable params (BatchNormalization's moving
  // statistics): data-parallel training averages them over the micro-batches of a step.
  virtual bool updates_state_in_training() const { return false; }

  // Keras' layer.trainable. A frozen layer's weights are not updated and backward skips their
  // gradients (the input gradient still flows); a frozen BatchNormalization runs in inference
  // mode. Parameters that never train (moving statistics) have Param::trainable = false.
  bool trainable() const { return trainable_; }
  void set_trainable(bool on) { trainable_ = on; }
  // Whether backward must compute the weight gradients: trainable and with trainable params.
  bool computes_weight_grads() const;

  // A copy of this built layer for another node of a graph (a layer used twice) or for an
  // inference context of another thread: same configuration, shapes and state, its own
  // workspaces and gradients, and weights that are views of this layer's (Tensor::alias), so
  // updates to either are seen by both. This layer must outlive the clone.
  virtual std::shared_ptr<Layer> clone() const = 0;
  // Makes this layer's gradients views of `source`'s (a model's clone at a layer's first node,
  // so that the user's layer shows the gradient of the last step).
  void alias_gradients_of(Layer& source);

  // Weight penalties by weight name ("kernel", "bias"), kept for when build() creates the
  // weight; throws ValueError for negative factors.
  void set_regularizer(const std::string& weight, double l1, double l2);
  // (weight name, (l1, l2)) as set, in the order set (model files write them back).
  const std::vector<std::pair<std::string, std::pair<double, double>>>& regularizers() const { return regularizers_; }

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  std::int64_t count_params() const;

  // The activation fused at the end of this layer (the model's planner reads it).
  virtual Activation activation() const { return Activation::linear; }

 protected:
  virtual Shape do_build(const Shape& input_shape, Rng& rng) = 0;
  // Several inputs (merge layers override it); the default requires one input and calls do_build.
  virtual Shape do_build_inputs(const std::vector<Shape>& input_shapes, Rng& rng) {
    return do_build(input_shapes.front(), rng);
  }
  // For clone(): derived classes copy their configuration and state with the implicit copy
  // constructor; make_clone then aliases the weights.
  Layer(const Layer&) = default;
  template <class T>
  static std::shared_ptr<Layer> make_clone(const T& self) {
    auto copy = std::make_shared<T>(self);
    copy->alias_params_of(self);
    return copy;
  }
  void alias_params_of(const Layer& source);
  // Error message prefix naming the layer: "Conv2D 'conv2d_1'".
  std::string where() const { return class_name() + " '" + name_ + "'"; }
  // The one place weights are allocated: checks the shape's size and the build's parameter cap
  // first.
  Param& add_param(const std::string& name, const Shape& shape);
  // True when the model fused this layer's activation with the loss (softmax + cross-entropy):
  // backward then receives dL/dz directly (p - y), exact where the chained form would lose
  // digits, and must not apply the activation's derivative again.
  bool output_grad_is_preactivation() const { return dy_is_preactivation_; }

 private:
  friend struct detail::LayerAccess;  // the model sets the flag above (core-private)
  bool dy_is_preactivation_ = false;
  std::string name_;
  bool built_ = false;
  bool trainable_ = true;
  std::vector<Shape> input_shapes_{Shape{}};
  Shape output_shape_;
  std::vector<Param> params_;
  std::int64_t max_param_floats_ = -1;  // the cap of the build() in progress
  std::vector<std::pair<std::string, std::pair<double, double>>> regularizers_;
};

}  // namespace cnnx
