// cnnx::fit and cnnx::evaluate (cnnx/training.hpp): a small model learns, the loop is the one
// of Python's fit (the same train_step sequence without shuffling), evaluate is the test_step
// sums, the callbacks see every batch and epoch, and bad arguments give ValueError.
#include <gtest/gtest.h>

#include <cmath>
#include <cnnx/cnnx.hpp>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

namespace {

// Three Gaussian blobs in 4-D, one-hot labels: separable, so a small MLP learns them quickly.
struct Blobs {
  std::int64_t n;
  std::vector<float> x, y;
  cnnx::LabeledData data() const {
    cnnx::LabeledData d;
    d.x = x.data();
    d.x_shape = {n, 4};
    d.y = y.data();
    d.y_shape = {n, 3};
    return d;
  }
};

Blobs make_blobs(std::int64_t n, std::uint64_t seed) {
  Blobs b{n, std::vector<float>(n * 4), std::vector<float>(n * 3, 0.0f)};
  cnnx::Rng rng(seed);
  for (std::int64_t i = 0; i < n; ++i) {
    const std::int64_t c = static_cast<std::int64_t>(rng.below(3));
    for (std::int64_t j = 0; j < 4; ++j) b.x[i * 4 + j] = float(rng.normal() * 0.5 + (j % 3 == c ? 2.0 : 0.0));
    b.y[i * 3 + c] = 1.0f;
  }
  return b;
}

std::unique_ptr<cnnx::Sequential> make_model(std::uint64_t seed) {
  cnnx::set_random_seed(seed);
  auto model = std::make_unique<cnnx::Sequential>();
  cnnx::DenseConfig hidden;
  hidden.units = 16;
  hidden.activation = "relu";
  model->add(cnnx::make_dense("hidden", hidden));
  cnnx::DenseConfig out;
  out.units = 3;
  out.activation = "softmax";
  model->add(cnnx::make_dense("out", out));
  model->build({4});
  model->compile(cnnx::make_crossentropy(false, false), std::make_shared<cnnx::Adam>(0.01));
  return model;
}

std::vector<float> weights(const cnnx::Model& model) {
  std::vector<float> w;
  for (const auto& layer : model.layers())
    for (const auto& p : layer->params()) w.insert(w.end(), p.value.data(), p.value.data() + p.value.size());
  return w;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

TEST(Fit, SmallModelLearns) {
  auto model = make_model(1);
  const Blobs train = make_blobs(300, 2), test = make_blobs(100, 3);
  cnnx::FitOptions o;
  o.epochs = 8;
  o.batch_size = 16;
  o.seed = 5;
  const cnnx::History h = cnnx::fit(*model, train.data(), o);
  ASSERT_EQ(h.loss.size(), 8u);
  EXPECT_EQ(h.epoch.front(), 0);
  EXPECT_EQ(h.epoch.back(), 7);
  EXPECT_LT(h.loss.back(), h.loss.front() * 0.5);
  EXPECT_GT(h.accuracy.back(), 0.9);
  EXPECT_TRUE(h.val_loss.empty());
  const cnnx::EvaluateResult r = cnnx::evaluate(*model, test.data(), 32);
  EXPECT_EQ(r.samples, 100);
  EXPECT_GT(r.accuracy, 0.9);
}

// Without shuffling, fit runs exactly the train_step calls of Python's fit(shuffle=False): rows
// [0, b), [b, 2b), ..., the last batch the remainder, epoch after epoch.
TEST(Fit, WithoutShuffleIsTheTrainStepLoop) {
  const Blobs train = make_blobs(70, 4);
  auto a = make_model(9), b = make_model(9);
  ASSERT_TRUE(same_bits(weights(*a), weights(*b)));
  cnnx::FitOptions o;
  o.epochs = 3;
  o.batch_size = 16;
  o.shuffle = false;
  const cnnx::History h = cnnx::fit(*a, train.data(), o);

  std::vector<std::int64_t> index(70);
  for (std::int64_t i = 0; i < 70; ++i) index[i] = i;
  double last_epoch_loss = 0.0;
  for (int epoch = 0; epoch < 3; ++epoch) {
    double sum = 0.0;
    for (std::int64_t start = 0; start < 70; start += 16) {
      cnnx::Batch batch;
      batch.x = train.x.data();
      batch.y = train.y.data();
      batch.count = 70;
      batch.target_dim = 3;
      batch.index = index.data() + start;
      batch.n = std::min<std::int64_t>(16, 70 - start);
      sum += b->train_step(batch).loss * double(batch.n);
    }
    last_epoch_loss = sum / 70.0;
  }
  EXPECT_TRUE(same_bits(weights(*a), weights(*b)));
  EXPECT_EQ(h.loss.back(), last_epoch_loss);
}

TEST(Fit, ShuffleFollowsTheSeed) {
  const Blobs train = make_blobs(64, 6);
  auto run = [&](std::uint64_t seed) {
    auto model = make_model(3);
    cnnx::FitOptions o;
    o.epochs = 2;
    o.batch_size = 8;
    o.seed = seed;
    cnnx::fit(*model, train.data(), o);
    return weights(*model);
  };
  const auto first = run(11), again = run(11), other = run(12);
  EXPECT_TRUE(same_bits(first, again));
  EXPECT_FALSE(same_bits(first, other));
}

TEST(Evaluate, IsTheSumOfTestSteps) {
  auto model = make_model(2);
  const Blobs data = make_blobs(50, 7);
  const cnnx::EvaluateResult r = cnnx::evaluate(*model, data.data(), 7);
  double loss = 0.0;
  std::int64_t correct = 0, rows = 0;
  for (std::int64_t start = 0; start < 50; start += 7) {
    cnnx::Batch batch;
    batch.x = data.x.data() + start * 4;
    batch.y = data.y.data() + start * 3;
    batch.n = batch.count = std::min<std::int64_t>(7, 50 - start);
    batch.target_dim = 3;
    const cnnx::StepResult s = model->test_step(batch);
    loss += s.loss * double(batch.n);
    correct += s.correct;
    rows += s.rows;
  }
  EXPECT_EQ(r.loss, loss / 50.0);
  EXPECT_EQ(r.accuracy, double(correct) / double(rows));
  EXPECT_EQ(r.samples, 50);
}

// validation_split validates on the last samples, unshuffled: after the last epoch, val_loss is
// what evaluate gives on them.
TEST(Fit, ValidationSplitUsesTheLastSamples) {
  auto model = make_model(4);
  const Blobs data = make_blobs(100, 8);
  cnnx::FitOptions o;
  o.epochs = 2;
  o.batch_size = 10;
  o.validation_split = 0.25;
  std::int64_t samples_seen = 0;
  o.on_batch_end = [&](cnnx::FitProgress& p) { samples_seen = p.samples; };
  const cnnx::History h = cnnx::fit(*model, data.data(), o);
  EXPECT_EQ(samples_seen, 75);
  ASSERT_EQ(h.val_loss.size(), 2u);
  cnnx::LabeledData tail = data.data();
  tail.x = data.x.data() + 75 * 4;
  tail.y = data.y.data() + 75 * 3;
  tail.x_shape[0] = tail.y_shape[0] = 25;
  const cnnx::EvaluateResult r = cnnx::evaluate(*model, tail, 10);
  EXPECT_EQ(h.val_loss.back(), r.loss);
  EXPECT_EQ(h.val_accuracy.back(), r.accuracy);

  // validation_data instead: the same numbers.
  auto again = make_model(4);
  cnnx::LabeledData head = data.data();
  head.x_shape[0] = head.y_shape[0] = 75;
  o.validation_split = 0.0;
  o.validation_data = tail;
  o.seed = 1;
  auto first = make_model(4);
  cnnx::FitOptions split = o;
  split.validation_data.reset();
  split.validation_split = 0.25;
  const cnnx::History by_split = cnnx::fit(*first, data.data(), split);
  const cnnx::History by_data = cnnx::fit(*again, head, o);
  EXPECT_EQ(by_split.val_loss, by_data.val_loss);
  EXPECT_EQ(by_split.loss, by_data.loss);
}

TEST(Fit, CallbacksSeeEveryBatchAndEpoch) {
  auto model = make_model(5);
  const Blobs data = make_blobs(45, 9);
  cnnx::FitOptions o;
  o.epochs = 4;
  o.initial_epoch = 1;
  o.batch_size = 10;
  std::vector<std::int64_t> steps, epochs;
  std::int64_t last_samples = 0;
  o.on_batch_end = [&](cnnx::FitProgress& p) {
    steps.push_back(p.step);
    EXPECT_EQ(p.steps, 5);
    EXPECT_EQ(p.epochs, 4);
    EXPECT_TRUE(std::isfinite(p.loss));
    EXPECT_GE(p.accuracy, 0.0);
    EXPECT_LE(p.accuracy, 1.0);
    last_samples = p.samples;
  };
  o.on_epoch_end = [&](cnnx::FitProgress& p) {
    epochs.push_back(p.epoch);
    EXPECT_EQ(p.samples, 45);
    EXPECT_FALSE(p.has_validation);
  };
  const cnnx::History h = cnnx::fit(*model, data.data(), o);
  EXPECT_EQ(steps, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4, 5}));
  EXPECT_EQ(epochs, (std::vector<std::int64_t>{1, 2, 3}));
  EXPECT_EQ(h.epoch, epochs);
  EXPECT_EQ(last_samples, 45);
}

