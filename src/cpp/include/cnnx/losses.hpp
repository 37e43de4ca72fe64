// Losses with Keras' names and reduction ("sum_over_batch_size": the mean over the rows of the
// loss tensor). The class axis is the last one; `rows` = every other position in the batch.
#pragma once

#include <memory>
#include <string>

#include "cnnx/tensor.hpp"

namespace cnnx {

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;
  // Target floats per sample this loss expects for a model output of `output_shape` (one
  // sample); throws ValueError naming the loss when `received` does not match.
  virtual void check_targets(const Shape& output_shape, std::int64_t received_per_sample) const = 0;
  // Mean loss over `rows` rows of `classes` outputs. When grad != nullptr, writes dL/d(out)
  // for that mean; with fused_softmax (the output is a softmax) it writes dL/dz of the softmax
  // input instead, p - y, which stays exact where dL/dp would be -y/p.
  virtual double compute(const float* out, const float* target, std::int64_t rows, std::int64_t classes,
                         float* grad, bool fused_softmax) const = 0;
  virtual bool can_fuse_softmax() const { return false; }
  // True when targets are class indices (one float per row) rather than one-hot rows.
  virtual bool sparse_targets() const { return false; }
};

// Keras' categorical_crossentropy / sparse_categorical_crossentropy. Probabilities are clipped to
// [1e-7, 1 - 1e-7] as in Keras when the output is not fused; from_logits applies a log-softmax.
std::unique_ptr<Loss> make_crossentropy(bool sparse, bool from_logits);

}  // namespace cnnx
