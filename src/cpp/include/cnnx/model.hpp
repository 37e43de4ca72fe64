// Model: a directed acyclic graph of layer nodes that owns every buffer a training step needs.
// Nodes are added in topological order (a node's inputs are earlier nodes): one input node,
// then layer nodes, one of which is the output. The same Layer object at several nodes is one
// layer used several times: its weights are shared and their gradients summed.
//
// build() builds each layer on its inputs' shapes and plans the graph (core/graph_plan.hpp):
// the fusions (conv + max-pool, a ReLU's derivative applied in the pool's scatter, softmax or
// sigmoid with cross-entropy) are rewrite rules applied wherever they match, and activation
// buffers are assigned by liveness. The layers the user holds are never run by the model: each
// node runs a clone (Layer::clone) whose weights are views of the user's layer, so the model's
// workspaces and per-call state are its own and another model or thread holding the same
// layer does not disturb them. Inference runs on a const model through an InferenceContext
// (clones and buffers of its own), one per thread.
//
// One call = one batch; callers (the Python bindings) release the GIL around it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/losses.hpp"
#include "cnnx/optimizers.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

struct GraphPlan;  // core/graph_plan.hpp

// Wall time spent per node since profiling was switched on (for benchmarks/profile.py).
struct LayerProfile {
  std::string name;
  double forward_seconds = 0.0, backward_seconds = 0.0;
  std::int64_t forward_calls = 0, backward_calls = 0;
};

struct StepResult {
  double loss = 0.0;               // mean (sample-weighted) loss over the batch
  std::int64_t correct = 0;        // accuracy numerator
  std::int64_t rows = 0;           // accuracy denominator
  std::int64_t top_k_correct = 0;  // rows whose true class is among the k highest outputs
};

// How "accuracy" is counted (Keras picks it from the loss and the output shape):
// argmax of each row against the one-hot or integer target, or each output thresholded
// against a 0/1 target (binary_accuracy).
enum class AccuracyKind { argmax, binary };

// A view of a dataset held by the caller: x [count, input_shape...], y [count, target_dim].
struct Batch {
  const float* x = nullptr;
  const float* y = nullptr;
  std::int64_t count = 0;                // rows in x and y
  std::int64_t target_dim = 0;           // floats per sample in y
  const std::int64_t* index = nullptr;   // samples to use, or nullptr for rows [0, n)
  std::int64_t n = 0;                    // batch size
  const float* sample_weight = nullptr;  // [count] weights scaling each sample's loss, or nullptr
};

// What the planner decided for one node, for Model::plan() and summaries.
struct NodePlan {
  std::string layer;                   // the layer's name ("" for the input node)
  std::string class_name;              // "Conv2D", ...; "InputLayer" for the input node
  std::vector<int> inputs;             // node ids
  Shape output_shape;                  // per sample
  std::string fused_with;              // "" or the name of the node it runs fused with
  bool runs_backward = false;          // something at or before it trains
  bool computes_weight_grads = false;  // trainable, with trainable weights
};

// The planned memory of one batch size, in floats: what reserve() allocates for training
// (every activation backward needs, the gradient buffers, the scratch of fan-out sums) and
// what an InferenceContext allocates (only live activations).
struct MemoryPlan {
  std::int64_t batch = 0;
  std::int64_t training_activations = 0;
  std::int64_t training_gradients = 0;
  std::int64_t inference_activations = 0;
  std::int64_t inference_activations_unshared = 0;  // the same without reuse, for comparison
};

class Model;

// Buffers and layer clones for inference on one thread (Model::predict(InferenceContext&, ...)).
//
// Threads: a built Model is safe to predict from several threads at once when each thread
// passes its own context (make one per thread, or keep a pool and hand each call one that no
// other call is using). A context is not safe to share between concurrent calls, and the
// model's own predict (the overloads without a context) uses one context of the model's, so
// it is for one thread at a time. Nothing may train, compile, rebuild or change the weights
// of the model while any thread predicts; a context made before a rebuild or compile is
// refused with a ValueError. Results do not depend on the thread or the context: every
// context gives the same bits.
class CNNX_API InferenceContext {
 public:
  // Activation floats this context holds now.
  std::int64_t allocated_floats() const;

 private:
  friend class Model;
  const Model* model_ = nullptr;
  std::uint64_t generation_ = 0;  // the model's build generation it was made for
  std::vector<std::shared_ptr<Layer>> runners_;
  std::vector<Buffer> slots_;
  std::int64_t capacity_ = 0;
};