TEST(Fit, CallbackStopsTraining) {
  auto model = make_model(6);
  const Blobs data = make_blobs(40, 10);
  cnnx::FitOptions o;
  o.epochs = 5;
  o.batch_size = 10;
  int batches = 0, epoch_ends = 0;
  o.on_batch_end = [&](cnnx::FitProgress& p) { p.stop = ++batches == 6; };  // in the second epoch
  o.on_epoch_end = [&](cnnx::FitProgress& p) {
    ++epoch_ends;
    EXPECT_EQ(p.stop, epoch_ends == 2);
  };
  const cnnx::History h = cnnx::fit(*model, data.data(), o);
  EXPECT_EQ(batches, 6);
  EXPECT_EQ(epoch_ends, 2);
  EXPECT_EQ(h.loss.size(), 2u);
}

template <class F>
std::string value_error(F&& f) {
  try {
    f();
  } catch (const cnnx::ValueError& e) {
    return e.what();
  }
  return "(no ValueError)";
}

TEST(Fit, BadArgumentsGiveValueError) {
  auto model = make_model(7);
  Blobs data = make_blobs(20, 11);
  auto fit_with = [&](cnnx::FitOptions o, cnnx::LabeledData d) { cnnx::fit(*model, d, o); };
  cnnx::FitOptions o;
  auto bad_batch = o;
  bad_batch.batch_size = 0;
  EXPECT_NE(value_error([&] {
              fit_with(bad_batch, data.data());
            }).find("expected batch_size to be a positive integer, received batch_size=0"),
            std::string::npos);
  auto bad_epochs = o;
  bad_epochs.epochs = -1;
  EXPECT_NE(value_error([&] { fit_with(bad_epochs, data.data()); }).find("expected epochs >= 0"), std::string::npos);
  auto bad_split = o;
  bad_split.validation_split = 1.0;
  EXPECT_NE(value_error([&] { fit_with(bad_split, data.data()); }).find("validation_split in [0, 1)"),
            std::string::npos);
  bad_split.validation_split = 0.01;  // floor(20 * 0.99) = 19 training samples, 1 to validate
  EXPECT_NO_THROW(fit_with(bad_split, data.data()));
  bad_split.validation_split = 0.99;  // floor(20 * 0.01) = 0 training samples
  EXPECT_NE(value_error([&] { fit_with(bad_split, data.data()); }).find("leaves no training or validation samples"),
            std::string::npos);

  auto d = data.data();
  d.x_shape = {20, 5};
  EXPECT_NE(value_error([&] { fit_with(o, d); }).find("expected x of shape (20, 4)"), std::string::npos);
  d = data.data();
  d.y_shape = {19, 3};
  EXPECT_NE(value_error([&] { fit_with(o, d); }).find("expected y with 20 samples to match x"), std::string::npos);
  d = data.data();
  d.y_shape = {20, 1};
  EXPECT_NE(value_error([&] { fit_with(o, d); }).find("expected one-hot labels with 3 values per sample"),
            std::string::npos);
  d = data.data();
  d.x = nullptr;
  EXPECT_NE(value_error([&] { fit_with(o, d); }).find("received a null pointer"), std::string::npos);
  data.x[13 * 4 + 2] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_NE(value_error([&] { fit_with(o, data.data()); }).find("x contains NaN or infinity (first in sample 13)"),
            std::string::npos);
  // evaluate lets NaN in x through, as Python's does.
  EXPECT_NO_THROW(cnnx::evaluate(*model, data.data()));
  data.x[13 * 4 + 2] = 0.0f;
  std::vector<float> w(20, 1.0f);
  w[4] = -1.0f;
  d = data.data();
  d.sample_weight = w.data();
  EXPECT_NE(value_error([&] { fit_with(o, d); }).find("expected finite, non-negative sample weights"),
            std::string::npos);
  EXPECT_NE(value_error([&] { cnnx::evaluate(*model, data.data(), -3); }).find("evaluate: expected batch_size"),
            std::string::npos);

  cnnx::Sequential uncompiled;
  uncompiled.add(cnnx::make_flatten("flatten"));
  uncompiled.build({4});
  EXPECT_NE(value_error([&] { cnnx::fit(uncompiled, data.data()); }).find("fit: call compile()"), std::string::npos);
}

