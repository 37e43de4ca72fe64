// The element-wise merge layers, Keras' keras.layers.Add, Subtract, Multiply, Average, Maximum
// and Minimum: y = op(x_0, ..., x_{k-1}) element by element. They take a list of inputs (the
// *_inputs forms of Layer); the one-input forms throw ValueError naming the layer. Subtract takes
// exactly 2 inputs (x_0 - x_1), the others at least 1, as in Keras 3.
// Shapes: every input has the same per-sample shape, which is also the output's. Keras also
// broadcasts size-1 axes and pads lower ranks; cnnx refuses those with Keras' message
// ("Inputs have incompatible shapes. Received shapes (4, 4, 8) and (4, 4, 16)").
// Maximum / Minimum backward: where several inputs attain the extreme, the whole gradient goes to
// the first of them in input order (the rule of Keras' chained maximum(maximum(x0, x1), x2) on
// TensorFlow, whose maximum gradient favours its first argument on ties).
#pragma once

#include "cnnx/layer.hpp"
#include "cnnx/layers/merge.hpp"

namespace cnnx {

enum class MergeOp { add, subtract, multiply, average, maximum, minimum };

class Merge : public Layer {
 public:
  Merge(std::string name, MergeOp op) : Layer(std::move(name)), op_(op) {}
  std::string class_name() const override;  // "Add", "Subtract", ...
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
  MergeOp op() const { return op_; }
  // Sums and differences need only dy; products and extremes read the inputs (and y).
  bool backward_reads_inputs() const override {
    return op_ == MergeOp::multiply || op_ == MergeOp::maximum || op_ == MergeOp::minimum;
  }
  bool backward_reads_output() const override { return op_ == MergeOp::maximum || op_ == MergeOp::minimum; }
  int min_inputs() const override { return op_ == MergeOp::subtract ? 2 : 1; }
  int max_inputs() const override { return op_ == MergeOp::subtract ? 2 : -1; }

  void forward(const float* x, float* y, std::int64_t n, bool training) override;
  void backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) override;
  void forward_inputs(const float* const* xs, float* y, std::int64_t n, bool training) override;
  // Overwrites dy (Maximum / Minimum hand each element's gradient out once, zeroing it in dy).
  void backward_inputs(const float* const* xs, const float* y, float* dy, float* const* dxs, std::int64_t n) override;

 protected:
  Shape do_build(const Shape& input_shape, Rng& rng) override;
  Shape do_build_inputs(const std::vector<Shape>& input_shapes, Rng& rng) override;

 private:
  MergeOp op_;
};

// The Keras class names, for C++ users and the bindings; all behaviour is Merge's.
class Add : public Merge {
 public:
  explicit Add(std::string name) : Merge(std::move(name), MergeOp::add) {}
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};
class Subtract : public Merge {
 public:
  explicit Subtract(std::string name) : Merge(std::move(name), MergeOp::subtract) {}
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};
class Multiply : public Merge {
 public:
  explicit Multiply(std::string name) : Merge(std::move(name), MergeOp::multiply) {}
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};
class Average : public Merge {
 public:
  explicit Average(std::string name) : Merge(std::move(name), MergeOp::average) {}
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};
class Maximum : public Merge {
 public:
  explicit Maximum(std::string name) : Merge(std::move(name), MergeOp::maximum) {}
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};
class Minimum : public Merge {
 public:
  explicit Minimum(std::string name) : Merge(std::move(name), MergeOp::minimum) {}
  std::shared_ptr<Layer> clone() const override { return make_clone(*this); }
};

}  // namespace cnnx
