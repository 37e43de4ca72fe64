// The C++ inference API on a loaded model: model_api_test DIR, where DIR holds small.cnnx
// (written by write_test_models from tests/cpp/test_models.hpp).
// - load_model gives the model that was saved: shapes, class names, the same outputs bit for bit;
// - the shape-checked predict (view and Tensor) refuses a wrong shape or a short output with a
//   ValueError in C++ words before reading anything (the buffers have the wrong size exactly, so
//   AddressSanitizer would report a read past them);
// - 4 threads, each with its own InferenceContext, predicting with one loaded model get the
//   serial results bit for bit (also run under TSan: .ci/native).
#include <cnnx/cnnx.hpp>
#include <cnnx/model_file.hpp>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "test_models.hpp"

namespace {

int failures = 0;
void check(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAILED: %s\n", what.c_str());
    ++failures;
  }
}

// Runs f, which must throw cnnx::ValueError with exactly `message`.
template <class F>
void expect_value_error(F&& f, const std::string& message) {
  try {
    f();
    check(false, "expected ValueError '" + message + "', nothing thrown");
  } catch (const cnnx::ValueError& e) {
    check(e.what() == message, "expected ValueError '" + message + "', received '" + e.what() + "'");
  }
}

bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, sizeof(float) * n) == 0; }

void test_loaded_model(const cnnx::Model& loaded, cnnx::Model& original) {
  check(loaded.input_shape() == cnnx::Shape({9, 7, 3}), "input shape");
  check(loaded.output_shape() == cnnx::Shape({3}), "output shape");
  check(loaded.input_size() == 189 && loaded.output_size() == 3, "sizes");
  check(loaded.class_names() == std::vector<std::string>({"circle", "square", "triangle"}), "class names");
  cnnx::Tensor x({5, 9, 7, 3});
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = float((i * 37) % 256);
  auto context = loaded.make_inference_context();
  const cnnx::Tensor a = loaded.predict(*context, x);
  const cnnx::Tensor b = original.predict(x);
  check(a.shape() == cnnx::Shape({5, 3}), "Tensor predict's shape");
  check(same_bits(a.data(), b.data(), 15), "the loaded model predicts the saved one's bits");
}

void test_shape_checks() {
  cnnx::Sequential mnist;
  cnnx::DenseConfig dense;
  dense.units = 10;
  mnist.add(cnnx::make_flatten("flatten"));
  mnist.add(cnnx::make_dense("dense", dense));
  std::vector<float> x3(10 * 28 * 28 * 3), out(100);
  expect_value_error([&] { mnist.predict(x3.data(), {10, 28, 28, 3}, out.data(), 100); },
                     "Model: build the model before predicting");
  mnist.build({28, 28, 1});
  expect_value_error([&] { mnist.predict(x3.data(), {10, 28, 28, 3}, out.data(), 100); },
                     "Model::predict: expected input of shape (10, 28, 28, 1), received (10, 28, 28, 3)");

  auto model = cnnx_test::make_small_model();
  auto context = model->make_inference_context();
  std::vector<float> one_channel(2 * 9 * 7 * 1, 1.0f), good(2 * 9 * 7 * 3, 1.0f), short_out(5, -7.0f), ok(6);
  expect_value_error([&] { model->predict(one_channel.data(), {2, 9, 7, 1}, ok.data(), 6); },
                     "Model::predict: expected input of shape (2, 9, 7, 3), received (2, 9, 7, 1)");
  expect_value_error([&] { model->predict(*context, one_channel.data(), {2, 9, 7, 1}, ok.data(), 6); },
                     "Model::predict: expected input of shape (2, 9, 7, 3), received (2, 9, 7, 1)");
  expect_value_error([&] { model->predict(good.data(), {9, 7, 3}, ok.data(), 6); },
                     "Model::predict: expected input of shape (n, 9, 7, 3), received (9, 7, 3)");
  expect_value_error([&] { model->predict(good.data(), cnnx::Shape{}, ok.data(), 6); },
                     "Model::predict: expected input of shape (n, 9, 7, 3), received ()");
  expect_value_error([&] { model->predict(good.data(), {-2, 9, 7, 3}, ok.data(), 6); },
                     "Model::predict: expected input of shape (n, 9, 7, 3), received (-2, 9, 7, 3)");
  expect_value_error([&] { model->predict(good.data(), {2, 9, 7, 3}, short_out.data(), 5); },
                     "Model::predict: expected an output buffer of at least 6 floats (shape (2, 3)), received 5");
  expect_value_error([&] { model->predict(good.data(), {INT64_MAX / 2, 9, 7, 3}, ok.data(), 6); },
                     "Model::predict: expected a batch whose size fits int64, received shape (4611686018427387903, 9, "
                     "7, 3)");
  for (float v : short_out) check(v == -7.0f, "nothing written on a refused call");
  const cnnx::Tensor wrong({2, 9, 7, 1});
  expect_value_error([&] { model->predict(wrong); },
                     "Model::predict: expected input of shape (2, 9, 7, 3), received (2, 9, 7, 1)");
  expect_value_error([&] { model->check_predict_shapes({2, 9, 7}, 6, "classify"); },
                     "classify: expected input of shape (n, 9, 7, 3), received (2, 9, 7)");
  // The checked and the raw forms give the same bits; an empty batch is fine.
  std::vector<float> raw(6);
  model->predict(good.data(), {2, 9, 7, 3}, ok.data(), 6);
  model->predict(good.data(), 2, raw.data());
  check(same_bits(ok.data(), raw.data(), 6), "checked predict == raw predict");
  check(model->predict(cnnx::Tensor({0, 9, 7, 3})).shape() == cnnx::Shape({0, 3}), "an empty batch");
}

void test_threads(const cnnx::Model& model) {
  const std::int64_t n = 45;
  cnnx::Tensor x({n, 9, 7, 3});
  cnnx::Rng rng(3);
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = 255.0f * rng.uniform();
  auto context = model.make_inference_context();
  const cnnx::Tensor serial = model.predict(*context, x, 8);
  const int threads = 4, rounds = 20;
  std::vector<int> mismatches(threads, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto mine = model.make_inference_context();
      std::vector<float> out(n * 3);
      for (int r = 0; r < rounds; ++r) {
        if (r % 2) {
          model.predict(*mine, x.data(), x.shape(), out.data(), std::int64_t(out.size()), 1 + (t + r) % 16);
        } else {
          const cnnx::Tensor y = model.predict(*mine, x, 1 + (t * 5 + r) % 16);
          std::memcpy(out.data(), y.data(), sizeof(float) * out.size());
        }
        if (!same_bits(out.data(), serial.data(), out.size())) ++mismatches[t];
      }
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < threads; ++t) check(mismatches[t] == 0, "thread " + std::to_string(t) + " == serial");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: model_api_test DIR (holding small.cnnx)\n");
    return 2;
  }
  try {
    auto loaded = cnnx::load_model(std::string(argv[1]) + "/small.cnnx");
    auto original = cnnx_test::make_small_model();
    test_loaded_model(*loaded, *original);
    test_shape_checks();
    test_threads(*loaded);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAILED: unexpected exception: %s\n", e.what());
    return 1;
  }
  if (failures == 0) std::printf("model_api_test: OK\n");
  return failures == 0 ? 0 : 1;
}
