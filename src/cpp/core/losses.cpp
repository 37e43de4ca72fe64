// Cross-entropy losses. Three paths, all returning the batch mean:
//   fused softmax (model output p = softmax(z)): L = -sum y log p with p floored at FLT_MIN so a
//     saturated softmax gives a large finite loss, never log(0); grad dL/dz = (p * sum(y) - y) / rows.
//   from_logits: L = logsumexp(z) * sum(y) - sum y z, the stable log-softmax; same gradient.
//   probabilities (Keras' default when the output is not a softmax): p normalised by its row
//     sum and clipped to [eps, 1 - eps]; grad through that normalisation, zero where clipped.
// Sparse targets hold one class index per row (as float) and are checked to be in range.
#include "cnnx/losses.hpp"

#include <cfloat>
#include <cmath>
#include <vector>

#include "cnnx/error.hpp"

namespace cnnx {
namespace {

constexpr double kEpsilon = 1e-7;  // keras.config.epsilon()

class Crossentropy : public Loss {
 public:
  Crossentropy(bool sparse, bool from_logits) : sparse_(sparse), from_logits_(from_logits) {}

  std::string name() const override {
    return sparse_ ? "sparse_categorical_crossentropy" : "categorical_crossentropy";
  }
  bool can_fuse_softmax() const override { return !from_logits_; }
  bool sparse_targets() const override { return sparse_; }

  void check_targets(const Shape& out, std::int64_t received) const override {
    const std::int64_t classes = out.empty() ? 1 : out.back();
    const std::int64_t expected = sparse_ ? shape_size(out) / classes : shape_size(out);
    if (received != expected) {
      if (sparse_)
        throw ValueError(name() + ": expected integer class labels, one per sample (" + std::to_string(expected) +
                         " value(s) per sample), received " + std::to_string(received) +
                         " values per sample; use categorical_crossentropy for one-hot labels");
      throw ValueError(name() + ": expected one-hot labels with " + std::to_string(expected) +
                       " values per sample to match the model output, received " + std::to_string(received) +
                       (received == 1 ? "; use sparse_categorical_crossentropy for integer labels "
                                        "or cnnx.utils.to_categorical" : ""));
    }
  }

  double compute(const float* out, const float* target, std::int64_t rows, std::int64_t classes, float* grad,
                 bool fused_softmax) const override {
    double total = 0.0;
    const double inv_rows = 1.0 / double(rows);
    thread_local std::vector<double> y;  // grow-only scratch: no allocation per step
    y.resize(static_cast<std::size_t>(classes));
    for (std::int64_t r = 0; r < rows; ++r) {
      const float* o = out + r * classes;
      target_row(target, r, classes, y.data());
      double ysum = 0.0;
      for (std::int64_t c = 0; c < classes; ++c) ysum += y[c];
      float* g = grad ? grad + r * classes : nullptr;
      if (from_logits_) {
        double mx = o[0];
        for (std::int64_t c = 1; c < classes; ++c) mx = std::max(mx, double(o[c]));
        double se = 0.0;
        for (std::int64_t c = 0; c < classes; ++c) se += std::exp(double(o[c]) - mx);
        const double lse = mx + std::log(se);
        for (std::int64_t c = 0; c < classes; ++c) {
          total += y[c] * (lse - o[c]);
          if (g) g[c] = float((std::exp(double(o[c]) - lse) * ysum - y[c]) * inv_rows);
        }
      } else if (fused_softmax) {
        for (std::int64_t c = 0; c < classes; ++c) {
          if (y[c] != 0.0) total -= y[c] * std::log(std::max(double(o[c]), double(FLT_MIN)));
          if (g) g[c] = float((double(o[c]) * ysum - y[c]) * inv_rows);
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
          total -= y[c] * std::log(pc);
          if (pc == p) ysum_free += y[c];
        }
        if (g) {
          for (std::int64_t c = 0; c < classes; ++c) {
            const double p = o[c] / s;
            const bool clipped = p < kEpsilon || p > 1.0 - kEpsilon;
            g[c] = float(((clipped ? 0.0 : -y[c] / o[c]) + ysum_free / s) * inv_rows);
          }
        }
      }
    }
    return total * inv_rows;
  }

 private:
  void target_row(const float* target, std::int64_t r, std::int64_t classes, double* y) const {
    if (!sparse_) {
      for (std::int64_t c = 0; c < classes; ++c) y[c] = target[r * classes + c];
      return;
    }
    const float label = target[r];
    if (!(label >= 0.0f) || label >= float(classes) || label != std::floor(label))
      throw ValueError(name() + ": expected integer labels in [0, " + std::to_string(classes - 1) +
                       "], received " + std::to_string(label));
    for (std::int64_t c = 0; c < classes; ++c) y[c] = 0.0;
    y[static_cast<std::int64_t>(label)] = 1.0;
  }

  bool sparse_, from_logits_;
};

}  // namespace

std::unique_ptr<Loss> make_crossentropy(bool sparse, bool from_logits) {
  return std::make_unique<Crossentropy>(sparse, from_logits);
}

}  // namespace cnnx
