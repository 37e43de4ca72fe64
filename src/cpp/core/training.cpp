// fit / evaluate on in-memory arrays (cnnx/training.hpp): the loop of Python's Model.fit with
// arrays (python/cnnx/models.py: _array_batches, _fit_epochs, _evaluate_arrays, _Tally), so that
// both give the same steps for the same batches.
#include "cnnx/training.hpp"

#include <chrono>
#include <cmath>
#include <numeric>
#include <string>

#include "cnnx/error.hpp"
#include "cnnx/random.hpp"

namespace cnnx {
namespace {

// Running sums of one pass, as Python's _Tally: the loss weighted by batch size, accuracy
// counts as the core returns them.
struct Tally {
  double loss = 0.0;
  std::int64_t correct = 0, rows = 0, top_k = 0, samples = 0;
  void add(const StepResult& r, std::int64_t n) {
    loss += r.loss * double(n);
    correct += r.correct;
    rows += r.rows;
    top_k += r.top_k_correct;
    samples += n;
  }
  double mean_loss() const { return loss / double(samples > 0 ? samples : 1); }
  double accuracy() const { return double(correct) / double(rows > 0 ? rows : 1); }
  double top_k_accuracy(std::int64_t rows_per_sample) const {
    const std::int64_t d = samples * rows_per_sample;
    return double(top_k) / double(d > 0 ? d : 1);
  }
};

std::int64_t rows_per_sample(const Model& model) {
  const Shape& out = model.output_shape();
  return out.empty() ? 1 : shape_size(out) / out.back();
}

// Checks one LabeledData against the model; returns the floats per sample of y.
std::int64_t check_data(const Model& model, const LabeledData& d, const std::string& who, bool check_x_finite) {
  if (!d.x || !d.y) throw ValueError(who + ": expected x and y data, received a null pointer");
  const Shape expect = with_batch(d.x_shape.empty() ? 0 : d.x_shape[0], model.input_shape());
  if (d.x_shape != expect)
    throw ValueError(who + ": expected x of shape " + shape_str(expect) + " to match the model's input " +
                     batch_shape_str(model.input_shape()) + ", received " + shape_str(d.x_shape));
  const std::int64_t count = d.x_shape[0];
  if (count < 1) throw ValueError(who + ": expected at least 1 sample, received 0");
  if (d.y_shape.empty() || d.y_shape[0] != count)
    throw ValueError(who + ": expected y with " + std::to_string(count) + " samples to match x, received " +
                     (d.y_shape.empty() ? std::string("a scalar") : shape_str(d.y_shape)));
  for (auto dim : d.y_shape)
    if (dim < 0) throw ValueError(who + ": expected y's shape to have sizes >= 0, received " + shape_str(d.y_shape));
  const std::int64_t x_size = shape_size(d.x_shape), y_size = shape_size(d.y_shape);
  auto first_bad = [](const float* a, std::int64_t size, std::int64_t per_sample) -> std::int64_t {
    for (std::int64_t i = 0; i < size; ++i)
      if (!std::isfinite(a[i])) return i / per_sample;
    return -1;
  };
  if (check_x_finite) {
    const std::int64_t bad = first_bad(d.x, x_size, x_size / count);
    if (bad >= 0)
      throw ValueError(who + ": x contains NaN or infinity (first in sample " + std::to_string(bad) +
                       "); expected finite values");
  }
  if (y_size > 0) {
    const std::int64_t bad = first_bad(d.y, y_size, y_size / count);
    if (bad >= 0)
      throw ValueError(who + ": y contains NaN or infinity (first in sample " + std::to_string(bad) +
                       "); expected finite values");
  }
  if (d.sample_weight)
    for (std::int64_t i = 0; i < count; ++i)
      if (!(std::isfinite(d.sample_weight[i]) && d.sample_weight[i] >= 0.0f))
        throw ValueError(who + ": expected finite, non-negative sample weights, received " +
                         std::to_string(d.sample_weight[i]) + " for sample " + std::to_string(i));
  return y_size / count;
}

void check_model(const Model& model, const std::string& who) {
  if (!model.built()) throw ValueError(who + ": build the model before training or evaluating it");
  if (!model.compiled()) throw ValueError(who + ": call compile() on the model first");
}

void check_batch_size(std::int64_t batch_size, const std::string& who) {
  if (batch_size < 1)
    throw ValueError(
        who + ": expected batch_size to be a positive integer, received batch_size=" + std::to_string(batch_size));
}

// test_step over [begin, end) of d in batches of batch_size, in order (Python's _evaluate_arrays).
Tally evaluate_range(Model& model, const LabeledData& d, std::int64_t target_dim, std::int64_t begin, std::int64_t end,
                     std::int64_t batch_size) {
  const std::int64_t x_dim = shape_size(model.input_shape());
  Tally tally;
  for (std::int64_t start = begin; start < end; start += batch_size) {
    const std::int64_t n = std::min(batch_size, end - start);
    Batch b;
    b.x = d.x + start * x_dim;
    b.y = d.y + start * target_dim;
    b.count = n;
    b.target_dim = target_dim;
    b.n = n;
    b.sample_weight = d.sample_weight ? d.sample_weight + start : nullptr;
    tally.add(model.test_step(b), n);
  }
  return tally;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

History fit(Model& model, const LabeledData& data, const FitOptions& o) {
  const std::string who = "fit";
  check_model(model, who);
  check_batch_size(o.batch_size, who);
  if (o.epochs < 0) throw ValueError(who + ": expected epochs >= 0, received epochs=" + std::to_string(o.epochs));
  if (o.initial_epoch < 0)
    throw ValueError(who + ": expected initial_epoch >= 0, received initial_epoch=" + std::to_string(o.initial_epoch));
  if (!(o.validation_split >= 0.0 && o.validation_split < 1.0))
    throw ValueError(
        who + ": expected validation_split in [0, 1), received validation_split=" + std::to_string(o.validation_split));
  const std::int64_t target_dim = check_data(model, data, who, true);
  const std::int64_t count = data.x_shape[0];

  // What trains and what validates: validation_data, else the last validation_split of the
  // samples (taken before shuffling, as in Keras).
  std::int64_t train_count = count;
  const LabeledData* val = nullptr;
  std::int64_t val_begin = 0, val_end = 0, val_target_dim = target_dim;
  if (o.validation_data) {
    val = &*o.validation_data;
    val_target_dim = check_data(model, *val, who + " (validation_data)", true);
    val_end = val->x_shape[0];
  } else if (o.validation_split > 0.0) {
    train_count = static_cast<std::int64_t>(double(count) * (1.0 - o.validation_split));
    if (train_count == 0 || train_count == count)
      throw ValueError(who + ": validation_split=" + std::to_string(o.validation_split) + " leaves no training or " +
                       "validation samples of " + std::to_string(count));
    val = &data;
    val_begin = train_count;
    val_end = count;
  }
  if (val && val_target_dim != target_dim)
    throw ValueError(who + ": expected validation y with " + std::to_string(target_dim) +
                     " values per sample as the training y, received " + std::to_string(val_target_dim));

  const std::int64_t steps = (train_count + o.batch_size - 1) / o.batch_size;
  const std::int64_t per_sample_rows = rows_per_sample(model);
  const bool top_k = model.top_k() > 0;
  Rng rng(o.seed ? *o.seed : next_seed());
  std::vector<std::int64_t> order(static_cast<std::size_t>(train_count));

  History history;
  for (std::int64_t epoch = o.initial_epoch; epoch < o.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    std::iota(order.begin(), order.end(), std::int64_t{0});
    if (o.shuffle)  // Fisher-Yates from the back, each swap partner uniform in [0, i]
      for (std::int64_t i = train_count - 1; i > 0; --i)
        std::swap(order[i], order[rng.below(static_cast<std::uint64_t>(i) + 1)]);
    Tally tally;
    FitProgress progress;
    progress.epoch = epoch;
    progress.epochs = o.epochs;
    progress.steps = steps;
    for (std::int64_t step = 0; step < steps; ++step) {
      const std::int64_t start = step * o.batch_size, n = std::min(o.batch_size, train_count - start);
      Batch b;
      b.x = data.x;
      b.y = data.y;
      b.count = count;
      b.target_dim = target_dim;
      b.index = order.data() + start;
      b.n = n;
      b.sample_weight = data.sample_weight;
      tally.add(model.train_step(b), n);
      if (o.on_batch_end) {
        progress.step = step + 1;
        progress.samples = tally.samples;
        progress.loss = tally.mean_loss();
        progress.accuracy = tally.accuracy();
        progress.top_k_accuracy = top_k ? tally.top_k_accuracy(per_sample_rows) : 0.0;
        progress.seconds = seconds_since(t0);
        o.on_batch_end(progress);
        if (progress.stop) break;
      }
    }
    progress.step = progress.stop ? progress.step : steps;
    progress.samples = tally.samples;
    progress.loss = tally.mean_loss();
    progress.accuracy = tally.accuracy();
    progress.top_k_accuracy = top_k ? tally.top_k_accuracy(per_sample_rows) : 0.0;
    history.epoch.push_back(epoch);
    history.loss.push_back(progress.loss);
    history.accuracy.push_back(progress.accuracy);
    if (top_k) history.top_k_accuracy.push_back(progress.top_k_accuracy);
    if (val) {
      const Tally v = evaluate_range(model, *val, target_dim, val_begin, val_end, o.batch_size);
      progress.has_validation = true;
      progress.val_loss = v.mean_loss();
      progress.val_accuracy = v.accuracy();
      progress.val_top_k_accuracy = top_k ? v.top_k_accuracy(per_sample_rows) : 0.0;
      history.val_loss.push_back(progress.val_loss);
      history.val_accuracy.push_back(progress.val_accuracy);
      if (top_k) history.val_top_k_accuracy.push_back(progress.val_top_k_accuracy);
    }
    progress.seconds = seconds_since(t0);
    if (o.on_epoch_end) o.on_epoch_end(progress);
    if (progress.stop) break;
  }
  return history;
}

EvaluateResult evaluate(Model& model, const LabeledData& data, std::int64_t batch_size) {
  const std::string who = "evaluate";
  check_model(model, who);
  check_batch_size(batch_size, who);
  // As Python's evaluate: y must be finite, x is not checked (NaN in, NaN out).
  const std::int64_t target_dim = check_data(model, data, who, false);
  const std::int64_t count = data.x_shape[0];
  const Tally t = evaluate_range(model, data, target_dim, 0, count, batch_size);
  EvaluateResult r;
  r.loss = t.mean_loss();
  r.accuracy = t.accuracy();
  r.top_k_accuracy = model.top_k() > 0 ? t.top_k_accuracy(rows_per_sample(model)) : 0.0;
  r.samples = t.samples;
  return r;
}

}  // namespace cnnx
