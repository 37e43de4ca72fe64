// Sequential: a linear stack of layers that owns every buffer a training step needs.
// build() fixes the per-sample input shape and builds each layer in turn; reserve() sizes the
// activation, gradient and layer workspaces for a batch size once, so train_step() and
// predict() allocate nothing in steady state. One call = one batch; callers (the Python
// bindings) release the GIL around it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnx/layer.hpp"
#include "cnnx/losses.hpp"
#include "cnnx/optimizers.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

// Wall time spent per layer since profiling was switched on (for benchmarks/profile.py).
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

class Sequential {
 public:
  void add(std::shared_ptr<Layer> layer);
  const std::vector<std::shared_ptr<Layer>>& layers() const { return layers_; }

  void build(const Shape& input_shape);
  bool built() const { return built_; }
  const Shape& input_shape() const { return input_shape_; }
  const Shape& output_shape() const;

  void compile(std::shared_ptr<Loss> loss, std::shared_ptr<Optimizer> optimizer);
  bool compiled() const { return loss_ != nullptr; }
  Loss& loss() { return *loss_; }
  // Accuracy rule (binary: outputs above `threshold` count as 1) and the k of top-k accuracy
  // (0: not computed).
  void set_metrics(AccuracyKind accuracy, float threshold, int top_k);
  Optimizer& optimizer() { return *optimizer_; }

  // Forward, loss, backward and optimizer update for one batch.
  StepResult train_step(const Batch& batch);
  // Loss and accuracy without updating (evaluate / validation).
  StepResult test_step(const Batch& batch);
  // Inference on x [n, input_shape...] into out [n, output_shape...], in chunks of `chunk`.
  void predict(const float* x, std::int64_t n, float* out, std::int64_t chunk = 256);

  void reserve(std::int64_t batch);
  const std::vector<Param*>& trainable_params() const;

  // Per-layer timing; the last entry is the loss + optimizer update. Off by default (it reads
  // the clock twice per layer, which is cheap but not free).
  void set_profiling(bool on);
  const std::vector<LayerProfile>& profile() const { return profile_; }

 private:
  void configure_fusion();
  double apply_regularization(bool add_gradients);
  void check_batch(const Batch& b) const;
  const float* gather(const Batch& b);
  void forward(const float* x, std::int64_t n, bool training);
  StepResult score(const Batch& b, float* grad);

  std::vector<std::shared_ptr<Layer>> layers_;
  Shape input_shape_;
  bool built_ = false;
  std::shared_ptr<Loss> loss_;
  std::shared_ptr<Optimizer> optimizer_;
  bool fuse_output_ = false;  // the loss differentiates through the last activation itself
  AccuracyKind accuracy_ = AccuracyKind::argmax;
  float threshold_ = 0.5f;
  int top_k_ = 0;
  Buffer row_weights_;            // per-row loss weights of the current batch
  std::vector<bool> fused_pool_;  // fused_pool_[i]: layer i is a Conv2D running with pool i+1
  std::int64_t capacity_ = 0;
  Buffer input_;                          // gathered batch of inputs
  Buffer targets_;                        // gathered batch of targets
  const float* batch_targets_ = nullptr;  // the current batch's targets (targets_ or the caller's)
  std::vector<Param*> trainable_;         // fixed at build()
  std::size_t first_with_weights_ = 0;    // fixed at build()
  std::vector<Buffer> outputs_;           // outputs_[i]: output of layer i
  Buffer grad_a_, grad_b_;                // ping-pong gradients flowing backward
  bool profiling_ = false;
  std::vector<LayerProfile> profile_;
};

}  // namespace cnnx
