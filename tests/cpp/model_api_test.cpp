// The C++ inference API on a loaded model (the model file is written here, by save_model, into
// a temporary directory: no test data from outside the build).
// - load_model gives the model that was saved: shapes, class names, the same outputs bit for bit;
// - the shape-checked predict (view and Tensor) refuses a wrong shape or a short output with a
//   ValueError in C++ words before reading anything (the buffers have the wrong size exactly, so
//   AddressSanitizer would report a read past them; .ci/native runs this under ASan);
// - 4 threads, each with its own InferenceContext, predicting with one loaded model get the
//   serial results bit for bit (also run under TSan).
#include <gtest/gtest.h>

#include <cnnx/cnnx.hpp>
#include <cnnx/model_file.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "test_models.hpp"

namespace {

// Runs f, which must throw cnnx::ValueError with exactly `message`.
template <class F>
void expect_value_error(F&& f, const std::string& message) {
  try {
    f();
    ADD_FAILURE() << "expected ValueError '" << message << "', nothing thrown";
  } catch (const cnnx::ValueError& e) {
    EXPECT_EQ(std::string(e.what()), message);
  }
}

bool same_bits(const float* a, const float* b, std::size_t n) { return std::memcmp(a, b, sizeof(float) * n) == 0; }

// The small model saved to a file and loaded back.
class LoadedModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cnnx_model_api_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            std::to_string(reinterpret_cast<std::uintptr_t>(this)));
    std::filesystem::create_directories(dir_);
    original_ = cnnx_test::make_small_model();
    const std::string path = (dir_ / "small.cnnx").string();
    cnnx::save_model(*original_, path);
    loaded_ = cnnx::load_model(path);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path dir_;
  std::shared_ptr<cnnx::Sequential> original_;
  std::unique_ptr<cnnx::Model> loaded_;
};

TEST_F(LoadedModel, HasTheSavedShapesClassesAndOutputs) {
  EXPECT_EQ(loaded_->input_shape(), cnnx::Shape({9, 7, 3}));
  EXPECT_EQ(loaded_->output_shape(), cnnx::Shape({3}));
  EXPECT_EQ(loaded_->input_size(), 189);
  EXPECT_EQ(loaded_->output_size(), 3);
  EXPECT_EQ(loaded_->class_names(), std::vector<std::string>({"circle", "square", "triangle"}));
  cnnx::Tensor x({5, 9, 7, 3});
  for (std::int64_t i = 0; i < x.size(); ++i) x.data()[i] = float((i * 37) % 256);
  auto context = loaded_->make_inference_context();
  const cnnx::Tensor a = loaded_->predict(*context, x);
  const cnnx::Tensor b = original_->predict(x);
  EXPECT_EQ(a.shape(), cnnx::Shape({5, 3}));
  EXPECT_TRUE(same_bits(a.data(), b.data(), 15));
}

TEST_F(LoadedModel, FourThreadsWithOwnContextsGiveTheSerialBits) {
  const cnnx::Model& model = *loaded_;
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
  for (int t = 0; t < threads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(ShapeCheckedPredict, NamesTheExpectedAndReceivedShapes) {
  auto mnist = std::make_shared<cnnx::Sequential>();
  cnnx::DenseConfig dense;
  dense.units = 10;
  mnist->add(cnnx::make_flatten("flatten"));
  mnist->add(cnnx::make_dense("dense", dense));
  std::vector<float> x3(10 * 28 * 28 * 3), out(100);
  expect_value_error([&] { mnist->predict(x3.data(), {10, 28, 28, 3}, out.data(), 100); },
                     "Model: build the model before predicting");
  mnist->build({28, 28, 1});
  expect_value_error([&] { mnist->predict(x3.data(), {10, 28, 28, 3}, out.data(), 100); },
                     "Model::predict: expected input of shape (10, 28, 28, 1), received (10, 28, 28, 3)");
}

TEST(ShapeCheckedPredict, RefusesBeforeReadingOrWriting) {
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
  for (float v : short_out) EXPECT_EQ(v, -7.0f) << "written by a refused call";
  const cnnx::Tensor wrong({2, 9, 7, 1});
  expect_value_error([&] { model->predict(wrong); },
                     "Model::predict: expected input of shape (2, 9, 7, 3), received (2, 9, 7, 1)");
  expect_value_error([&] { model->check_predict_shapes({2, 9, 7}, 6, "classify"); },
                     "classify: expected input of shape (n, 9, 7, 3), received (2, 9, 7)");
}

TEST(ShapeCheckedPredict, GivesTheRawPredictsBits) {
  auto model = cnnx_test::make_small_model();
  std::vector<float> x(2 * 9 * 7 * 3), checked(6), raw(6);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float(i % 251);
  model->predict(x.data(), {2, 9, 7, 3}, checked.data(), 6);
  model->predict(x.data(), 2, raw.data());
  EXPECT_TRUE(same_bits(checked.data(), raw.data(), 6));
  EXPECT_EQ(model->predict(cnnx::Tensor({0, 9, 7, 3})).shape(), cnnx::Shape({0, 3}));
}

}  // namespace
