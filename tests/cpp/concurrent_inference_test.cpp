// Several C++ threads predicting with one model, each through its own InferenceContext, get
// the same bits as serial calls, and nothing crashes (run it under ASan and TSan too: see
// .ci/native). Also: the model's own predict is unchanged by the contexts, and a stale context
// is refused.
#include <cnnx/cnnx.hpp>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what);
    ++failures;
  }
}

std::shared_ptr<cnnx::Sequential> make_model() {
  auto model = std::make_shared<cnnx::Sequential>();
  cnnx::Conv2DConfig c1;
  c1.filters = 8;
  c1.activation = "relu";
  model->add(cnnx::make_conv2d("conv1", c1));
  cnnx::MaxPooling2DConfig p;
  p.pool_h = p.pool_w = 2;
  model->add(cnnx::make_max_pooling2d("pool1", p));
  cnnx::Conv2DConfig c2;
  c2.filters = 16;
  c2.padding = "same";
  c2.activation = "relu";
  model->add(cnnx::make_conv2d("conv2", c2));
  cnnx::BatchNormalizationConfig bn;
  model->add(cnnx::make_batch_normalization("bn", bn));
  model->add(cnnx::make_flatten("flatten"));
  cnnx::DenseConfig d;
  d.units = 10;
  d.activation = "softmax";
  model->add(cnnx::make_dense("dense", d));
  model->build({17, 15, 3});
  return model;
}

}  // namespace

int main() {
  cnnx::set_random_seed(7);
  auto model = make_model();
  const std::int64_t n = 45, in = 17 * 15 * 3, out = 10;
  std::vector<float> x(n * in);
  cnnx::Rng rng(11);
  for (auto& v : x) v = rng.uniform();
  std::vector<float> serial(n * out);
  auto ctx = model->make_inference_context();
  model->predict(*ctx, x.data(), n, serial.data(), 8);

  // The model's own predict, in other chunk sizes, gives the same bits (chunking never changes
  // a sample's result).
  std::vector<float> own(n * out);
  model->predict(x.data(), n, own.data(), 32);
  check(std::memcmp(own.data(), serial.data(), sizeof(float) * own.size()) == 0, "own predict == context predict");

  const int threads = 4, rounds = 20;
  std::vector<std::vector<float>> results(threads, std::vector<float>(n * out));
  std::vector<int> mismatches(threads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto mine = model->make_inference_context();
      for (int r = 0; r < rounds; ++r) {
        model->predict(*mine, x.data(), n, results[t].data(), 1 + (t * 7 + r) % 16);
        if (std::memcmp(results[t].data(), serial.data(), sizeof(float) * serial.size()) != 0) ++mismatches[t];
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) check(mismatches[t] == 0, "threaded predict == serial predict");

  // A context made before a rebuild (here: compile re-plans) is refused with a clear error.
  model->compile(cnnx::make_crossentropy(false, false), std::make_shared<cnnx::SGD>(0.01));
  bool refused = false;
  try {
    model->predict(*ctx, x.data(), n, serial.data(), 8);
  } catch (const cnnx::ValueError&) {
    refused = true;
  }
  check(refused, "a stale context is refused");
  if (failures == 0) std::printf("concurrent_inference: OK (%d threads x %d rounds)\n", threads, rounds);
  return failures == 0 ? 0 : 1;
}
