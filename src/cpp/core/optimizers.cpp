// Optimizer updates, element-wise, following Keras 3's update_step formulas so that a step can
// be checked against them exactly. Threading: each parameter's update is an OpenMP loop over
// blocks when large enough (conv kernels, dense kernels); small biases stay serial.
// Vectorisation: the element loops are compiled per vector width (CNNX_VECTOR_CLONES), in a
// file built with -ffp-contract=off and -fno-math-errno (CMakeLists.txt): no clone fuses a
// multiply-add, sqrt and division vectorise, and both are correctly rounded at any width, so
// every clone gives the bits of the scalar loop. (Scalar sqrt + division made Adam 3% of a
// training step.)
#include "cnnx/optimizers.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "cnnx/error.hpp"
#include "core/parallel_for.hpp"
#include "kernels/vector_clones.hpp"

namespace cnnx {
namespace {

void check_rate(double lr, const std::string& who) {
  if (!(lr >= 0.0) || !std::isfinite(lr))
    throw ValueError(who + ": expected learning_rate >= 0, received " + std::to_string(lr));
}

constexpr std::int64_t kParallelMin = 1 << 14;

// body(i0, count) over blocks of a parameter, in parallel when it is large enough.
template <class Body>
void for_blocks(std::int64_t n, Body&& body) {
  parallel_for_blocks(n, 4096, n >= kParallelMin, body);
}

CNNX_VECTOR_CLONES void sgd_plain(float* var, const float* grad, std::int64_t n, float lr) {
  for (std::int64_t i = 0; i < n; ++i) var[i] -= lr * grad[i];
}

CNNX_VECTOR_CLONES void sgd_momentum(float* var, const float* grad, float* m, std::int64_t n, float lr, float mom,
                                     bool nesterov) {
  for (std::int64_t i = 0; i < n; ++i) {
    m[i] = mom * m[i] - lr * grad[i];
    var[i] += nesterov ? mom * m[i] - lr * grad[i] : m[i];
  }
}

CNNX_VECTOR_CLONES void adam_update(float* var, const float* grad, float* m, float* v, std::int64_t n, float alpha,
                                    float b1, float b2, float eps) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    m[i] += (g - m[i]) * (1.0f - b1);
    v[i] += (g * g - v[i]) * (1.0f - b2);
    var[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps);
  }
}

CNNX_VECTOR_CLONES void rmsprop_update(float* var, const float* grad, float* v, float* m, std::int64_t n, float lr,
                                       float r, float mom, float eps) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    v[i] = r * v[i] + (1.0f - r) * g * g;
    const float step = lr * g / std::sqrt(v[i] + eps);  // Keras 3: eps inside the sqrt
    if (m) {
      m[i] = mom * m[i] + step;
      var[i] -= m[i];
    } else {
      var[i] -= step;
    }
  }
}

CNNX_VECTOR_CLONES void adagrad_update(float* var, const float* grad, float* acc, std::int64_t n, float lr, float eps) {
  for (std::int64_t i = 0; i < n; ++i) {
    const float g = grad[i];
    acc[i] += g * g;
    var[i] -= lr * g / std::sqrt(acc[i] + eps);
  }
}

}  // namespace

void Optimizer::check_options() const {
  const std::pair<const char*, double> opts[] = {{"clipvalue", clipvalue},
                                                 {"clipnorm", clipnorm},
                                                 {"global_clipnorm", global_clipnorm},
                                                 {"weight_decay", weight_decay}};
  for (const auto& [key, v] : opts)
    if (!(v >= 0.0) || !std::isfinite(v))
      throw ValueError(name() + ": expected " + key + " >= 0, received " + std::to_string(v));
  if (clipnorm > 0.0 && global_clipnorm > 0.0)
    throw ValueError(name() + ": clipnorm and global_clipnorm cannot both be set");
}

namespace {

double squared_norm(const float* g, std::int64_t n) {
  double s = 0.0;
  for (std::int64_t i = 0; i < n; ++i) s += double(g[i]) * g[i];
  return s;
}

void scale(float* g, std::int64_t n, float f) {
  for (std::int64_t i = 0; i < n; ++i) g[i] *= f;
}

}  // namespace

void Optimizer::apply(const std::vector<Param*>& params) {
  check_rate(learning_rate, name());
  check_options();
  // Gradient clipping happens on the gradients in place: they are recomputed every step.
  if (clipvalue > 0.0) {
    const float c = float(clipvalue);
    for (auto* p : params) {
      float* g = p->grad.data();
      for (std::int64_t i = 0; i < p->grad.size(); ++i) g[i] = std::min(std::max(g[i], -c), c);
    }
  }
  if (clipnorm > 0.0) {
    for (auto* p : params) {
      const double norm = std::sqrt(squared_norm(p->grad.data(), p->grad.size()));
      if (norm > clipnorm) scale(p->grad.data(), p->grad.size(), float(clipnorm / norm));
    }
  }
  if (global_clipnorm > 0.0) {
    double total = 0.0;
    for (auto* p : params) total += squared_norm(p->grad.data(), p->grad.size());
    const double norm = std::sqrt(total);
    if (norm > global_clipnorm)
      for (auto* p : params) scale(p->grad.data(), p->grad.size(), float(global_clipnorm / norm));
  }
  if (weight_decay > 0.0) {
    const float f = float(1.0 - learning_rate * weight_decay);
    for (auto* p : params)
      if (p->trainable) scale(p->value.data(), p->value.size(), f);
  }
  const int k = slots_per_param();
  // (Re)create the slots when the parameter list is not the one they were made for, e.g. an
  // optimizer object reused for a second model: never step with mismatched state.
  bool fresh = slots_.size() != params.size();
  for (std::size_t i = 0; !fresh && i < params.size(); ++i)
    fresh = static_cast<int>(slots_[i].size()) != k || (k > 0 && slots_[i][0].size() != params[i]->value.size());
  if (fresh) {
    slots_.assign(params.size(), {});
    for (std::size_t i = 0; i < params.size(); ++i)
      for (int s = 0; s < k; ++s) {
        slots_[i].emplace_back(params[i]->value.shape());
        float* v = slots_[i].back().data();
        for (std::int64_t j = 0; j < slots_[i].back().size(); ++j) v[j] = slot_initial_value();
      }
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (!params[i]->trainable) continue;
    update_step(params[i]->value.data(), params[i]->grad.data(), slots_[i], params[i]->value.size());
  }
  ++iterations;
}

