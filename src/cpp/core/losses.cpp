// Losses. Each computes the per-row loss, weights it, and divides the sum by the row count
// (Keras' sum_over_batch_size), accumulating in double. Paths for cross-entropy:
//   fused softmax (model output p = softmax(z)): L = -sum y log p with p floored at FLT_MIN so a
//     saturated softmax gives a large finite loss, never log(0); dL/dz = p * sum(y) - y.
//   from_logits: L = logsumexp(z) * sum(y) - sum y z, the stable log-softmax; same gradient.
//   probabilities (the output is not a softmax): Keras normalises p by its row sum and clips to
//     [eps, 1 - eps]; the gradient goes through that normalisation, zero where clipped.
// Binary cross-entropy mirrors them with the sigmoid; sparse targets hold one class index per
// row (as float) and are checked to be in range.
#include "cnnx/losses.hpp"

#include <cfloat>
#include <cmath>
#include <vector>

#include "cnnx/error.hpp"

namespace cnnx {
namespace {

constexpr double kEpsilon = 1e-7;  // keras.config.epsilon()

double weight_of(const float* row_weight, std::int64_t r) { return row_weight ? double(row_weight[r]) : 1.0; }

void check_smoothing(double ls, const std::string& who) {
  if (!(ls >= 0.0 && ls <= 1.0))
    throw ValueError(who + ": expected label_smoothing in [0, 1], received " + std::to_string(ls));
}

class Crossentropy : public Loss {
 public:
  Crossentropy(bool sparse, bool from_logits, double ls) : sparse_(sparse), from_logits_(from_logits), ls_(ls) {
    check_smoothing(ls, name());
    if (sparse && ls != 0.0) throw ValueError(name() + ": label_smoothing is only available for one-hot labels");
  }

  std::string name() const override { return sparse_ ? "sparse_categorical_crossentropy" : "categorical_crossentropy"; }
  Activation fusable_activation() const override { return from_logits_ ? Activation::linear : Activation::softmax; }
  bool sparse_targets() const override { return sparse_; }
  bool from_logits() const override { return from_logits_; }
  double label_smoothing() const override { return ls_; }

  void check_targets(const Shape& out, std::int64_t received) const override {
    const std::int64_t classes = out.empty() ? 1 : out.back();
    const std::int64_t expected = sparse_ ? shape_size(out) / classes : shape_size(out);
    if (received != expected) {
      if (sparse_)
        throw ValueError(name() + ": expected integer class labels, one per sample (" + std::to_string(expected) +
                         " value(s) per sample), received " + std::to_string(received) +
                         " values per sample; use categorical_crossentropy for one-hot labels");
      throw ValueError(
          name() + ": expected one-hot labels with " + std::to_string(expected) +
          " values per sample to match the model output, received " + std::to_string(received) +
          (received == 1 ? "; use sparse_categorical_crossentropy for integer labels, or one-hot encode them" : ""));
    }
  }

  double compute(const float* out, const float* target, const float* row_weight, std::int64_t rows,
                 std::int64_t classes, float* grad, bool fused) const override {
    double total = 0.0;
    const double inv_rows = 1.0 / double(rows);
    thread_local std::vector<double> y;  // grow-only scratch: no allocation per step
    y.resize(static_cast<std::size_t>(classes));
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* o = out + r * classes;
      target_row(target, r, classes, y.data());
      double ysum = 0.0;
      for (std::int64_t c = 0; c < classes; ++c) ysum += y[c];
      const double w = weight_of(row_weight, r), gs = w * inv_rows;
      float* g = grad ? grad + r * classes : nullptr;
      double row_loss = 0.0;
      if (from_logits_) {
        double mx = o[0];
        for (std::int64_t c = 1; c < classes; ++c) mx = std::max(mx, double(o[c]));
        double se = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) se += std::exp(double(o[c]) - mx);
        const double lse = mx + std::log(se);
        for (std::int64_t c = 0; c < classes; ++c) {
          row_loss += y[c] * (lse - o[c]);
          if (g) g[c] = float((std::exp(double(o[c]) - lse) * ysum - y[c]) * gs);
        }
      } else if (fused) {
        for (std::int64_t c = 0; c < classes; ++c) {
          if (y[c] != 0.0) row_loss -= y[c] * std::log(std::max(double(o[c]), double(FLT_MIN)));
          if (g) g[c] = float((double(o[c]) * ysum - y[c]) * gs);
        }
      } else {
        double s = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) s += o[c];
        if (!(s > 0.0)) s = kEpsilon;  // all-zero or negative rows: avoid dividing by zero
        // L = -sum_c y_c log(clip(o_c / s)); for unclipped terms d/do_j = -y_j/o_j + ysum'/s,
        // where ysum' sums y over the unclipped classes.
        double ysum_free = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) {
          const double p = o[c] / s;
          const double pc = std::min(std::max(p, kEpsilon), 1.0 - kEpsilon);
          row_loss -= y[c] * std::log(pc);
          if (pc == p) ysum_free += y[c];
        }
        if (g) {
          for (std::int64_t c = 0; c < classes; ++c) {
            const double p = o[c] / s;
            const bool clipped = p < kEpsilon || p > 1.0 - kEpsilon;
            g[c] = float(((clipped ? 0.0 : -y[c] / o[c]) + ysum_free / s) * gs);
          }
        }
      }
      total += w * row_loss;
    }
    return total * inv_rows;
  }

 private:
  void target_row(const float* target, std::int64_t r, std::int64_t classes, double* y) const {
    if (!sparse_) {
      for (std::int64_t c = 0; c < classes; ++c) y[c] = target[r * classes + c] * (1.0 - ls_) + ls_ / double(classes);
      return;
    }
    const float label = target[r];
    if (!(label >= 0.0f) || label >= float(classes) || label != std::floor(label))
      throw ValueError(name() + ": expected integer labels in [0, " + std::to_string(classes - 1) + "], received " +
                       std::to_string(label));
    for (std::int64_t c = 0; c < classes; ++c) y[c] = 0.0;
    y[static_cast<std::int64_t>(label)] = 1.0;
  }

  bool sparse_, from_logits_;
  double ls_;
};