// The core's messages speak C++: a C++ caller passes -1 and infinity where Python passes None,
// and has no cnnx.utils (the Python bindings put Python's words back).
TEST(Messages, SpeakCpp) {
  cnnx::DropoutConfig dropout;
  dropout.noise_shape = {-1, -5};
  const std::string drop = value_error([&] { cnnx::make_dropout("drop", dropout); });
  EXPECT_NE(drop.find("positive or -1 (the input's size), received noise_shape=(-1, -5)"), std::string::npos) << drop;
  cnnx::ReLUConfig relu;
  relu.max_value = -1.0f;
  const std::string r = value_error([&] { cnnx::make_relu("relu", relu); });
  EXPECT_NE(r.find("expected max_value >= 0 (infinity: no limit)"), std::string::npos) << r;
  auto model = make_model(8);
  const Blobs data = make_blobs(10, 12);
  auto d = data.data();
  d.y_shape = {10, 1};
  const std::string loss = value_error([&] { cnnx::fit(*model, d); });
  EXPECT_NE(loss.find("or one-hot encode them"), std::string::npos) << loss;
  for (const std::string& m : {drop, r, loss}) {
    EXPECT_EQ(m.find("None"), std::string::npos) << m;
    EXPECT_EQ(m.find("cnnx.utils"), std::string::npos) << m;
  }
}

}  // namespace