class CNNX_API Model {
 public:
  Model();
  virtual ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  // -- the graph ------------------------------------------------------------------------
  // The model's input (one per model); returns its node id (0).
  int add_input(const Shape& shape);
  // A node running `layer` on the outputs of the nodes `inputs` (earlier node ids); returns
  // its id. The layer's number of inputs is checked here, its shapes at build().
  int add_node(std::shared_ptr<Layer> layer, const std::vector<int>& inputs);
  void set_output(int node);
  int node_count() const { return static_cast<int>(nodes_.size()); }
  const std::vector<int>& node_inputs(int node) const;
  const std::shared_ptr<Layer>& node_layer(int node) const;  // nullptr for the input node
  // The clone that runs `node` once built (nullptr for the input node or before build): its
  // workspaces and plans are the ones the model's steps use.
  const Layer* node_runner(int node) const {
    return node > 0 && node < static_cast<int>(runners_.size()) ? runners_[node].get() : nullptr;
  }
  int output_node() const { return output_; }
  // The distinct layers, in the order of their first node: weights lists follow this order.
  const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }

  // Builds every layer on its inputs' shapes (a layer already built must match) and plans
  // the graph. Throws ValueError for a graph with no layer, a node that does not lead to the
  // output, or a layer used twice on different shapes.
  void build();
  bool built() const { return built_; }
  const Shape& input_shape() const;   // per sample: {28, 28, 1}
  const Shape& output_shape() const;  // per sample: {10}
  // Floats of one sample's input and output (products of the shapes above; needs a built model).
  std::int64_t input_size() const;
  std::int64_t output_size() const;

  // -- training -------------------------------------------------------------------------
  // Also re-reads which layers are trainable (Keras: change trainable, then compile again).
  void compile(std::shared_ptr<Loss> loss, std::shared_ptr<Optimizer> optimizer);
  bool compiled() const { return loss_ != nullptr; }
  Loss& loss() { return *loss_; }
  const Loss& loss() const { return *loss_; }
  // Accuracy rule (binary: outputs above `threshold` count as 1) and the k of top-k accuracy
  // (0: not computed).
  void set_metrics(AccuracyKind accuracy, float threshold, int top_k);
  int top_k() const { return top_k_; }
  Optimizer& optimizer() { return *optimizer_; }
  const Optimizer& optimizer() const { return *optimizer_; }

  // Forward, loss, backward and optimizer update for one batch.
  StepResult train_step(const Batch& batch);
  // Loss and accuracy without updating (evaluate / validation).
  StepResult test_step(const Batch& batch);
  // The model's output of the last train_step / test_step ([n, output_shape...], n that step's
  // batch size; after softmax when the loss fused it), valid until the next step, call or
  // reserve: metrics read it instead of running a second forward pass.
  const float* last_step_output() const;
  // Forward only, in training mode when `training` (augmentation augments, dropout drops,
  // batch statistics are used but not kept), into out [n, output_shape...].
  void call(const float* x, std::int64_t n, float* out, bool training);

  void reserve(std::int64_t batch);
  // The trainable weights in optimizer order (first node of each layer, weights in layer order).
  const std::vector<Param*>& trainable_params() const;

  // -- inference ------------------------------------------------------------------------
  // Shape-checked inference: x holds a batch of shape x_shape = {n, input_shape()...} (NHWC:
  // {n, 28, 28, 1}), out has room for out_size floats, at least n * output_size(). The
  // results, [n, output_shape()...], go to out's first n * output_size() floats. A wrong
  // shape or a short output throws ValueError before anything is read or written:
  // "Model::predict: expected input of shape (10, 28, 28, 1), received (10, 28, 28, 3)".
  // `chunk` samples run at a time (it bounds the memory, never changes a result).
  void predict(const float* x, const Shape& x_shape, float* out, std::int64_t out_size, std::int64_t chunk = 256);
  void predict(InferenceContext& context, const float* x, const Shape& x_shape, float* out, std::int64_t out_size,
               std::int64_t chunk = 256) const;
  // The same on a Tensor of shape {n, input_shape()...}; returns a Tensor {n, output_shape()...}.
  Tensor predict(const Tensor& x, std::int64_t chunk = 256);
  Tensor predict(InferenceContext& context, const Tensor& x, std::int64_t chunk = 256) const;
  // The check the overloads above make: ValueError, with `who` opening the message, unless
  // x_shape is {n, input_shape()...} and out_size >= n * output_size() (both overflow-checked).
  // Returns n.
  std::int64_t check_predict_shapes(const Shape& x_shape, std::int64_t out_size,
                                    const char* who = "Model::predict") const;

  // Unchecked inference on x [n, input_shape...] into out [n, output_shape...] (the Python
  // bindings check the array shapes themselves): x must hold n * input_size() floats and out
  // n * output_size(); nothing here can tell, so a short buffer is read or written out of
  // bounds. Use the shape-checked overloads above from C++. Runs on the model's own context
  // (one thread at a time: see InferenceContext).
  void predict(const float* x, std::int64_t n, float* out, std::int64_t chunk = 256);
  // A context for one thread: several threads may each predict with their own context on one
  // model at once, as long as nothing trains or rebuilds the model meanwhile.
  std::unique_ptr<InferenceContext> make_inference_context() const;
  // Unchecked, like the raw predict above, on the caller's context: safe from several threads
  // at once, each with its own context.
  void predict(InferenceContext& context, const float* x, std::int64_t n, float* out, std::int64_t chunk = 256) const;
  // False once the model has been rebuilt or recompiled since the context was made.
  bool context_is_current(const InferenceContext& context) const {
    return context.model_ == this && context.generation_ == generation_;
  }

  // -- plans ----------------------------------------------------------------------------
  std::vector<NodePlan> node_plans() const;
  MemoryPlan memory_plan(std::int64_t batch) const;
  // Activation and gradient floats reserve() has allocated (for tests against memory_plan).
  std::int64_t allocated_training_floats() const;
  // Activation floats of the context predict() uses (0 before the first predict).
  std::int64_t allocated_inference_floats() const { return own_context_ ? own_context_->allocated_floats() : 0; }

  // Per-node timing; the last entry is the loss + optimizer update. Off by default.
  void set_profiling(bool on);
  const std::vector<LayerProfile>& profile() const { return profile_; }

  // -- what a model file records besides the graph (model_file.hpp) ----------------------
  // Keras' model name ("" until set), the output classes' names (empty: unknown) and the
  // metric names compile was given (set_metrics holds what they mean).
  const std::string& name() const { return name_; }
  void set_name(std::string name) { name_ = std::move(name); }
  const std::vector<std::string>& class_names() const { return class_names_; }
  void set_class_names(std::vector<std::string> names) { class_names_ = std::move(names); }
  const std::vector<std::string>& metric_names() const { return metric_names_; }
  void set_metric_names(std::vector<std::string> names) { metric_names_ = std::move(names); }

 protected:
  void require_built(const char* what) const;
  // Sequential collects its layers before the input shape (and so the nodes) exist.
  std::vector<std::shared_ptr<Layer>>& pending_layers() { return layers_; }
  void clear_nodes() {
    nodes_.clear();
    output_ = -1;
  }

 private:
  friend class DataParallelStep;  // runs the steps' parts on micro-batches (data_parallel.hpp)
  struct Node {
    std::shared_ptr<Layer> layer;  // the user's layer; nullptr for the input node
    std::vector<int> inputs;
  };
  void plan_and_configure();
  std::vector<std::shared_ptr<Layer>> make_runners(bool share_gradients) const;
  void check_batch(const Batch& b) const;
  const float* gather(const Batch& b);
  const float* activation(int node, const float* x) const;
  void forward(const float* x, std::int64_t n, bool training);
  void backward(const float* x, std::int64_t n);
  StepResult score(const Batch& b, float* grad);
  double apply_regularization(bool add_gradients);
  // Adds the gradient of p's penalty (l1 sign(w) + 2 l2 w) to p's gradient.
  static void add_regularization_gradient(Param& p);

  std::vector<Node> nodes_;
  std::vector<std::shared_ptr<Layer>> layers_;
  int output_ = -1;
  Shape input_shape_;
  bool built_ = false;
  std::uint64_t generation_ = 0;  // bumped by every build / compile that re-plans

  std::shared_ptr<Loss> loss_;
  std::shared_ptr<Optimizer> optimizer_;
  AccuracyKind accuracy_ = AccuracyKind::argmax;
  float threshold_ = 0.5f;
  int top_k_ = 0;

  std::unique_ptr<GraphPlan> plan_;
  std::vector<std::shared_ptr<Layer>> runners_;   // per node; nullptr for the input node
  std::vector<Param*> trainable_;                 // fixed at build / compile
  std::vector<std::pair<int, int>> shared_uses_;  // (later node, first node) of a layer used again

  std::int64_t capacity_ = 0;
  Buffer input_;                          // gathered batch of inputs
  Buffer targets_;                        // gathered batch of targets
  Buffer row_weights_;                    // per-row loss weights of the current batch
  const float* batch_targets_ = nullptr;  // the current batch's targets (targets_ or the caller's)
  std::vector<Buffer> activations_;       // per training slot (GraphPlan::training_slot)
  std::vector<Buffer> gradients_;         // per gradient slot
  std::vector<Buffer> scratch_;           // input gradients summed into a fan-out's gradient
  std::unique_ptr<InferenceContext> own_context_;

  bool profiling_ = false;
  // Called after each backward step s (node ids >= s are then done) and with 0 at the end.
  std::function<void(int)> after_backward_step_;
  std::vector<LayerProfile> profile_;

  std::string name_;
  std::vector<std::string> class_names_, metric_names_;
};

}  // namespace cnnx