// Losses whose targets have the output's shape and whose row loss is the mean of an
// element-wise term over the last axis.
class Elementwise : public Loss {
 public:
  void check_targets(const Shape& out, std::int64_t received) const override {
    if (received != shape_size(out))
      throw ValueError(name() + ": expected targets with " + std::to_string(shape_size(out)) +
                       " values per sample to match the model output " + shape_str(out) + ", received " +
                       std::to_string(received));
  }

  double compute(const float* out, const float* target, const float* row_weight, std::int64_t rows,
                 std::int64_t classes, float* grad, bool fused) const override {
    double total = 0.0;
    const double scale = 1.0 / (double(rows) * double(classes));
    for (std::int64_t r = 0; r < rows; ++r) {
      const double w = weight_of(row_weight, r);
      double row_loss = 0.0;
      for (std::int64_t c = 0; c < classes; ++c) {
        const std::int64_t i = r * classes + c;
        double d = 0.0;
        row_loss += term(out[i], target[i], fused, grad ? &d : nullptr);
        if (grad) grad[i] = float(d * w * scale);
      }
      total += w * row_loss;
    }
    return total * scale;
  }

 protected:
  // The element-wise loss of output o against target t, and its derivative in *d.
  virtual double term(double o, double t, bool fused, double* d) const = 0;
};

class BinaryCrossentropy : public Elementwise {
 public:
  BinaryCrossentropy(bool from_logits, double ls) : from_logits_(from_logits), ls_(ls) { check_smoothing(ls, name()); }
  std::string name() const override { return "binary_crossentropy"; }
  Activation fusable_activation() const override { return from_logits_ ? Activation::linear : Activation::sigmoid; }
  bool from_logits() const override { return from_logits_; }
  double label_smoothing() const override { return ls_; }

 protected:
  double term(double o, double t, bool fused, double* d) const override {
    if (!(t >= 0.0 && t <= 1.0))
      throw ValueError(name() + ": expected targets in [0, 1], received " + std::to_string(t));
    t = t * (1.0 - ls_) + 0.5 * ls_;
    if (from_logits_) {  // max(z, 0) - z t + log(1 + exp(-|z|))
      if (d) d[0] = 1.0 / (1.0 + std::exp(-o)) - t;
      return std::max(o, 0.0) - o * t + std::log1p(std::exp(-std::abs(o)));
    }
    if (fused) {  // o = sigmoid(z): dL/dz = p - t; the loss from p floored away from 0 and 1
      if (d) d[0] = o - t;
      const double p = std::min(std::max(o, double(FLT_MIN)), 1.0 - 1e-16);
      return -(t * std::log(p) + (1.0 - t) * std::log1p(-p));
    }
    const double p = std::min(std::max(o, kEpsilon), 1.0 - kEpsilon);
    if (d) d[0] = (p == o) ? (p - t) / (p * (1.0 - p)) : 0.0;
    return -(t * std::log(p) + (1.0 - t) * std::log(1.0 - p));
  }

 private:
  bool from_logits_;
  double ls_;
};

class MeanSquaredError : public Elementwise {
 public:
  std::string name() const override { return "mean_squared_error"; }

 protected:
  double term(double o, double t, bool, double* d) const override {
    if (d) d[0] = 2.0 * (o - t);
    return (o - t) * (o - t);
  }
};

class MeanAbsoluteError : public Elementwise {
 public:
  std::string name() const override { return "mean_absolute_error"; }

 protected:
  double term(double o, double t, bool, double* d) const override {
    if (d) d[0] = o > t ? 1.0 : (o < t ? -1.0 : 0.0);
    return std::abs(o - t);
  }
};

}  // namespace

std::unique_ptr<Loss> make_crossentropy(bool sparse, bool from_logits, double label_smoothing) {
  return std::make_unique<Crossentropy>(sparse, from_logits, label_smoothing);
}
std::unique_ptr<Loss> make_binary_crossentropy(bool from_logits, double label_smoothing) {
  return std::make_unique<BinaryCrossentropy>(from_logits, label_smoothing);
}
std::unique_ptr<Loss> make_mean_squared_error() { return std::make_unique<MeanSquaredError>(); }
std::unique_ptr<Loss> make_mean_absolute_error() { return std::make_unique<MeanAbsoluteError>(); }

}  // namespace cnnx