void Optimizer::set_slots(const std::vector<Param*>& params, std::vector<std::vector<Tensor>> slots) {
  if (slots.size() != params.size())
    throw ValueError(name() + ": expected optimizer state for " + std::to_string(params.size()) +
                     " parameters, received " + std::to_string(slots.size()));
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (static_cast<int>(slots[i].size()) != slots_per_param())
      throw ValueError(name() + ": expected " + std::to_string(slots_per_param()) + " state tensors for parameter " +
                       params[i]->name + ", received " + std::to_string(slots[i].size()));
    for (const auto& t : slots[i])
      if (t.shape() != params[i]->value.shape())
        throw ValueError(name() + ": expected state of shape " + shape_str(params[i]->value.shape()) +
                         " for parameter " + params[i]->name + ", received " + shape_str(t.shape()));
  }
  slots_ = std::move(slots);
}

SGD::SGD(double lr, double m, bool nest) : momentum(m), nesterov(nest) {
  check_rate(lr, "SGD");
  if (!(m >= 0.0 && m <= 1.0)) throw ValueError("SGD: expected momentum in [0, 1], received " + std::to_string(m));
  learning_rate = lr;
}

void SGD::update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) {
  const float lr = float(learning_rate), mom = float(momentum);
  if (slots.empty()) {
    for_blocks(n, [&](std::int64_t i0, std::int64_t len) { sgd_plain(var + i0, grad + i0, len, lr); });
    return;
  }
  float* m = slots[0].data();
  for_blocks(
      n, [&](std::int64_t i0, std::int64_t len) { sgd_momentum(var + i0, grad + i0, m + i0, len, lr, mom, nesterov); });
}

Adam::Adam(double lr, double b1, double b2, double eps) : beta_1(b1), beta_2(b2), epsilon(eps) {
  check_rate(lr, "Adam");
  if (!(b1 >= 0.0 && b1 < 1.0)) throw ValueError("Adam: expected beta_1 in [0, 1), received " + std::to_string(b1));
  if (!(b2 >= 0.0 && b2 < 1.0)) throw ValueError("Adam: expected beta_2 in [0, 1), received " + std::to_string(b2));
  if (!(eps >= 0.0)) throw ValueError("Adam: expected epsilon >= 0, received " + std::to_string(eps));
  learning_rate = lr;
}

void Adam::update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) {
  const double t = double(iterations + 1);
  // Keras folds both bias corrections into the step size.
  const float alpha = float(learning_rate * std::sqrt(1.0 - std::pow(beta_2, t)) / (1.0 - std::pow(beta_1, t)));
  const float b1 = float(beta_1), b2 = float(beta_2), eps = float(epsilon);
  float* m = slots[0].data();
  float* v = slots[1].data();
  for_blocks(n, [&](std::int64_t i0, std::int64_t len) {
    adam_update(var + i0, grad + i0, m + i0, v + i0, len, alpha, b1, b2, eps);
  });
}

RMSprop::RMSprop(double lr, double r, double m, double eps) : rho(r), momentum(m), epsilon(eps) {
  check_rate(lr, "RMSprop");
  if (!(r >= 0.0 && r < 1.0)) throw ValueError("RMSprop: expected rho in [0, 1), received " + std::to_string(r));
  if (!(m >= 0.0 && m <= 1.0)) throw ValueError("RMSprop: expected momentum in [0, 1], received " + std::to_string(m));
  if (!(eps >= 0.0)) throw ValueError("RMSprop: expected epsilon >= 0, received " + std::to_string(eps));
  learning_rate = lr;
}

void RMSprop::update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) {
  const float lr = float(learning_rate), r = float(rho), mom = float(momentum), eps = float(epsilon);
  float* v = slots[0].data();
  float* m = slots.size() > 1 ? slots[1].data() : nullptr;
  for_blocks(n, [&](std::int64_t i0, std::int64_t len) {
    rmsprop_update(var + i0, grad + i0, v + i0, m ? m + i0 : nullptr, len, lr, r, mom, eps);
  });
}

Adagrad::Adagrad(double lr, double init, double eps) : initial_accumulator_value(init), epsilon(eps) {
  check_rate(lr, "Adagrad");
  if (!(init >= 0.0))
    throw ValueError("Adagrad: expected initial_accumulator_value >= 0, received " + std::to_string(init));
  if (!(eps >= 0.0)) throw ValueError("Adagrad: expected epsilon >= 0, received " + std::to_string(eps));
  learning_rate = lr;
}

void Adagrad::update_step(float* var, const float* grad, std::vector<Tensor>& slots, std::int64_t n) {
  const float lr = float(learning_rate), eps = float(epsilon);
  float* acc = slots[0].data();
  for_blocks(n,
             [&](std::int64_t i0, std::int64_t len) { adagrad_update(var + i0, grad + i0, acc + i0, len, lr, eps); });
}

}  // namespace cnnx
