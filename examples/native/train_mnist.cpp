// Trains the article's network on MNIST from C++, with the installed cnnx alone: the model and
// training of examples/mnist_cnn.py (28x28x1 pixels scaled by 1/255, three 3x3 convolution banks
// of 32, 64 and 128 filters with ReLU, each followed by 2x2 max-pooling, a dense layer of 100,
// a softmax over 10 digits; Adam at 2e-3; batches of 64; the last 10% of the training images
// validate), then evaluates on the 10,000 test images and can save the model for the classify
// examples and Python's cnnx.models.load_model.
//
// The learning rate decays by --lr-decay per epoch as in mnist_cnn.py, but step by step (Keras'
// ExponentialDecay with decay_steps = one epoch) rather than at epoch ends, so that a single
// epoch already ends at a small rate: with the per-epoch schedule one epoch gave 98.4-98.7%
// (seeds 1-5), short of the 98.5% this example must reach every time.
//
//   train_mnist DATA_DIR [--epochs 1] [--batch-size 64] [--seed 1] [--threads N]
//                        [--learning-rate 0.002] [--lr-decay 0.25] [--save model.cnnx]
//
// DATA_DIR holds the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), gzipped (.gz) when the example was built with
// zlib, else raw (gunzip -k DATA_DIR/*.gz). Prints progress, then test_loss=... test_accuracy=...
// and the epoch times.
#include <cmath>
#include <cnnx/cnnx.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef CNNX_EXAMPLE_HAVE_ZLIB
#include <zlib.h>
#endif

namespace {

bool exists(const std::string& path) { return std::ifstream(path).good(); }

// The whole file, decompressed when it is gzipped (zlib's gzread passes raw files through).
std::vector<unsigned char> read_file(const std::string& path) {
  std::vector<unsigned char> bytes;
#ifdef CNNX_EXAMPLE_HAVE_ZLIB
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  unsigned char chunk[1 << 16];
  int got;
  while ((got = gzread(f, chunk, sizeof chunk)) > 0) bytes.insert(bytes.end(), chunk, chunk + got);
  const bool failed = got < 0;
  gzclose(f);
  if (failed) throw std::runtime_error("cannot decompress " + path);
#else
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
#endif
  return bytes;
}

// DATA_DIR/name, or DATA_DIR/name.gz when only that exists (and zlib can read it).
std::string find_idx(const std::string& dir, const std::string& name) {
  const std::string raw = dir + "/" + name, gz = raw + ".gz";
  if (exists(raw)) return raw;
#ifdef CNNX_EXAMPLE_HAVE_ZLIB
  if (exists(gz)) return gz;
  throw std::runtime_error("expected " + raw + " or " + gz);
#else
  if (exists(gz)) throw std::runtime_error("this build reads raw IDX only: gunzip -k " + gz);
  throw std::runtime_error("expected " + raw);
#endif
}

std::uint32_t big_endian(const unsigned char* p) {
  return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

// An IDX file of unsigned bytes with `rank` dimensions: its dims and its data, checked against
// the file's size.
std::vector<unsigned char> read_idx(const std::string& path, int rank, std::vector<std::int64_t>& dims) {
  std::vector<unsigned char> bytes = read_file(path);
  const std::size_t header = 4 + 4 * std::size_t(rank);
  if (bytes.size() < header || big_endian(bytes.data()) != 0x0800u + std::uint32_t(rank))
    throw std::runtime_error(path + ": expected an IDX file of unsigned bytes with " + std::to_string(rank) +
                             " dimensions");
  std::uint64_t size = 1;
  dims.clear();
  for (int i = 0; i < rank; ++i) {
    dims.push_back(big_endian(bytes.data() + 4 + 4 * i));
    size *= std::uint64_t(dims.back());
  }
  if (bytes.size() - header != size)
    throw std::runtime_error(path + ": expected " + std::to_string(size) + " bytes of data, received " +
                             std::to_string(bytes.size() - header));
  return std::vector<unsigned char>(bytes.begin() + std::ptrdiff_t(header), bytes.end());
}

struct Split {
  std::int64_t count = 0;
  std::vector<float> x, y;  // x [count, 28, 28, 1] scaled to [0, 1]; y one-hot [count, 10]
  cnnx::LabeledData data() const {
    cnnx::LabeledData d;
    d.x = x.data();
    d.x_shape = {count, 28, 28, 1};
    d.y = y.data();
    d.y_shape = {count, 10};
    return d;
  }
};

Split load_split(const std::string& dir, const std::string& prefix) {
  std::vector<std::int64_t> image_dims, label_dims;
  const auto images = read_idx(find_idx(dir, prefix + "-images-idx3-ubyte"), 3, image_dims);
  const auto labels = read_idx(find_idx(dir, prefix + "-labels-idx1-ubyte"), 1, label_dims);
  if (image_dims[1] != 28 || image_dims[2] != 28 || image_dims[0] != label_dims[0])
    throw std::runtime_error(prefix + ": expected N 28x28 images and N labels");
  Split s;
  s.count = image_dims[0];
  s.x.resize(images.size());
  for (std::size_t i = 0; i < images.size(); ++i) s.x[i] = float(images[i]) / 255.0f;  // as x / 255 in NumPy
  s.y.assign(std::size_t(s.count) * 10, 0.0f);
  for (std::int64_t i = 0; i < s.count; ++i) {
    if (labels[std::size_t(i)] > 9) throw std::runtime_error(prefix + ": a label above 9");
    s.y[std::size_t(i) * 10 + labels[std::size_t(i)]] = 1.0f;
  }
  return s;
}

std::unique_ptr<cnnx::Sequential> make_model() {
  auto model = std::make_unique<cnnx::Sequential>();
  int bank = 0;
  for (std::int64_t filters : {32, 64, 128}) {
    cnnx::Conv2DConfig conv;
    conv.filters = filters;
    conv.kernel_h = conv.kernel_w = 3;
    conv.padding = "same";
    conv.activation = "relu";
    ++bank;
    model->add(cnnx::make_conv2d("conv2d_" + std::to_string(bank), conv));
    model->add(cnnx::make_max_pooling2d("max_pooling2d_" + std::to_string(bank), {}));
  }
  model->add(cnnx::make_flatten("flatten"));
  cnnx::DenseConfig hidden;
  hidden.units = 100;
  hidden.activation = "relu";
  model->add(cnnx::make_dense("dense", hidden));
  cnnx::DenseConfig out;
  out.units = 10;
  out.activation = "softmax";
  model->add(cnnx::make_dense("dense_1", out));
  model->build({28, 28, 1});
  return model;
}

struct Args {
  std::string data_dir;
  std::int64_t epochs = 1, batch_size = 64, threads = 0;
  std::uint64_t seed = 1;
  double learning_rate = 2e-3, lr_decay = 0.25;
  std::string save;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(arg + ": expected a value");
      return argv[++i];
    };
    if (arg == "--epochs")
      a.epochs = std::stoll(value());
    else if (arg == "--batch-size")
      a.batch_size = std::stoll(value());
    else if (arg == "--seed")
      a.seed = std::stoull(value());
    else if (arg == "--threads")
      a.threads = std::stoll(value());
    else if (arg == "--learning-rate")
      a.learning_rate = std::stod(value());
    else if (arg == "--lr-decay")
      a.lr_decay = std::stod(value());
    else if (arg == "--save")
      a.save = value();
    else if (!arg.empty() && arg[0] != '-' && a.data_dir.empty())
      a.data_dir = arg;
    else
      throw std::runtime_error("unknown argument " + arg);
  }
  if (a.data_dir.empty()) throw std::runtime_error("expected DATA_DIR, the directory of the MNIST IDX files");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse(argc, argv);
    if (args.threads > 0) cnnx::set_num_threads(args.threads);
    cnnx::set_random_seed(args.seed);
    const Split train = load_split(args.data_dir, "train"), test = load_split(args.data_dir, "t10k");
    std::cout << "MNIST: " << train.count << " training and " << test.count << " test images\n";

