// cnnx::save_model / cnnx::load_model (model_file.hpp): a model built and trained in C++ comes
// back with the same predictions, weights and optimizer state (one more step lands on the same
// weights); a chain is written as a Sequential, a graph as a Functional; a configuration the
// reader must refuse gives a cnnx::Error naming the file, and mutated configurations never give
// anything else (run under AddressSanitizer by .ci/native).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cnnx/cnnx.hpp>
#include <cnnx/model_file.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

fs::path temp_dir() { return fs::temp_directory_path() / ("cnnx_model_io_test_" + std::to_string(::getpid())); }

std::string temp_path(const std::string& name) {
  fs::create_directories(temp_dir());
  return (temp_dir() / name).string();
}

struct RemoveTempDir : ::testing::Environment {
  void TearDown() override {
    std::error_code ignored;
    fs::remove_all(temp_dir(), ignored);
  }
};
const auto* const remove_temp_dir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

std::vector<float> input(std::int64_t n, const cnnx::Shape& sample, std::uint64_t seed) {
  cnnx::Rng rng(seed);
  std::vector<float> x(static_cast<std::size_t>(n * cnnx::shape_size(sample)));
  for (auto& v : x) v = static_cast<float>(rng.normal());
  return x;
}

std::vector<float> predict(cnnx::Model& model, const std::vector<float>& x, std::int64_t n) {
  std::vector<float> out(static_cast<std::size_t>(n * cnnx::shape_size(model.output_shape())));
  model.predict(x.data(), n, out.data());
  return out;
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

// A residual graph: a shared 1x1 convolution used twice, a merge, batch normalization, a
// frozen layer, a regularized head.
std::unique_ptr<cnnx::Model> make_graph() {
  cnnx::set_random_seed(3);
  auto model = std::make_unique<cnnx::Model>();
  model->set_name("residual");
  const int in = model->add_input({6, 6, 2});
  const int scaled = model->add_node(cnnx::make_rescaling("scale", 0.5f, 0.25f), {in});
  cnnx::Conv2DConfig c;
  c.filters = 2;
  c.kernel_h = c.kernel_w = 1;
  auto shared = cnnx::make_conv2d("shared", c);
  const int a = model->add_node(shared, {scaled});
  const int b = model->add_node(shared, {a});
  const int sum = model->add_node(cnnx::make_add("sum"), {scaled, b});
  const int cat = model->add_node(cnnx::make_concatenate("cat"), {sum, a});
  const int bn = model->add_node(cnnx::make_batch_normalization("bn"), {cat});
  cnnx::MaxPooling2DConfig pool;
  const int pooled = model->add_node(cnnx::make_max_pooling2d("pool", pool), {bn});
  const int flat = model->add_node(cnnx::make_flatten("flat"), {pooled});
  cnnx::DenseConfig hidden;
  hidden.units = 8;
  hidden.activation = "relu";
  auto frozen = cnnx::make_dense("frozen", hidden);
  frozen->set_trainable(false);
  const int h = model->add_node(frozen, {flat});
  cnnx::DenseConfig out;
  out.units = 3;
  out.activation = "softmax";
  auto head = cnnx::make_dense("head", out);
  head->set_regularizer("kernel", 0.0, 0.01);
  model->set_output(model->add_node(head, {h}));
  model->build();
  model->compile(cnnx::make_crossentropy(false, false), std::make_shared<cnnx::Adam>(0.01));
  model->set_class_names({"a", "b", "c"});
  return model;
}

struct Data {
  std::vector<float> x, y;
  std::vector<std::int64_t> index;
  cnnx::Batch batch(const cnnx::Model&) const {
    cnnx::Batch b;
    b.x = x.data();
    b.y = y.data();
    b.count = static_cast<std::int64_t>(index.size());
    b.target_dim = 3;
    b.index = index.data();
    b.n = b.count;
    return b;
  }
};

Data make_data(std::int64_t n) {
  Data d{input(n, {6, 6, 2}, 11), std::vector<float>(static_cast<std::size_t>(n * 3), 0.0f), {}};
  for (std::int64_t i = 0; i < n; ++i) {
    d.y[static_cast<std::size_t>(i * 3 + i % 3)] = 1.0f;
    d.index.push_back(i);
  }
  return d;
}

TEST(ModelIo, GraphRoundTripKeepsPredictionsAndOptimizerState) {
  auto model = make_graph();
  const Data d = make_data(8);
  for (int i = 0; i < 3; ++i) model->train_step(d.batch(*model));
  const std::string path = temp_path("graph.cnnx");
  cnnx::save_model(*model, path);

  auto loaded = cnnx::load_model(path);
  ASSERT_TRUE(loaded->compiled());
  EXPECT_EQ(loaded->name(), "residual");
  EXPECT_EQ(loaded->class_names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(loaded->optimizer().iterations, 3);
  EXPECT_EQ(loaded->node_count(), model->node_count());
  for (const auto& layer : loaded->layers()) EXPECT_EQ(layer->trainable(), layer->name() != "frozen") << layer->name();
  const auto x = input(5, {6, 6, 2}, 7);
  EXPECT_TRUE(same_bits(predict(*loaded, x, 5), predict(*model, x, 5)));
  EXPECT_TRUE(same_bits(weights(*loaded), weights(*model)));

  const cnnx::StepResult r1 = model->train_step(d.batch(*model));
  const cnnx::StepResult r2 = loaded->train_step(d.batch(*loaded));
  EXPECT_EQ(r1.loss, r2.loss);
  EXPECT_TRUE(same_bits(weights(*loaded), weights(*model)));

  const cnnx::ModelFileContents contents = cnnx::read_model_file(path);
  EXPECT_EQ(contents.metadata.at("format_version"), "2");
  EXPECT_NE(contents.metadata.at("model_config").find("\"class_name\": \"Functional\""), std::string::npos);

  cnnx::LoadOptions uncompiled;
  uncompiled.compile = false;
  EXPECT_FALSE(cnnx::load_model(path, uncompiled)->compiled());
}

TEST(ModelIo, ChainIsASequentialAndLoadsFromMemory) {
  cnnx::set_random_seed(5);
  cnnx::Sequential model;
  cnnx::DenseConfig d;
  d.units = 4;
  d.activation = "tanh";
  model.add(cnnx::make_dense("first", d));
  model.add(cnnx::make_dropout("drop", cnnx::DropoutConfig{}));
  d.units = 2;
  model.add(cnnx::make_dense("second", d));
  model.build({3});
  const std::string path = temp_path("chain.cnnx");
  cnnx::save_model(model, path);
  const cnnx::ModelFileContents contents = cnnx::read_model_file(path);
  EXPECT_EQ(contents.metadata.at("format_version"), "1");
  EXPECT_EQ(contents.metadata.count("compile_config"), 0u);
  const std::vector<std::uint8_t> bytes = cnnx::serialize_model_file(contents);
  auto loaded = cnnx::load_model_from_memory(bytes.data(), bytes.size(), "chain");
  const auto x = input(4, {3}, 9);
  EXPECT_TRUE(same_bits(predict(*loaded, x, 4), predict(model, x, 4)));
}

cnnx::ModelFileContents good_contents() {
  auto model = make_graph();
  const std::string path = temp_path("good.cnnx");
  cnnx::save_model(*model, path);
  return cnnx::read_model_file(path);
}

// The message of the cnnx::Error loading `contents` gives, or "" when it loads.
std::string load_error(const cnnx::ModelFileContents& contents, bool* other = nullptr) {
  const auto bytes = cnnx::serialize_model_file(contents);
  try {
    cnnx::load_model_from_memory(bytes.data(), bytes.size(), "m.cnnx");
  } catch (const cnnx::Error& e) {
    return e.what();
  } catch (...) {
    if (other) *other = true;
    return "not a cnnx::Error";
  }
  return "";
}

TEST(ModelIo, BadConfigurationsNameTheFileAndTheProblem) {
  const cnnx::ModelFileContents good = good_contents();
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"class_name\": \"Functional\", \"config\": {\"layers\": 5}}", "expected 'layers' to be a non-empty list"},
      {"{\"class_name\": \"Sequential\", \"config\": {\"layers\": [{\"class_name\": \"Layer\"}]}}",
       "unknown layer class 'Layer'"},
      {"{\"class_name\": \"Sequential\", \"config\": {\"input_shape\": [null, 4], \"layers\": [{\"class_name\": "
       "\"Dense\", \"config\": {\"units\": \"8\"}}]}}",
       "layer 'dense' (Dense): expected units to be an int"},
      {"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]", "nested more than 32 levels"},
  };
  for (const auto& [config, expected] : cases) {
    cnnx::ModelFileContents bad = good;
    bad.metadata["model_config"] = config;
    const std::string message = load_error(bad);
    EXPECT_EQ(message.rfind("m.cnnx: ", 0), 0u) << message;
    EXPECT_NE(message.find(expected), std::string::npos) << message;
  }
  cnnx::ModelFileContents wrong = good;
  for (auto& t : wrong.tensors)
    if (t.name == "weights/head/kernel") {
      t.shape = {t.shape[1], t.shape[0]};
    }
  EXPECT_NE(load_error(wrong).find("layer 'head' (Dense): expected weight 'kernel' of shape (8, 3), received (3, 8)"),
            std::string::npos)
      << load_error(wrong);
}

