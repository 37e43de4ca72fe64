// Sequential: the training step in one call. Buffers: outputs_[i] holds layer i's output for
// the current batch (backward needs them), two ping-pong gradient buffers sized for the largest
// activation carry dL/d(activation) backward. All are sized by reserve() for the largest batch
// seen, then reused: the steady-state step allocates nothing.
#include "cnnx/sequential.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "cnnx/error.hpp"
#include "cnnx/layers/conv2d.hpp"
#include "cnnx/layers/max_pooling2d.hpp"
#include "cnnx/parallel.hpp"
#include "cnnx/random.hpp"

namespace cnnx {
namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

void Sequential::set_profiling(bool on) {
  profiling_ = on;
  profile_.clear();
  if (!on) return;
  for (const auto& l : layers_) profile_.push_back({l->name()});
  profile_.push_back({"loss + optimizer"});
}

void Sequential::add(std::shared_ptr<Layer> layer) {
  if (!layer) throw TypeError("Sequential.add: expected a Layer, received None");
  if (built_) throw ValueError("Sequential.add: the model is already built; add layers before building it");
  for (const auto& l : layers_)
    if (l.get() == layer.get() || l->name() == layer->name())
      throw ValueError("Sequential.add: the model already has a layer named '" + layer->name() +
                       "'; layer names must be unique");
  layers_.push_back(std::move(layer));
}

void Sequential::build(const Shape& input_shape) {
  if (built_) {
    if (input_shape != input_shape_)
      throw ValueError("Sequential: already built for input shape " + shape_str(input_shape_) + ", received " +
                       shape_str(input_shape));
    return;
  }
  if (layers_.empty()) throw ValueError("Sequential: cannot build a model with no layers");
  Shape shape = input_shape;
  for (auto& layer : layers_) shape = layer->build(shape, next_seed());
  input_shape_ = input_shape;
  outputs_.resize(layers_.size());
  // The parameter list and the first layer with weights are fixed once built: the training step
  // reuses them instead of collecting them every batch.
  trainable_.clear();
  for (auto& l : layers_)
    for (auto& p : l->params())
      if (p.trainable) trainable_.push_back(&p);
  first_with_weights_ = 0;
  auto has_trainable = [](const Layer& l) {
    for (const auto& p : l.params())
      if (p.trainable) return true;
    return false;
  };
  while (first_with_weights_ < layers_.size() && !has_trainable(*layers_[first_with_weights_])) ++first_with_weights_;
  built_ = true;
  configure_fusion();
}

const Shape& Sequential::output_shape() const {
  if (!built_) throw ValueError("Sequential: the model is not built yet");
  return layers_.back()->output_shape();
}

void Sequential::compile(std::shared_ptr<Loss> loss, std::shared_ptr<Optimizer> optimizer) {
  if (!loss) throw TypeError("Sequential.compile: expected a loss, received None");
  if (!optimizer) throw TypeError("Sequential.compile: expected an optimizer, received None");
  loss_ = std::move(loss);
  optimizer_ = std::move(optimizer);
  configure_fusion();
}

// Two gradient shortcuts, both exact: softmax + cross-entropy hands the last layer dL/dz = p - y,
// and a MaxPooling2D after a ReLU layer applies the ReLU derivative in its scatter (pool.hpp).
void Sequential::configure_fusion() {
  if (!built_) return;
  // Conv2D (ReLU or linear) + MaxPooling2D run as one pass per chunk of images (conv2d.hpp).
  fused_pool_.assign(layers_.size(), false);
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
    auto* conv = dynamic_cast<Conv2D*>(layers_[i].get());
    auto* pool = dynamic_cast<MaxPooling2D*>(layers_[i + 1].get());
    if (!conv) continue;
    const bool fuse = pool && (conv->activation() == Activation::relu || conv->activation() == Activation::linear);
    conv->set_fused_pool(fuse ? &pool->geometry() : nullptr);
    fused_pool_[i] = fuse;
  }
  for (auto& l : layers_) l->set_output_grad_is_preactivation(false);
  for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
    auto* pool = dynamic_cast<MaxPooling2D*>(layers_[i + 1].get());
    if (!pool || fused_pool_[i]) continue;  // a fused conv + pool handles its ReLU in backward_pooled
    const bool fuse = layers_[i]->activation() == Activation::relu;
    pool->set_fuse_relu_backward(fuse);
    layers_[i]->set_output_grad_is_preactivation(fuse);
  }
  if (!loss_) return;
  fuse_output_ =
      loss_->fusable_activation() != Activation::linear && layers_.back()->activation() == loss_->fusable_activation();
  if (fuse_output_) layers_.back()->set_output_grad_is_preactivation(true);
}

void Sequential::set_metrics(AccuracyKind accuracy, float threshold, int top_k) {
  if (top_k < 0) throw ValueError("Sequential: expected top_k >= 0, received " + std::to_string(top_k));
  accuracy_ = accuracy;
  threshold_ = threshold;
  top_k_ = top_k;
}

