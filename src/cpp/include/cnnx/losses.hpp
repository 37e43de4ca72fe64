// Losses with Keras' names and reduction ("sum_over_batch_size": each row's loss, times its
// sample weight, summed and divided by the number of rows). The class axis is the last one;
// `rows` = every other position in the batch. Gradients are dL/d(output) of that mean.
#pragma once

#include <memory>
#include <string>

#include "cnnx/activations.hpp"
#include "cnnx/export.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

class CNNX_API Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  // Target floats per sample this loss expects for a model output of `output_shape` (one
  // sample); throws ValueError naming the loss when `received` does not match.
  virtual void check_targets(const Shape& output_shape, std::int64_t received_per_sample) const = 0;
  // Mean loss over `rows` rows of `classes` outputs; `row_weight` (nullptr: all 1) scales each
  // row's loss. When grad != nullptr, writes dL/d(out). With `fused`, the output came out of
  // fusable_activation() and grad receives dL/dz of that activation's input instead: p - y for
  // softmax + cross-entropy and for sigmoid + binary cross-entropy, exact where the chained
  // form would divide by a saturated probability.
  virtual double compute(const float* out, const float* target, const float* row_weight, std::int64_t rows,
                         std::int64_t classes, float* grad, bool fused) const = 0;
  // The final activation this loss can differentiate through in one step, or linear for none.
  virtual Activation fusable_activation() const { return Activation::linear; }
  // True when targets are class indices (one float per row) rather than one-hot rows.
  virtual bool sparse_targets() const { return false; }
  // The arguments the loss was made with (model files write them back).
  virtual bool from_logits() const { return false; }
  virtual double label_smoothing() const { return 0.0; }
};

// categorical_crossentropy / sparse_categorical_crossentropy. Probabilities are clipped to
// [1e-7, 1 - 1e-7] as in Keras when not fused; from_logits applies a log-softmax;
// label_smoothing (categorical only) mixes the one-hot target with the uniform distribution.
CNNX_API std::unique_ptr<Loss> make_crossentropy(bool sparse, bool from_logits, double label_smoothing = 0.0);
// binary_crossentropy over every output (mean over the last axis), targets in [0, 1].
CNNX_API std::unique_ptr<Loss> make_binary_crossentropy(bool from_logits, double label_smoothing = 0.0);
// mean_squared_error / mean_absolute_error (mean over the last axis).
CNNX_API std::unique_ptr<Loss> make_mean_squared_error();
CNNX_API std::unique_ptr<Loss> make_mean_absolute_error();

}  // namespace cnnx
