// fit and evaluate on in-memory arrays, as Keras' Model.fit / Model.evaluate with arrays: the
// loop Python's fit runs, in C++, on top of Model::train_step / test_step.
//
// Semantics (those of cnnx's Python fit, python/cnnx/models.py):
// - validation_split takes the last fraction of the samples, before any shuffling
//   (split = floor(count * (1 - validation_split))), and validates on them at each epoch end;
// - each epoch visits the training samples in batches of batch_size, the last batch holding the
//   remainder; with shuffle, in a new random order each epoch, drawn from the core's Rng;
// - the reported loss and accuracy are running means over the samples seen so far in the epoch
//   (sample-weighted loss, as the core's steps compute it); validation runs in batches of
//   batch_size, in order.
// Without shuffle, the steps are exactly those of Python's fit(..., shuffle=False) on the same
// data, so the weights come out bit-identical. With shuffle the orders differ (Python draws its
// permutation from NumPy's global generator).
//
// fit trains the model in place; nothing else may use the model meanwhile (inference contexts
// made before fit are still valid: fit does not rebuild the model).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "cnnx/export.hpp"
#include "cnnx/model.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

// Samples held by the caller, row-major float32, the batch axis first. x_shape is
// (count, model input shape...), y_shape (count, ...) with the floats per sample the loss
// expects: one-hot rows for categorical_crossentropy, one class index per sample (as a float)
// for sparse_categorical_crossentropy.
struct LabeledData {
  const float* x = nullptr;
  Shape x_shape;
  const float* y = nullptr;
  Shape y_shape;
  const float* sample_weight = nullptr;  // [count] non-negative loss weights, or nullptr (all 1)
};

// What the callbacks see. At the end of a batch: the running means of this epoch so far; at the
// end of an epoch: the epoch's means, and the validation results when there are any.
struct FitProgress {
  std::int64_t epoch = 0;   // 0-based, as in Keras' callbacks
  std::int64_t epochs = 0;  // FitOptions::epochs
  std::int64_t step = 0;    // batches done in this epoch (1 .. steps)
  std::int64_t steps = 0;   // batches per epoch
  std::int64_t samples = 0;
  double loss = 0.0;
  double accuracy = 0.0;        // as the model counts it (Model::set_metrics; argmax by default)
  double top_k_accuracy = 0.0;  // 0 unless the model's top_k > 0
  bool has_validation = false;
  double val_loss = 0.0, val_accuracy = 0.0, val_top_k_accuracy = 0.0;
  double seconds = 0.0;  // wall time since the epoch began
  // A callback sets it to stop training after this batch or epoch (Keras' model.stop_training).
  bool stop = false;
};

struct FitOptions {
  std::int64_t batch_size = 32;
  std::int64_t epochs = 1;
  // As in Keras, epochs is the index of the last epoch: fit runs epochs initial_epoch .. epochs-1.
  std::int64_t initial_epoch = 0;
  bool shuffle = true;
  // The shuffling seed; unset: one drawn from the process-wide seed (cnnx::set_random_seed).
  std::optional<std::uint64_t> seed;
  double validation_split = 0.0;               // in [0, 1)
  std::optional<LabeledData> validation_data;  // used instead of validation_split when set
  std::function<void(FitProgress&)> on_batch_end;
  std::function<void(FitProgress&)> on_epoch_end;
};

// Per epoch, as Keras' History.history ("loss", "accuracy", "val_loss", ...). The val_ vectors
// are empty without validation; top_k ones without top_k.
struct History {
  std::vector<std::int64_t> epoch;
  std::vector<double> loss, accuracy, top_k_accuracy;
  std::vector<double> val_loss, val_accuracy, val_top_k_accuracy;
};

struct EvaluateResult {
  double loss = 0.0;
  double accuracy = 0.0;
  double top_k_accuracy = 0.0;
  std::int64_t samples = 0;
};

// Trains a built, compiled model. Throws ValueError (naming "fit", the argument, the expected and
// the received value) for a model not built or not compiled, shapes that do not match the model,
// a non-positive batch_size, negative epochs, validation_split outside [0, 1) or leaving no
// training or validation samples, non-finite x or y, negative or non-finite sample weights.
CNNX_API History fit(Model& model, const LabeledData& data, const FitOptions& options = {});

// Loss and accuracy over all samples, in batches of batch_size, in order. The same checks as fit,
// except that x may hold NaN or infinity (as in Python's evaluate: NaN in, NaN out).
CNNX_API EvaluateResult evaluate(Model& model, const LabeledData& data, std::int64_t batch_size = 32);

}  // namespace cnnx