    auto model = make_model();
    auto adam = std::make_shared<cnnx::Adam>(args.learning_rate);
    model->compile(cnnx::make_crossentropy(false, false), adam);
    std::int64_t params = 0;
    for (const auto& layer : model->layers()) params += layer->count_params();
    std::cout << "model: " << model->layers().size() << " layers, " << params << " parameters; threads "
              << cnnx::get_num_threads() << "\n";

    cnnx::FitOptions options;
    options.epochs = args.epochs;
    options.batch_size = args.batch_size;
    options.validation_split = 0.1;
    std::vector<double> epoch_seconds;
    options.on_batch_end = [&](cnnx::FitProgress& p) {
      const double epochs_done = static_cast<double>(p.epoch) + static_cast<double>(p.step) / p.steps;
      adam->learning_rate = args.learning_rate * std::pow(args.lr_decay, epochs_done);
      if (p.step % 100 == 0 || p.step == p.steps)
        std::printf("  epoch %lld/%lld  step %lld/%lld  loss %.4f  accuracy %.4f  %.1f s\n",
                    static_cast<long long>(p.epoch + 1), static_cast<long long>(p.epochs),
                    static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.accuracy, p.seconds);
      std::fflush(stdout);
    };
    options.on_epoch_end = [&](cnnx::FitProgress& p) {
      epoch_seconds.push_back(p.seconds);
      std::printf("epoch %lld: loss %.4f  accuracy %.4f  val_loss %.4f  val_accuracy %.4f  %.1f s (with validation)\n",
                  static_cast<long long>(p.epoch + 1), p.loss, p.accuracy, p.val_loss, p.val_accuracy, p.seconds);
    };
    cnnx::fit(*model, train.data(), options);

    const cnnx::EvaluateResult result = cnnx::evaluate(*model, test.data(), 256);
    double total = 0.0;
    for (double s : epoch_seconds) total += s;
    std::printf("epoch_seconds=%.2f (mean of %zu)\n", epoch_seconds.empty() ? 0.0 : total / epoch_seconds.size(),
                epoch_seconds.size());
    std::printf("test_loss=%.4f test_accuracy=%.4f\n", result.loss, result.accuracy);
    if (!args.save.empty()) {
      model->set_class_names({"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"});
      cnnx::save_model(*model, args.save);
      std::cout << "saved " << args.save << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "train_mnist: " << e.what() << "\n";
    return 1;
  }
}