void Sequential::reserve(std::int64_t batch) {
  if (!built_) throw ValueError("Sequential: build the model before running it");
  if (batch <= capacity_) return;
  std::int64_t largest = shape_size(input_shape_);
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    Layer& layer = *layers_[i];
    // Name the layer whose activations or workspace do not fit (the messages come from deep
    // in the size arithmetic or the allocator).
    try {
      const std::int64_t size = shape_size(layer.output_shape());
      if (!fused_pool_[i]) outputs_[i].resize(checked_mul(batch, size));  // a fused conv's output stays in L2
      largest = std::max(largest, size);
      layer.reserve(batch);
    } catch (const SizeError& e) {
      throw ValueError(layer.class_name() + " '" + layer.name() + "': batch of " + std::to_string(batch) +
                       " samples: " + e.what());
    } catch (const AllocationError& e) {
      throw AllocationError(layer.class_name() + " '" + layer.name() + "': batch of " + std::to_string(batch) +
                            " samples: " + e.what());
    }
  }
  try {
    input_.resize(checked_mul(batch, shape_size(input_shape_)));
    grad_a_.resize(checked_mul(batch, largest));
    grad_b_.resize(checked_mul(batch, largest));
  } catch (const SizeError& e) {
    throw ValueError("Sequential: batch of " + std::to_string(batch) + " samples: " + e.what());
  }
  capacity_ = batch;
}

const std::vector<Param*>& Sequential::trainable_params() const {
  if (!built_) throw ValueError("Sequential: the model is not built yet");
  return trainable_;
}

void Sequential::check_batch(const Batch& b) const {
  if (!built_) throw ValueError("Sequential: build the model before training it");
  if (!loss_) throw ValueError("Sequential: call compile() before training or evaluating the model");
  if (b.n <= 0) throw ValueError("Sequential: expected a batch of at least 1 sample, received 0");
  loss_->check_targets(output_shape(), b.target_dim);
  if (!b.index && b.n > b.count)
    throw IndexError("Sequential: batch of " + std::to_string(b.n) + " samples but only " + std::to_string(b.count) +
                     " given");
  if (b.index)
    for (std::int64_t i = 0; i < b.n; ++i)
      if (b.index[i] < 0 || b.index[i] >= b.count)
        throw IndexError("Sequential: sample index " + std::to_string(b.index[i]) + " out of range for " +
                         std::to_string(b.count) + " samples");
}

const float* Sequential::gather(const Batch& b) {
  const std::int64_t xs = shape_size(input_shape_), ys = b.target_dim;
  if (b.sample_weight) {  // one weight per sample, repeated over the sample's rows of output
    const Shape& out = output_shape();
    const std::int64_t per = shape_size(out) / out.back();
    row_weights_.resize(checked_mul(b.n, per));
    for (std::int64_t i = 0; i < b.n; ++i) {
      const float w = b.sample_weight[b.index ? b.index[i] : i];
      for (std::int64_t r = 0; r < per; ++r) row_weights_.data()[i * per + r] = w;
    }
  }
  if (!b.index) {  // contiguous rows: read x and y in place
    batch_targets_ = b.y;
    return b.x;
  }
  targets_.resize(checked_mul(b.n, ys));
  batch_targets_ = targets_.data();
  for (std::int64_t i = 0; i < b.n; ++i) {
    std::memcpy(input_.data() + i * xs, b.x + b.index[i] * xs, sizeof(float) * xs);
    std::memcpy(targets_.data() + i * ys, b.y + b.index[i] * ys, sizeof(float) * ys);
  }
  return input_.data();
}

void Sequential::forward(const float* x, std::int64_t n, bool training) {
  const float* in = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const double t0 = profiling_ ? now_seconds() : 0.0;
    if (fused_pool_[i]) {  // conv + pool in one pass; the time is booked to the conv
      auto* pool = static_cast<MaxPooling2D*>(layers_[i + 1].get());
      static_cast<Conv2D*>(layers_[i].get())->forward_pooled(in, n, outputs_[i + 1].data(), pool->argmax_for(n));
    } else {
      layers_[i]->forward(in, outputs_[i].data(), n, training);
    }
    if (profiling_) {
      profile_[i].forward_seconds += now_seconds() - t0;
      ++profile_[i].forward_calls;
    }
    if (fused_pool_[i]) ++i;
    in = outputs_[i].data();
  }
}

