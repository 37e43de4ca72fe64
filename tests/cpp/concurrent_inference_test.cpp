// Several C++ threads predicting with one model, each through its own InferenceContext, get
// the same bits as serial calls, and nothing crashes (run under ASan and TSan too: see
// .ci/native). Also: the model's own predict is unchanged by the contexts, and a stale context
// is refused.
#include <gtest/gtest.h>

#include <cnnx/cnnx.hpp>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

std::shared_ptr<cnnx::Sequential> make_model() {
  auto model = std::make_shared<cnnx::Sequential>();
  cnnx::Conv2DConfig c1;
  c1.filters = 8;
  c1.activation = "relu";
  model->add(cnnx::make_conv2d("conv1", c1));
  model->add(cnnx::make_max_pooling2d("pool1", {}));
  cnnx::Conv2DConfig c2;
  c2.filters = 16;
  c2.padding = "same";
  c2.activation = "relu";
  model->add(cnnx::make_conv2d("conv2", c2));
  model->add(cnnx::make_batch_normalization("bn", {}));
  model->add(cnnx::make_flatten("flatten"));
  cnnx::DenseConfig d;
  d.units = 10;
  d.activation = "softmax";
  model->add(cnnx::make_dense("dense", d));
  model->build({17, 15, 3});
  return model;
}

class ConcurrentInference : public ::testing::Test {
 protected:
  void SetUp() override {
    cnnx::set_random_seed(7);
    model = make_model();
    x.resize(n * in);
    cnnx::Rng rng(11);
    for (auto& v : x) v = rng.uniform();
    serial.resize(n * out);
    context = model->make_inference_context();
    model->predict(*context, x.data(), n, serial.data(), 8);
  }
  static constexpr std::int64_t n = 45, in = 17 * 15 * 3, out = 10;
  std::shared_ptr<cnnx::Sequential> model;
  std::unique_ptr<cnnx::InferenceContext> context;
  std::vector<float> x, serial;
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}

// The model's own predict, in another chunk size, gives the same bits (chunking never changes a
// sample's result).
TEST_F(ConcurrentInference, OwnPredictEqualsContextPredict) {
  std::vector<float> own(n * out);
  model->predict(x.data(), n, own.data(), 32);
  EXPECT_TRUE(same_bits(own, serial));
}

TEST_F(ConcurrentInference, ThreadsGetTheSerialBits) {
  const int threads = 4, rounds = 20;
  std::vector<std::vector<float>> results(threads, std::vector<float>(n * out));
  std::vector<int> mismatches(threads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto mine = model->make_inference_context();
      for (int r = 0; r < rounds; ++r) {
        model->predict(*mine, x.data(), n, results[t].data(), 1 + (t * 7 + r) % 16);
        if (!same_bits(results[t], serial)) ++mismatches[t];
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// A context made before a rebuild (here: compile re-plans) is refused with a clear error.
TEST_F(ConcurrentInference, StaleContextIsRefused) {
  model->compile(cnnx::make_crossentropy(false, false), std::make_shared<cnnx::SGD>(0.01));
  EXPECT_FALSE(model->context_is_current(*context));
  EXPECT_THROW(model->predict(*context, x.data(), n, serial.data(), 8), cnnx::ValueError);
}

}  // namespace
