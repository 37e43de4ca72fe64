// Model: graph construction, build, and the training / inference steps over the plan
// (graph_plan.hpp). Buffers are sized by reserve() for the largest batch seen, then reused:
// the steady-state step allocates nothing.
#include "cnnx/model.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "cnnx/error.hpp"
#include "cnnx/random.hpp"
#include "graph_plan.hpp"
#include "layers/conv2d.hpp"
#include "layers/max_pooling2d.hpp"

namespace cnnx {
namespace {
double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// "(10, 28, 28, 3)" with every dim as given (shape_str prints a negative dim as Python's None).
std::string dims_str(const Shape& dims) {
  std::string s = "(";
  for (std::size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

std::string shapes_str(const std::vector<Shape>& shapes) {
  std::string s;
  for (std::size_t i = 0; i < shapes.size(); ++i) s += (i ? ", " : "") + batch_shape_str(shapes[i]);
  return s;
}
}  // namespace

Model::Model() = default;
Model::~Model() = default;

std::int64_t InferenceContext::allocated_floats() const {
  std::int64_t n = 0;
  for (const auto& b : slots_) n += b.size();
  return n;
}

// -- the graph ------------------------------------------------------------------------------

int Model::add_input(const Shape& shape) {
  if (built_) throw ValueError("Model: the model is already built; add its input before building it");
  if (!nodes_.empty()) throw ValueError("Model: the model already has an input; cnnx models take one input");
  for (auto d : shape)
    if (d <= 0)
      throw ValueError("Model: expected an input shape with positive dimensions, received " + shape_str(shape));
  input_shape_ = shape;
  nodes_.push_back({nullptr, {}});
  return 0;
}

int Model::add_node(std::shared_ptr<Layer> layer, const std::vector<int>& inputs) {
  if (!layer) throw TypeError("Model: expected a layer, received a null layer");
  if (built_) throw ValueError("Model: the model is already built; add layers before building it");
  if (nodes_.empty()) throw ValueError("Model: add the model's input before its layers");
  const int id = static_cast<int>(nodes_.size());
  for (int u : inputs)
    if (u < 0 || u >= id)
      throw IndexError("Model: layer '" + layer->name() + "' reads node " + std::to_string(u) +
                       ", expected an earlier node in [0, " + std::to_string(id - 1) + "]");
  const int count = static_cast<int>(inputs.size());
  if (count < layer->min_inputs() || (layer->max_inputs() >= 0 && count > layer->max_inputs()))
    throw ValueError(layer->class_name() + " '" + layer->name() + "': expected " +
                     (layer->max_inputs() == 1 ? std::string("1 input") : "several inputs") + ", received " +
                     std::to_string(count));
  bool seen = false;
  for (const auto& l : layers_) {
    if (l == layer) seen = true;
    if (l != layer && l->name() == layer->name())
      throw ValueError("Model: the model already has a layer named '" + layer->name() +
                       "'; layer names must be unique");
  }
  if (!seen) layers_.push_back(layer);
  nodes_.push_back({std::move(layer), inputs});
  return id;
}

void Model::set_output(int node) {
  if (built_) throw ValueError("Model: the model is already built");
  if (node <= 0 || node >= node_count())
    throw IndexError("Model: expected the output to be a layer node in [1, " + std::to_string(node_count() - 1) +
                     "], received " + std::to_string(node));
  output_ = node;
}

const std::vector<int>& Model::node_inputs(int node) const {
  if (node < 0 || node >= node_count()) throw IndexError("Model: no node " + std::to_string(node));
  return nodes_[node].inputs;
}

const std::shared_ptr<Layer>& Model::node_layer(int node) const {
  if (node < 0 || node >= node_count()) throw IndexError("Model: no node " + std::to_string(node));
  return nodes_[node].layer;
}

void Model::require_built(const char* what) const {
  if (!built_) throw ValueError(std::string("Model: build the model before ") + what);
}

const Shape& Model::input_shape() const {
  if (nodes_.empty()) throw ValueError("Model: the model has no input yet");
  return input_shape_;
}

const Shape& Model::output_shape() const {
  if (!built_) throw ValueError("Model: the model is not built yet");
  return nodes_[output_].layer->output_shape();
}

std::int64_t Model::input_size() const {
  require_built("asking its input size");
  return shape_size(input_shape_);
}

std::int64_t Model::output_size() const { return shape_size(output_shape()); }

void Model::build() {
  if (built_) return;
  if (nodes_.size() < 2) throw ValueError("Model: cannot build a model with no layers");
  if (output_ < 0) throw ValueError("Model: set the model's output before building it");
  // Every node must lead to the output: a dead branch would cost time and get no gradient.
  std::vector<bool> live(nodes_.size(), false);
  live[output_] = true;
  for (int i = output_; i >= 0; --i)
    if (live[i])
      for (int u : nodes_[i].inputs) live[u] = true;
  for (int i = 1; i < node_count(); ++i)
    if (!live[i])
      throw ValueError("Model: layer '" + nodes_[i].layer->name() + "' (node " + std::to_string(i) +
                       ") does not lead to the model's output");
  if (!live[0]) throw ValueError("Model: the output does not depend on the model's input");
  std::vector<Shape> shapes(nodes_.size());
  shapes[0] = input_shape_;
  std::vector<bool> first_use(nodes_.size(), false);
  std::vector<const Layer*> seen;
  for (int i = 1; i < node_count(); ++i) {
    Layer& layer = *nodes_[i].layer;
    std::vector<Shape> in;
    for (int u : nodes_[i].inputs) in.push_back(shapes[u]);
    if (std::find(seen.begin(), seen.end(), &layer) == seen.end()) {
      seen.push_back(&layer);
      first_use[i] = true;
      shapes[i] = layer.build(in, next_seed());
    } else {
      if (in != layer.input_shapes())
        throw ValueError(layer.class_name() + " '" + layer.name() + "': a layer used twice needs the same input " +
                         "shapes; built for " + shapes_str(layer.input_shapes()) + ", received " + shapes_str(in));
      shapes[i] = layer.output_shape();
    }
  }
  // The model's own clones: the first node of each layer shares its gradients with the user's
  // layer (so Layer.get_gradients shows the summed gradient); later nodes have their own,
  // summed into the first after backward.
  runners_.assign(nodes_.size(), nullptr);
  shared_uses_.clear();
  for (int i = 1; i < node_count(); ++i) {
    runners_[i] = nodes_[i].layer->clone();
    if (first_use[i]) {
      runners_[i]->alias_gradients_of(*nodes_[i].layer);
    } else {
      for (int j = 1; j < i; ++j)
        if (first_use[j] && nodes_[j].layer == nodes_[i].layer) shared_uses_.push_back({i, j});
    }
  }
  built_ = true;
  plan_and_configure();
}

// Re-reads trainability from the user's layers, then plans and configures the runners.
void Model::plan_and_configure() {
  for (int i = 1; i < node_count(); ++i) runners_[i]->set_trainable(nodes_[i].layer->trainable());
  std::vector<std::vector<int>> inputs;
  for (const auto& n : nodes_) inputs.push_back(n.inputs);
  const Activation fusable = loss_ ? loss_->fusable_activation() : Activation::linear;
  plan_ = std::make_unique<GraphPlan>(plan_graph(inputs, runners_, shape_size(input_shape_), output_, fusable));
  apply_fusions(*plan_, runners_);
  trainable_.clear();
  for (int i = 1; i < node_count(); ++i) {
    const bool first = std::none_of(shared_uses_.begin(), shared_uses_.end(), [&](auto& s) { return s.first == i; });
    if (!first || !runners_[i]->trainable()) continue;
    for (auto& p : runners_[i]->params())
      if (p.trainable) trainable_.push_back(&p);
  }
  activations_.clear();
  gradients_.clear();
  scratch_.clear();
  capacity_ = 0;
  own_context_.reset();
  ++generation_;
  if (profiling_) set_profiling(true);
}

const std::vector<Param*>& Model::trainable_params() const {
  require_built("reading its weights");
  return trainable_;
}

// -- training -------------------------------------------------------------------------------

void Model::compile(std::shared_ptr<Loss> loss, std::shared_ptr<Optimizer> optimizer) {
  if (!loss) throw TypeError("Model.compile: expected a loss, received a null loss");
  if (!optimizer) throw TypeError("Model.compile: expected an optimizer, received a null optimizer");
  loss_ = std::move(loss);
  optimizer_ = std::move(optimizer);
  if (built_) plan_and_configure();
}

void Model::set_metrics(AccuracyKind accuracy, float threshold, int top_k) {
  if (top_k < 0) throw ValueError("Model: expected top_k >= 0, received " + std::to_string(top_k));
  accuracy_ = accuracy;
  threshold_ = threshold;
  top_k_ = top_k;
}

void Model::set_profiling(bool on) {
  profiling_ = on;
  profile_.clear();
  if (!on) return;
  for (int i = 1; i < node_count(); ++i) profile_.push_back({nodes_[i].layer->name()});
  profile_.push_back({"loss + optimizer"});
}

void Model::reserve(std::int64_t batch) {
  require_built("running it");
  if (batch <= capacity_) return;
  for (int i = 1; i < node_count(); ++i) {
    Layer& layer = *runners_[i];
    // Name the layer whose activations or workspace do not fit (the messages come from deep in
    // the size arithmetic or the allocator).
    try {
      const int slot = plan_->nodes[i].training_slot;
      if (slot >= 0) {
        if (static_cast<int>(activations_.size()) <= slot) activations_.resize(slot + 1);
        activations_[slot].resize(checked_mul(batch, plan_->training_slot_size[slot]));
      }
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
    gradients_.resize(plan_->gradient_slot_size.size());
    for (std::size_t s = 0; s < gradients_.size(); ++s)
      gradients_[s].resize(checked_mul(batch, plan_->gradient_slot_size[s]));
    scratch_.resize(plan_->scratch_count);
    for (auto& b : scratch_) b.resize(checked_mul(batch, plan_->scratch_size));
  } catch (const SizeError& e) {
    throw ValueError("Model: batch of " + std::to_string(batch) + " samples: " + e.what());
  }
  capacity_ = batch;
}

void Model::check_batch(const Batch& b) const {
  require_built("training it");
  if (!loss_) throw ValueError("Model: call compile() before training or evaluating the model");
  if (b.n <= 0) throw ValueError("Model: expected a batch of at least 1 sample, received 0");
  loss_->check_targets(output_shape(), b.target_dim);
  if (!b.index && b.n > b.count)
    throw IndexError("Model: batch of " + std::to_string(b.n) + " samples but only " + std::to_string(b.count) +
                     " given");
  if (b.index)
    for (std::int64_t i = 0; i < b.n; ++i)
      if (b.index[i] < 0 || b.index[i] >= b.count)
        throw IndexError("Model: sample index " + std::to_string(b.index[i]) + " out of range for " +
                         std::to_string(b.count) + " samples");
}

const float* Model::gather(const Batch& b) {
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

const float* Model::activation(int node, const float* x) const {
  return node == 0 ? x : activations_[plan_->nodes[node].training_slot].data();
}

void Model::forward(const float* x, std::int64_t n, bool training) {
  const float* xs[8];
  std::vector<const float*> many;  // for the rare node with more than 8 inputs
  for (int i = 1; i < node_count(); ++i) {
    const PlannedNode& node = plan_->nodes[i];
    if (node.fused_conv >= 0) continue;  // computed at its conv's step
    const double t0 = profiling_ ? now_seconds() : 0.0;
    if (node.fused_pool >= 0) {  // conv + pool in one pass; the time is booked to the conv
      auto* pool = static_cast<MaxPooling2D*>(runners_[node.fused_pool].get());
      static_cast<Conv2D*>(runners_[i].get())
          ->forward_pooled(activation(node.inputs[0], x), n,
                           activations_[plan_->nodes[node.fused_pool].training_slot].data(), pool->argmax_for(n));
    } else {
      const float** in = xs;
      if (node.inputs.size() > 8) {
        many.resize(node.inputs.size());
        in = many.data();
      }
      for (std::size_t k = 0; k < node.inputs.size(); ++k) in[k] = activation(node.inputs[k], x);
      runners_[i]->forward_inputs(in, activations_[node.training_slot].data(), n, training);
    }
    if (profiling_) {
      profile_[i - 1].forward_seconds += now_seconds() - t0;
      ++profile_[i - 1].forward_calls;
    }
  }
}

void Model::backward(const float* x, std::int64_t n) {
  const float* xs[8];
  float* dxs[8];
  std::vector<const float*> many_x;
  std::vector<float*> many_dx;
  for (int s = node_count() - 1; s >= 1; --s) {
    const PlannedNode& step = plan_->nodes[s];
    if (step.fused_pool >= 0 || !step.runs_backward) continue;
    const int id = step.fused_conv >= 0 ? step.fused_conv : s;  // whose inputs get gradients
    const PlannedNode& node = plan_->nodes[id];
    float* dy = gradients_[step.gradient_slot].data();
    const double t0 = profiling_ ? now_seconds() : 0.0;
    const float** in = xs;
    float** din = dxs;
    if (node.inputs.size() > 8) {
      many_x.resize(node.inputs.size());
      many_dx.resize(node.inputs.size());
      in = many_x.data();
      din = many_dx.data();
    }
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      const int u = node.inputs[k];
      in[k] = activation(u, x);
      const int route = node.dx_route[k];
      din[k] = route == GraphPlan::kNoGradient ? nullptr
               : route == GraphPlan::kDirect   ? gradients_[plan_->nodes[u].gradient_slot].data()
                                               : scratch_[route].data();
    }
    if (step.fused_conv >= 0) {  // backward of the pool and its conv in one pass
      auto* pool = static_cast<MaxPooling2D*>(runners_[s].get());
      static_cast<Conv2D*>(runners_[id].get())
          ->backward_pooled(in[0], activations_[step.training_slot].data(), dy, pool->argmax_for(n), din[0], n);
    } else {
      runners_[s]->backward_inputs(in, activations_[step.training_slot].data(), dy, din, n);
    }
    // Input gradients from a second consumer of the same tensor join the first's.
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      const int route = node.dx_route[k];
      if (route < 0) continue;
      float* g = gradients_[plan_->nodes[node.inputs[k]].gradient_slot].data();
      const float* d = scratch_[route].data();
      const std::int64_t len = n * plan_->nodes[node.inputs[k]].size;
      for (std::int64_t j = 0; j < len; ++j) g[j] += d[j];
    }
    if (profiling_) {
      profile_[id - 1].backward_seconds += now_seconds() - t0;
      ++profile_[id - 1].backward_calls;
    }
    // Nodes >= s are done; after a conv fused with the pool right after it, so is the conv's node
    // (its own step is skipped): report that, so a bucket ending at the conv is announced now.
    if (after_backward_step_) after_backward_step_(step.fused_conv == s - 1 ? step.fused_conv : s);
  }
  // A layer used at several nodes: its weight gradient is the sum over them, in node order.
  for (const auto& [later, first] : shared_uses_) {
    if (!runners_[later]->computes_weight_grads()) continue;
    auto& to = runners_[first]->params();
    const auto& from = runners_[later]->params();
    for (std::size_t k = 0; k < to.size(); ++k) {
      if (!to[k].trainable) continue;
      float* g = to[k].grad.data();
      const float* d = from[k].grad.data();
      for (std::int64_t j = 0; j < to[k].grad.size(); ++j) g[j] += d[j];
    }
  }
  if (after_backward_step_) after_backward_step_(0);
}

StepResult Model::score(const Batch& b, float* grad) {
  const Shape& out_shape = output_shape();
  const std::int64_t classes = out_shape.back();
  const std::int64_t rows = b.n * shape_size(out_shape) / classes;
  const float* out = activations_[plan_->nodes[output_].training_slot].data();
  const float* y = batch_targets_;
  StepResult r;
  r.loss =
      loss_->compute(out, y, b.sample_weight ? row_weights_.data() : nullptr, rows, classes, grad, plan_->fuse_output);
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

StepResult Model::train_step(const Batch& b) {
  check_batch(b);
  reserve(b.n);
  const float* x = gather(b);
  forward(x, b.n, true);
  const PlannedNode& out = plan_->nodes[output_];
  double t0 = profiling_ ? now_seconds() : 0.0;
  StepResult r = score(b, out.runs_backward ? gradients_[out.gradient_slot].data() : nullptr);
  double loss_seconds = profiling_ ? now_seconds() - t0 : 0.0;
  backward(x, b.n);
  if (profiling_) t0 = now_seconds();
  r.loss += apply_regularization(true);
  optimizer_->apply(trainable_);
  if (profiling_) {
    profile_.back().backward_seconds += loss_seconds + now_seconds() - t0;
    ++profile_.back().backward_calls;
  }
  return r;
}

StepResult Model::test_step(const Batch& b) {
  check_batch(b);
  reserve(b.n);
  forward(gather(b), b.n, false);
  StepResult r = score(b, nullptr);
  r.loss += apply_regularization(false);
  return r;
}

const float* Model::last_step_output() const {
  require_built("reading its outputs");
  return activations_.empty() ? nullptr : activations_[plan_->nodes[output_].training_slot].data();
}

void Model::call(const float* x, std::int64_t n, float* out, bool training) {
  require_built("calling it");
  if (!training) return predict(x, n, out, std::max<std::int64_t>(n, 1));
  if (n <= 0) return;
  reserve(n);
  forward(x, n, true);
  const std::int64_t os = shape_size(output_shape());
  std::memcpy(out, activations_[plan_->nodes[output_].training_slot].data(), sizeof(float) * n * os);
}

// Keras adds each weight penalty to the loss (in training and evaluation alike); in training
// its gradient l1 sign(w) + 2 l2 w joins the weight's gradient before the update.
double Model::apply_regularization(bool add_gradients) {
  double penalty = 0.0;
  for (auto* p : trainable_) {
    if (p->l1 == 0.0 && p->l2 == 0.0) continue;
    const float* w = p->value.data();
    double s1 = 0.0, s2 = 0.0;
    for (std::int64_t i = 0; i < p->value.size(); ++i) {
      s1 += std::abs(double(w[i]));
      s2 += double(w[i]) * w[i];
    }
    if (add_gradients) add_regularization_gradient(*p);
    penalty += p->l1 * s1 + p->l2 * s2;
  }
  return penalty;
}

void Model::add_regularization_gradient(Param& p) {
  if (p.l1 == 0.0 && p.l2 == 0.0) return;
  const float* w = p.value.data();
  float* g = p.grad.data();
  const float l1 = float(p.l1), l2x2 = float(2.0 * p.l2);
  for (std::int64_t i = 0; i < p.value.size(); ++i) g[i] += l1 * float((w[i] > 0.0f) - (w[i] < 0.0f)) + l2x2 * w[i];
}

// -- inference ------------------------------------------------------------------------------

std::unique_ptr<InferenceContext> Model::make_inference_context() const {
  require_built("making an inference context");
  auto ctx = std::make_unique<InferenceContext>();
  ctx->model_ = this;
  ctx->generation_ = generation_;
  ctx->runners_.assign(nodes_.size(), nullptr);
  for (int i = 1; i < node_count(); ++i) {
    ctx->runners_[i] = nodes_[i].layer->clone();
    ctx->runners_[i]->alias_gradients_of(*nodes_[i].layer);  // never written in inference: no copy needed
    ctx->runners_[i]->set_trainable(runners_[i]->trainable());
  }
  apply_fusions(*plan_, ctx->runners_);
  ctx->slots_.resize(plan_->inference_slot_size.size());
  return ctx;
}

std::int64_t Model::check_predict_shapes(const Shape& x_shape, std::int64_t out_size, const char* who) const {
  require_built("predicting");
  bool ok = x_shape.size() == input_shape_.size() + 1 && x_shape[0] >= 0;
  for (std::size_t i = 0; ok && i < input_shape_.size(); ++i) ok = x_shape[i + 1] == input_shape_[i];
  if (!ok) {
    // The batch size of the expectation is the caller's when the rank is right, else "n".
    const bool has_n = x_shape.size() == input_shape_.size() + 1 && x_shape[0] >= 0;
    std::string expect = "(" + (has_n ? std::to_string(x_shape[0]) : std::string("n"));
    for (auto d : input_shape_) expect += ", " + std::to_string(d);
    throw ValueError(std::string(who) + ": expected input of shape " + expect + (input_shape_.empty() ? ",)" : ")") +
                     ", received " + dims_str(x_shape));
  }
  const std::int64_t n = x_shape[0];
  std::int64_t need = 0;
  try {
    checked_mul(n, input_size());
    need = checked_mul(n, output_size());
  } catch (const SizeError&) {
    throw ValueError(std::string(who) + ": expected a batch whose size fits int64, received shape " +
                     dims_str(x_shape));
  }
  if (out_size < need)
    throw ValueError(std::string(who) + ": expected an output buffer of at least " + std::to_string(need) +
                     " floats (shape " + dims_str(with_batch(n, output_shape())) + "), received " +
                     std::to_string(out_size));
  return n;
}

void Model::predict(const float* x, const Shape& x_shape, float* out, std::int64_t out_size, std::int64_t chunk) {
  const std::int64_t n = check_predict_shapes(x_shape, out_size);
  predict(x, n, out, chunk);
}

void Model::predict(InferenceContext& context, const float* x, const Shape& x_shape, float* out, std::int64_t out_size,
                    std::int64_t chunk) const {
  const std::int64_t n = check_predict_shapes(x_shape, out_size);
  predict(context, x, n, out, chunk);
}

Tensor Model::predict(const Tensor& x, std::int64_t chunk) {
  const std::int64_t n = check_predict_shapes(x.shape(), INT64_MAX);
  Tensor out(with_batch(n, output_shape()));
  predict(x.data(), n, out.data(), chunk);
  return out;
}

Tensor Model::predict(InferenceContext& context, const Tensor& x, std::int64_t chunk) const {
  const std::int64_t n = check_predict_shapes(x.shape(), INT64_MAX);
  Tensor out(with_batch(n, output_shape()));
  predict(context, x.data(), n, out.data(), chunk);
  return out;
}

void Model::predict(const float* x, std::int64_t n, float* out, std::int64_t chunk) {
  require_built("predicting");
  if (!own_context_) own_context_ = make_inference_context();
  static_cast<const Model*>(this)->predict(*own_context_, x, n, out, chunk);
}

void Model::predict(InferenceContext& ctx, const float* x, std::int64_t n, float* out, std::int64_t chunk) const {
  require_built("predicting");
  if (ctx.model_ != this || ctx.generation_ != generation_)
    throw ValueError(
        "Model.predict: the inference context was made for another model, or before the model was "
        "rebuilt or recompiled; make a new one with make_inference_context()");
  if (chunk <= 0) throw ValueError("Model.predict: expected batch_size >= 1, received " + std::to_string(chunk));
  if (n < 0) throw ValueError("Model.predict: expected n >= 0 samples, received " + std::to_string(n));
  const std::int64_t xs = shape_size(input_shape_), os = shape_size(output_shape());
  const std::int64_t batch = std::min(n, chunk);
  if (batch > ctx.capacity_) {
    for (std::size_t s = 0; s < ctx.slots_.size(); ++s)
      ctx.slots_[s].resize(checked_mul(batch, plan_->inference_slot_size[s]));
    for (int i = 1; i < node_count(); ++i) ctx.runners_[i]->reserve(batch);
    ctx.capacity_ = batch;
  }
  auto act = [&](int node, const float* in) -> const float* {
    return node == 0 ? in : ctx.slots_[plan_->nodes[node].inference_slot].data();
  };
  const float* xs_[8];
  std::vector<const float*> many;
  for (std::int64_t start = 0; start < n; start += chunk) {
    const std::int64_t m = std::min(chunk, n - start);
    const float* xin = x + start * xs;
    for (int i = 1; i < node_count(); ++i) {
      const PlannedNode& node = plan_->nodes[i];
      if (node.fused_conv >= 0) continue;
      if (node.fused_pool >= 0) {
        auto* pool = static_cast<MaxPooling2D*>(ctx.runners_[node.fused_pool].get());
        static_cast<Conv2D*>(ctx.runners_[i].get())
            ->forward_pooled(act(node.inputs[0], xin), m,
                             ctx.slots_[plan_->nodes[node.fused_pool].inference_slot].data(), pool->argmax_for(m));
        continue;
      }
      const float** in = xs_;
      if (node.inputs.size() > 8) {
        many.resize(node.inputs.size());
        in = many.data();
      }
      for (std::size_t k = 0; k < node.inputs.size(); ++k) in[k] = act(node.inputs[k], xin);
      ctx.runners_[i]->forward_inputs(in, ctx.slots_[node.inference_slot].data(), m, false);
    }
    std::memcpy(out + start * os, ctx.slots_[plan_->nodes[output_].inference_slot].data(), sizeof(float) * m * os);
  }
}

// -- plans ----------------------------------------------------------------------------------

std::vector<NodePlan> Model::node_plans() const {
  require_built("planning it");
  std::vector<NodePlan> out;
  for (int i = 0; i < node_count(); ++i) {
    const PlannedNode& p = plan_->nodes[i];
    NodePlan np;
    np.inputs = nodes_[i].inputs;
    if (i == 0) {
      np.class_name = "InputLayer";
      np.output_shape = input_shape_;
    } else {
      np.layer = nodes_[i].layer->name();
      np.class_name = nodes_[i].layer->class_name();
      np.output_shape = nodes_[i].layer->output_shape();
      const int with = p.fused_pool >= 0 ? p.fused_pool : p.fused_conv;
      if (with >= 0) np.fused_with = nodes_[with].layer->name();
      np.runs_backward = p.runs_backward;
      np.computes_weight_grads = runners_[i]->computes_weight_grads();
    }
    out.push_back(std::move(np));
  }
  return out;
}

MemoryPlan Model::memory_plan(std::int64_t batch) const {
  require_built("planning it");
  if (batch <= 0) throw ValueError("Model.plan: expected batch_size >= 1, received " + std::to_string(batch));
  auto total = [&](const std::vector<std::int64_t>& sizes) {
    std::int64_t s = 0;
    for (auto v : sizes) s = checked_add(s, checked_mul(batch, v));
    return s;
  };
  MemoryPlan m;
  m.batch = batch;
  m.training_activations = total(plan_->training_slot_size);
  m.training_gradients = checked_add(total(plan_->gradient_slot_size),
                                     checked_mul(plan_->scratch_count, checked_mul(batch, plan_->scratch_size)));
  m.inference_activations = total(plan_->inference_slot_size);
  for (int i = 1; i < node_count(); ++i)
    if (plan_->nodes[i].fused_pool < 0)
      m.inference_activations_unshared =
          checked_add(m.inference_activations_unshared, checked_mul(batch, plan_->nodes[i].size));
  return m;
}

std::int64_t Model::allocated_training_floats() const {
  std::int64_t n = 0;
  for (const auto& b : activations_) n += b.size();
  for (const auto& b : gradients_) n += b.size();
  for (const auto& b : scratch_) n += b.size();
  return n;
}

}  // namespace cnnx