StepResult Sequential::score(const Batch& b, float* grad) {
  const Shape& out_shape = output_shape();
  const std::int64_t classes = out_shape.back();
  const std::int64_t rows = b.n * shape_size(out_shape) / classes;
  const float* out = outputs_.back().data();
  const float* y = batch_targets_;
  StepResult r;
  r.loss = loss_->compute(out, y, b.sample_weight ? row_weights_.data() : nullptr, rows, classes, grad, fuse_output_);
  const bool sparse = loss_->sparse_targets();
  if (accuracy_ == AccuracyKind::binary) {
    r.rows = rows * classes;
    for (std::int64_t i = 0; i < rows * classes; ++i) r.correct += (out[i] > threshold_) == (y[i] > 0.5f);
  } else {
    r.rows = rows;
  }
  for (std::int64_t i = 0; i < rows && (accuracy_ == AccuracyKind::argmax || top_k_ > 0); ++i) {
    const float* o = out + i * classes;
    std::int64_t truth;
    if (sparse) {
      truth = static_cast<std::int64_t>(y[i]);
    } else {
      const float* t = y + i * classes;
      truth = std::max_element(t, t + classes) - t;
    }
    if (accuracy_ == AccuracyKind::argmax) r.correct += (std::max_element(o, o + classes) - o) == truth;
    if (top_k_ > 0) {  // in the top k unless k or more classes score strictly higher (TF's in_top_k)
      std::int64_t higher = 0;
      for (std::int64_t c = 0; c < classes; ++c) higher += o[c] > o[truth];
      r.top_k_correct += higher < top_k_;
    }
  }
  return r;
}

StepResult Sequential::train_step(const Batch& b) {
  check_batch(b);
  reserve(b.n);
  const float* x = gather(b);
  forward(x, b.n, true);
  float* dy = grad_a_.data();
  float* dx = grad_b_.data();
  double t0 = profiling_ ? now_seconds() : 0.0;
  StepResult r = score(b, dy);
  double loss_seconds = profiling_ ? now_seconds() - t0 : 0.0;
  // Layers before the first one with trainable weights (input preprocessing and augmentation, typically)
  // need no gradient at all: backward stops at that layer, which gets no dx to fill.
  const std::size_t first = first_with_weights_;
  for (std::size_t i = layers_.size(); i-- > first;) {
    if (i > 0 && fused_pool_[i - 1]) {  // backward of the pool and its conv in one pass
      --i;
      auto* pool = static_cast<MaxPooling2D*>(layers_[i + 1].get());
      if (profiling_) t0 = now_seconds();
      static_cast<Conv2D*>(layers_[i].get())
          ->backward_pooled(i == 0 ? x : outputs_[i - 1].data(), outputs_[i + 1].data(), dy, pool->argmax_for(b.n),
                            i == first ? nullptr : dx, b.n);
    } else {
      const float* in = i == 0 ? x : outputs_[i - 1].data();
      if (profiling_) t0 = now_seconds();
      layers_[i]->backward(in, outputs_[i].data(), dy, i == first ? nullptr : dx, b.n);
    }
    if (profiling_) {
      profile_[i].backward_seconds += now_seconds() - t0;
      ++profile_[i].backward_calls;
    }
    std::swap(dy, dx);
  }
  if (profiling_) t0 = now_seconds();
  r.loss += apply_regularization(true);
  optimizer_->apply(trainable_);
  if (profiling_) {
    profile_.back().backward_seconds += loss_seconds + now_seconds() - t0;
    ++profile_.back().backward_calls;
  }
  return r;
}

StepResult Sequential::test_step(const Batch& b) {
  check_batch(b);
  reserve(b.n);
  forward(gather(b), b.n, false);
  StepResult r = score(b, nullptr);
  r.loss += apply_regularization(false);
  return r;
}

// Keras adds each weight penalty to the loss (in training and evaluation alike); in training
// its gradient l1 sign(w) + 2 l2 w joins the weight's gradient before the update.
double Sequential::apply_regularization(bool add_gradients) {
  double penalty = 0.0;
  for (auto* p : trainable_) {
    if (p->l1 == 0.0 && p->l2 == 0.0) continue;
    const float* w = p->value.data();
    float* g = p->grad.data();
    const float l1 = float(p->l1), l2x2 = float(2.0 * p->l2);
    double s1 = 0.0, s2 = 0.0;
    for (std::int64_t i = 0; i < p->value.size(); ++i) {
      s1 += std::abs(double(w[i]));
      s2 += double(w[i]) * w[i];
      if (add_gradients) g[i] += l1 * float((w[i] > 0.0f) - (w[i] < 0.0f)) + l2x2 * w[i];
    }
    penalty += p->l1 * s1 + p->l2 * s2;
  }
  return penalty;
}

void Sequential::predict(const float* x, std::int64_t n, float* out, std::int64_t chunk) {
  if (!built_) throw ValueError("Sequential: build the model before predicting");
  if (chunk <= 0) throw ValueError("Sequential.predict: expected batch_size >= 1, received " + std::to_string(chunk));
  const std::int64_t xs = shape_size(input_shape_), os = shape_size(output_shape());
  reserve(std::min(n, chunk));
  for (std::int64_t start = 0; start < n; start += chunk) {
    const std::int64_t m = std::min(chunk, n - start);
    forward(x + start * xs, m, false);
    std::memcpy(out + start * os, outputs_.back().data(), sizeof(float) * m * os);
  }
}

}  // namespace cnnx