// Replaces JSON tokens (strings, numbers, literals, brackets) of the model configuration with
// others, many times over: whatever comes out, the loader gives a model or a cnnx::Error.
TEST(ModelIo, MutatedConfigurationsGiveOnlyCnnxErrors) {
  const cnnx::ModelFileContents good = good_contents();
  const std::string text = good.metadata.at("model_config");
  std::vector<std::pair<std::size_t, std::size_t>> tokens;  // [begin, end) of each token
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    std::size_t end = i + 1;
    if (c == '"') {
      while (end < text.size() && text[end] != '"') end += text[end] == '\\' ? 2 : 1;
      ++end;
    } else if (c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z')) {
      while (end < text.size() && std::strchr("0123456789.eE+-abcdefghijklmnopqrstuvwxyz", text[end])) ++end;
    } else if (!std::strchr("[]{}", c)) {
      ++i;
      continue;
    }
    tokens.push_back({i, std::min(end, text.size())});
    i = end;
  }
  const char* replacements[] = {"null",
                                "true",
                                "0",
                                "-1",
                                "1",
                                "4096",
                                "16777216",
                                "1e30",
                                "2.5",
                                "\"x\"",
                                "\"\"",
                                "[]",
                                "{}",
                                "[1, 2]",
                                "[null, 2, 2]",
                                "\"Dense\"",
                                "\"InputLayer\"",
                                "\"Functional\"",
                                "\"Sequential\"",
                                "\"same\"",
                                "[\"shared\", 1, 0]",
                                "",
                                "[",
                                "}"};
  cnnx::Rng rng(42);
  int loaded = 0, refused = 0;
  bool other = false;
  for (int round = 0; round < 400; ++round) {
    std::string mutated = text;
    const int edits = 1 + static_cast<int>(rng.below(3));
    for (int e = 0; e < edits; ++e) {
      const auto& [begin, end] = tokens[rng.below(tokens.size())];
      if (end > mutated.size()) continue;
      mutated.replace(begin, end - begin, replacements[rng.below(std::size(replacements))]);
    }
    cnnx::ModelFileContents bad = good;
    bad.metadata["model_config"] = mutated;
    (load_error(bad, &other).empty() ? loaded : refused) += 1;
    ASSERT_FALSE(other) << mutated;
  }
  EXPECT_GT(refused, 100);
  std::cout << "mutated configurations: " << loaded << " loaded, " << refused << " refused\n";
}

}  // namespace
