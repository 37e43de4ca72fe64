// BatchNormalization forward and backward on x viewed as [rows, c] (rows = batch x pixels).
// Forward (training): mean, var = biased batch moments; invstd = 1 / sqrt(var + eps);
// y = (x - mean) * gamma * invstd + beta; moving statistics updated with momentum.
// Backward (training), exact through the batch statistics, with xhat = (x - mean) * invstd:
//   dbeta = sum dy, dgamma = sum dy * xhat,
//   dx = gamma * invstd * (dy - dbeta / rows - xhat * dgamma / rows).
// After an inference forward the statistics are constants: dx = dy * gamma * invstd.
// The O(rows * c) loops are in kernels/batch_norm.cpp; the per-channel coefficients here, in
// double. Workspaces are sized by reserve() and only grow.
#include "layers/batch_normalization.hpp"

#include <cmath>

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "kernels/batch_norm.hpp"
#include "kernels/reduce.hpp"

namespace cnnx {

BatchNormalization::BatchNormalization(std::string name, BatchNormalizationConfig config)
    : Layer(std::move(name)), cfg_(std::move(config)) {
  if (cfg_.axis == 0)
    throw ValueError(where() +
                     ": only the channels axis (axis=-1, channels-last) is supported, received axis=0 "
                     "(the batch axis)");
  if (cfg_.axis < 0 && cfg_.axis != -1)
    throw ValueError(where() + ": only the channels axis (axis=-1, channels-last) is supported, received axis=" +
                     std::to_string(cfg_.axis));
  if (!(cfg_.momentum >= 0.0f && cfg_.momentum <= 1.0f))
    throw ValueError(where() + ": expected momentum in [0, 1], received momentum=" + std::to_string(cfg_.momentum));
  if (!(cfg_.epsilon > 0.0f) || std::isinf(cfg_.epsilon))
    throw ValueError(where() + ": expected a positive epsilon, received epsilon=" + std::to_string(cfg_.epsilon));
  check_initializer(cfg_.beta_initializer, where());
  check_initializer(cfg_.gamma_initializer, where());
  check_initializer(cfg_.moving_mean_initializer, where());
  check_initializer(cfg_.moving_variance_initializer, where());
}

Shape BatchNormalization::do_build(const Shape& in, Rng& rng) {
  if (in.empty())
    throw ValueError(where() + ": expected input of rank >= 2 (batch, ..., channels), received shape (None,)");
  // A non-negative axis counts the batch axis, so the channels axis is in.size().
  if (cfg_.axis != -1 && cfg_.axis != static_cast<std::int64_t>(in.size()))
    throw ValueError(where() + ": only the channels axis (axis=-1, channels-last) is supported, received axis=" +
                     std::to_string(cfg_.axis) + " for input of rank " + std::to_string(in.size() + 1));
  const std::int64_t c = in.back();
  const double fan = double(c);
  int index = 0;
  auto add = [&](const char* name, const std::string& init, bool trainable) {
    Param& p = add_param(name, {c});
    initialize(p.value, init, fan, fan, rng);
    p.trainable = trainable;
    return index++;
  };
  gamma_ = cfg_.scale ? add("gamma", cfg_.gamma_initializer, true) : -1;
  beta_ = cfg_.center ? add("beta", cfg_.beta_initializer, true) : -1;
  moving_mean_ = add("moving_mean", cfg_.moving_mean_initializer, false);
  moving_var_ = add("moving_variance", cfg_.moving_variance_initializer, false);
  for (Buffer* b : {&mean_, &var_, &invstd_, &k1_, &k2_, &k3_, &sum_dy_, &sum_dyx_}) b->resize(c);
  return in;
}

std::int64_t BatchNormalization::workspace_floats(std::int64_t batch) const {
  return checked_add(checked_mul(rows(batch), channels()), checked_mul(8, channels()));
}

std::int64_t BatchNormalization::allocated_workspace_floats() const {
  std::int64_t total = tmp_.size();
  for (const Buffer* b : {&mean_, &var_, &invstd_, &k1_, &k2_, &k3_, &sum_dy_, &sum_dyx_}) total += b->size();
  return total;
}

void BatchNormalization::reserve(std::int64_t batch) {
  const std::int64_t need = checked_mul(rows(batch), channels());
  if (tmp_.size() < need) tmp_.resize(need);
}

void BatchNormalization::forward(const float* x, float* y, std::int64_t n, bool training) {
  const std::int64_t c = channels(), r = rows(n);
  auto& ps = params();
  const float* gamma = gamma_ >= 0 ? ps[gamma_].value.data() : nullptr;
  const float* beta = beta_ >= 0 ? ps[beta_].value.data() : nullptr;
  float* mm = ps[moving_mean_].value.data();
  float* mv = ps[moving_var_].value.data();
  float* mean = mean_.data();
  float* var = var_.data();
  // Keras 3: a frozen BatchNormalization normalises with its moving statistics, even in fit.
  training = training && trainable();
  training_ = training;
  if (training) {
    reserve(n);  // a no-op once the model has reserved its batch
    kernels::channel_moments(x, r, c, tmp_.data(), mean, var);
    const float m = cfg_.momentum;
    for (std::int64_t j = 0; j < c; ++j) {
      mm[j] = mm[j] * m + mean[j] * (1.0f - m);
      mv[j] = mv[j] * m + var[j] * (1.0f - m);
    }
  } else {
    for (std::int64_t j = 0; j < c; ++j) {
      mean[j] = mm[j];
      var[j] = mv[j];
    }
  }
  float* invstd = invstd_.data();
  float* a = k1_.data();
  float* b = k2_.data();
  for (std::int64_t j = 0; j < c; ++j) {
    invstd[j] = static_cast<float>(1.0 / std::sqrt(double(var[j]) + double(cfg_.epsilon)));
    a[j] = gamma ? gamma[j] * invstd[j] : invstd[j];
    b[j] = beta ? beta[j] : 0.0f;
  }
  kernels::channel_affine(x, r, c, mean, a, b, y);
}

void BatchNormalization::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  (void)y;
  const std::int64_t c = channels(), r = rows(n);
  auto& ps = params();
  const float* gamma = gamma_ >= 0 ? ps[gamma_].value.data() : nullptr;
  const float* mean = mean_.data();
  const float* invstd = invstd_.data();
  float* sum_dy = sum_dy_.data();
  float* sum_dyx = sum_dyx_.data();  // sum dy * (x - mean); times invstd it is dgamma
  reserve(n);
  if (!dx && !computes_weight_grads()) return;
  if (!training_ && !computes_weight_grads()) {  // frozen: dx through the fixed statistics only
    float* k1 = k1_.data();
    float* zero = k2_.data();
    for (std::int64_t j = 0; j < c; ++j) {
      k1[j] = static_cast<float>((gamma ? double(gamma[j]) : 1.0) * double(invstd[j]));
      zero[j] = 0.0f;
    }
    kernels::channel_affine2(dy, x, mean, r, c, k1, zero, zero, dx);
    return;
  }
  kernels::column_sums(dy, r, c, sum_dy);
  kernels::centered_product(dy, x, mean, r, c, tmp_.data());
  kernels::column_sums(tmp_.data(), r, c, sum_dyx);
  if (gamma_ >= 0 && computes_weight_grads()) {
    float* dgamma = ps[gamma_].grad.data();
    for (std::int64_t j = 0; j < c; ++j) dgamma[j] = sum_dyx[j] * invstd[j];
  }
  if (beta_ >= 0 && computes_weight_grads()) {
    float* dbeta = ps[beta_].grad.data();
    for (std::int64_t j = 0; j < c; ++j) dbeta[j] = sum_dy[j];
  }
  if (!dx) return;
  float* k1 = k1_.data();
  float* k2 = k2_.data();
  float* k3 = k3_.data();
  const double inv_rows = 1.0 / double(r);
  for (std::int64_t j = 0; j < c; ++j) {
    const double s = double(invstd[j]);
    const double g = (gamma ? double(gamma[j]) : 1.0) * s;
    k1[j] = static_cast<float>(g);
    if (training_) {
      // dgamma / rows * xhat * g = g * s^2 * sum_dyx / rows * (x - mean)
      k2[j] = static_cast<float>(-g * s * s * double(sum_dyx[j]) * inv_rows);
      k3[j] = static_cast<float>(-g * double(sum_dy[j]) * inv_rows);
    } else {
      k2[j] = 0.0f;
      k3[j] = 0.0f;
    }
  }
  kernels::channel_affine2(dy, x, mean, r, c, k1, k2, k3, dx);
}

// The public factory (cnnx/layers/batch_normalization.hpp).
std::shared_ptr<Layer> make_batch_normalization(std::string name, BatchNormalizationConfig config) {
  return std::make_shared<BatchNormalization>(std::move(name), std::move(config));
}

}  // namespace cnnx
