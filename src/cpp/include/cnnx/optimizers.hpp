// Optimizers with Keras 3's names, defaults and update formulas. State ("slots": momentum,
// Adam's m and v) lives in the optimizer, one Tensor per slot per parameter, created on the
// first step from the parameters it is given.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cnnx/export.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

class CNNX_API Optimizer {
 public:
  virtual ~Optimizer() = default;
  virtual std::string name() const = 0;
  // One step over `params` (same list, same order every call). Applies `learning_rate`.
  void apply(const std::vector<Param*>& params);

  double learning_rate = 0.01;
  std::int64_t iterations = 0;  // completed steps, as Keras' optimizer.iterations
  // Keras' base-optimizer options, applied to each gradient before the update, in this order:
  // clipvalue (element-wise clamp), clipnorm (rescale each gradient to at most this L2 norm),
  // global_clipnorm (rescale all gradients together); 0 = off. weight_decay subtracts
  // lr * weight_decay * w before the update (decoupled, as in AdamW).
  double clipvalue = 0.0, clipnorm = 0.0, global_clipnorm = 0.0, weight_decay = 0.0;
  void check_options() const;

  // Slot tensors per parameter, for saving and restoring optimizer state. Empty until the
  // first step (or set_slots).
  const std::vector<std::vector<Tensor>>& slots() const { return slots_; }
  // Restores saved slots for `params`; throws ValueError naming the slot whose count or shape
  // does not match.
  void set_slots(const std::vector<Param*>& params, std::vector<std::vector<Tensor>> slots);

 protected:
  virtual int slots_per_param() const = 0;
  virtual float slot_initial_value() const { return 0.0f; }
  virtual void update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) = 0;

 private:
  std::vector<std::vector<Tensor>> slots_;
};

class CNNX_API SGD : public Optimizer {
 public:
  SGD(double learning_rate = 0.01, double momentum = 0.0, bool nesterov = false);
  std::string name() const override { return "SGD"; }
  double momentum;
  bool nesterov;

 protected:
  int slots_per_param() const override { return momentum != 0.0 ? 1 : 0; }
  void update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) override;
};

class CNNX_API Adam : public Optimizer {
 public:
  Adam(double learning_rate = 0.001, double beta_1 = 0.9, double beta_2 = 0.999, double epsilon = 1e-7);
  std::string name() const override { return "Adam"; }
  double beta_1, beta_2, epsilon;

 protected:
  int slots_per_param() const override { return 2; }
  void update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) override;
};

// Keras' RMSprop (its default optimizer): v = rho v + (1 - rho) g^2, step lr g / sqrt(v + eps),
// with optional momentum on the step.
class CNNX_API RMSprop : public Optimizer {
 public:
  RMSprop(double learning_rate = 0.001, double rho = 0.9, double momentum = 0.0, double epsilon = 1e-7);
  std::string name() const override { return "RMSprop"; }
  double rho, momentum, epsilon;

 protected:
  int slots_per_param() const override { return momentum != 0.0 ? 2 : 1; }
  void update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) override;
};

// Keras' Adagrad: accumulator (starting at initial_accumulator_value) += g^2,
// w -= lr g / sqrt(accumulator + eps).
class CNNX_API Adagrad : public Optimizer {
 public:
  Adagrad(double learning_rate = 0.001, double initial_accumulator_value = 0.1, double epsilon = 1e-7);
  std::string name() const override { return "Adagrad"; }
  double initial_accumulator_value, epsilon;

 protected:
  int slots_per_param() const override { return 1; }
  float slot_initial_value() const override { return float(initial_accumulator_value); }
  void update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) override;
};

}  // namespace cnnx
