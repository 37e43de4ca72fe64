// classify: runs a .cnnx model (saved by Python's model.save, e.g. examples/mnist_cnn.py --save)
// on images, through the C++ API. classify.c does the same through the C API.
//
//   classify MODEL [options] INPUT...
//
// INPUT is a binary PGM (P5, grayscale) or PPM (P6, RGB) image with 8-bit samples, or an IDX
// file of uint8 images ([n, h, w] or [n, h, w, c], as MNIST's t10k-images-idx3-ubyte). IDX files
// are read raw: gunzip MNIST's .gz files first (gunzip -k t10k-images-idx3-ubyte.gz). Each image
// must have the model's input shape (no resizing).
//
// Options:
//   --top K        print the K most probable classes per image (default 3)
//   --divide D     divide each pixel by D before inference (examples/mnist_cnn.py scales its
//                  input by 1/255 outside the model: use --divide 255); without it, pixels go
//                  in as 0..255 and the model's own layers (e.g. Rescaling(1/255)) scale them
//   --labels FILE  an IDX file of uint8 labels: prints the accuracy on an IDX input
//   --csv FILE     writes every image's probabilities as CSV (image,predicted,<classes...>),
//                  with 9 significant digits (a float's exact value)
//   --show N       for an IDX input, print the top classes of its first N images (default 5)
#include <algorithm>
#include <cctype>
#include <chrono>
#include <cnnx/cnnx.hpp>
#include <cnnx/model_file.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// uint8 images: count x [height, width, channels].
struct Images {
  std::int64_t count = 0, height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> pixels;
  bool idx = false;  // from an IDX file (summarised) rather than one image
};

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Binary PGM / PPM: "P5" or "P6", width, height, maxval (<= 255), separated by whitespace and
// '#' comments, then one whitespace byte and the samples.
Images read_pnm(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  std::size_t at = 2;
  auto number = [&]() -> std::int64_t {
    while (at < bytes.size() && (std::isspace(bytes[at]) || bytes[at] == '#')) {
      if (bytes[at] == '#')
        while (at < bytes.size() && bytes[at] != '\n') ++at;
      else
        ++at;
    }
    std::int64_t v = 0;
    std::size_t digits = 0;
    for (; at < bytes.size() && std::isdigit(bytes[at]) && digits < 9; ++at, ++digits) v = v * 10 + (bytes[at] - '0');
    if (digits == 0) throw std::runtime_error("'" + path + "': a PGM/PPM header with a missing or too long number");
    return v;
  };
  Images im;
  im.count = 1;
  im.channels = bytes[1] == '5' ? 1 : 3;
  im.width = number();
  im.height = number();
  const std::int64_t maxval = number();
  if (maxval < 1 || maxval > 255)
    throw std::runtime_error("'" + path + "': expected 8-bit samples (maxval 1..255), received maxval " +
                             std::to_string(maxval));
  ++at;  // the single whitespace byte after maxval
  const std::int64_t size = im.width * im.height * im.channels;
  if (at > bytes.size() || std::int64_t(bytes.size() - at) < size)
    throw std::runtime_error("'" + path + "': truncated: expected " + std::to_string(size) + " bytes of pixels");
  im.pixels.assign(bytes.begin() + at, bytes.begin() + at + size);
  return im;
}

// IDX: 0, 0, type 0x08 (uint8), rank; then rank big-endian uint32 dims; then the data.
std::vector<std::int64_t> idx_dims(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  if (bytes.size() < 4 || bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08)
    throw std::runtime_error("'" + path + "': not a PGM/PPM image nor a uint8 IDX file (gunzip .gz files first)");
  const std::size_t rank = bytes[3];
  if (rank < 1 || rank > 4 || bytes.size() < 4 + 4 * rank)
    throw std::runtime_error("'" + path + "': an IDX header of rank " + std::to_string(rank) + " (truncated?)");
  std::vector<std::int64_t> dims(rank);
  const std::int64_t data = std::int64_t(bytes.size() - 4 - 4 * rank);
  std::int64_t total = 1;  // stays <= data, or -1: the product of four dims could overflow
  for (std::size_t i = 0; i < rank; ++i) {
    const std::uint8_t* d = &bytes[4 + 4 * i];
    dims[i] = (std::int64_t(d[0]) << 24) | (d[1] << 16) | (d[2] << 8) | d[3];
    if (total >= 0) total = dims[i] != 0 && total > data / dims[i] ? -1 : total * dims[i];
  }
  if (total != data)
    throw std::runtime_error("'" + path + "': IDX data of " + std::to_string(data) +
                             " bytes does not match its header's dims");
  return dims;
}

Images read_images(const std::string& path) {
  const auto bytes = read_file(path);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) return read_pnm(path, bytes);
  const auto dims = idx_dims(path, bytes);
  if (dims.size() != 3 && dims.size() != 4)
    throw std::runtime_error("'" + path + "': expected IDX images [n, h, w] or [n, h, w, c], received rank " +
                             std::to_string(dims.size()));
  Images im;
  im.idx = true;
  im.count = dims[0];
  im.height = dims[1];
  im.width = dims[2];
  im.channels = dims.size() == 4 ? dims[3] : 1;
  im.pixels.assign(bytes.begin() + 4 + 4 * std::ptrdiff_t(dims.size()), bytes.end());
  return im;
}

std::vector<std::uint8_t> read_labels(const std::string& path) {
  const auto bytes = read_file(path);
  const auto dims = idx_dims(path, bytes);
  if (dims.size() != 1) throw std::runtime_error("'" + path + "': expected IDX labels of rank 1");
  return std::vector<std::uint8_t>(bytes.begin() + 8, bytes.end());
}

struct Options {
  std::string model, csv, labels;
  std::vector<std::string> inputs;
  int top = 3, show = 5;
  float divide = 0.0f;  // 0: pixels go in unchanged
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("option " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--top")
      o.top = std::max(1, std::atoi(value().c_str()));
    else if (a == "--show")
      o.show = std::max(0, std::atoi(value().c_str()));
    else if (a == "--divide")
      o.divide = std::strtof(value().c_str(), nullptr);
    else if (a == "--csv")
      o.csv = value();
    else if (a == "--labels")
      o.labels = value();
    else if (o.model.empty())
      o.model = a;
    else
      o.inputs.push_back(a);
  }
  if (o.model.empty() || o.inputs.empty())
    throw std::runtime_error("usage: classify MODEL [--top K] [--divide D] [--labels FILE] [--csv FILE] INPUT...");
  if (o.divide < 0 || o.divide != o.divide) throw std::runtime_error("--divide expects a positive number");
  return o;
}

// "7 (0.99871), 3 (0.00102)": the k most probable classes of one row.
std::string top_classes(const float* p, std::int64_t classes, int k, const std::vector<std::string>& names) {
  std::vector<std::int64_t> order(classes);
  std::iota(order.begin(), order.end(), 0);
  k = int(std::min<std::int64_t>(k, classes));
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](std::int64_t a, std::int64_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
  std::string s;
  char prob[32];
  for (int i = 0; i < k; ++i) {
    std::snprintf(prob, sizeof prob, " (%.5f)", p[order[i]]);
    s += (i ? ", " : "") + names[order[i]] + prob;
  }
  return s;
}

std::int64_t argmax(const float* p, std::int64_t n) { return std::max_element(p, p + n) - p; }

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options opt = parse(argc, argv);
    const auto model = cnnx::load_model(opt.model, cnnx::LoadOptions{/*compile=*/false});
    const cnnx::Shape& in_shape = model->input_shape();
    const std::int64_t classes = model->output_size();
    std::vector<std::string> names = model->class_names();
    for (std::int64_t c = std::int64_t(names.size()); c < classes; ++c) names.push_back(std::to_string(c));
    std::printf("model %s (cnnx %s): input %s, %lld classes\n", opt.model.c_str(), CNNX_VERSION,
                cnnx::shape_str(in_shape).c_str(), static_cast<long long>(classes));

    std::FILE* csv = nullptr;
    if (!opt.csv.empty()) {
      csv = std::fopen(opt.csv.c_str(), "w");
      if (!csv) throw std::runtime_error("cannot write '" + opt.csv + "'");
      std::fprintf(csv, "image,predicted");
      for (const auto& n : names) std::fprintf(csv, ",%s", n.c_str());
      std::fprintf(csv, "\n");
    }
    auto context = model->make_inference_context();
    std::int64_t image_index = 0;
    for (const auto& path : opt.inputs) {
      const Images im = read_images(path);
      // The batch's shape as the file gives it: predict checks it against the model's and
      // names both on a mismatch.
      const cnnx::Shape shape = {im.count, im.height, im.width, im.channels};
      std::vector<float> x(im.pixels.size());
      for (std::size_t i = 0; i < x.size(); ++i)
        x[i] = opt.divide > 0 ? float(im.pixels[i]) / opt.divide : float(im.pixels[i]);
      std::vector<float> probs(std::size_t(im.count * classes));
      const auto start = std::chrono::steady_clock::now();
      model->predict(*context, x.data(), shape, probs.data(), std::int64_t(probs.size()));
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

      if (!im.idx) {
        std::printf("%s: %s\n", path.c_str(), top_classes(probs.data(), classes, opt.top, names).c_str());
      } else {
        std::printf("%s: %lld images of %lldx%lldx%lld, %.3f s (%.1f images/s)\n", path.c_str(),
                    static_cast<long long>(im.count), static_cast<long long>(im.height),
                    static_cast<long long>(im.width), static_cast<long long>(im.channels), seconds,
                    double(im.count) / std::max(seconds, 1e-9));
        std::vector<std::int64_t> counts(classes, 0);
        for (std::int64_t i = 0; i < im.count; ++i) ++counts[argmax(&probs[i * classes], classes)];
        std::printf("  predicted:");
        for (std::int64_t c = 0; c < classes; ++c)
          std::printf(" %s: %lld", names[c].c_str(), static_cast<long long>(counts[c]));
        std::printf("\n");
        for (std::int64_t i = 0; i < std::min<std::int64_t>(opt.show, im.count); ++i)
          std::printf("  [%lld] %s\n", static_cast<long long>(i),
                      top_classes(&probs[i * classes], classes, opt.top, names).c_str());
        if (!opt.labels.empty()) {
          const auto labels = read_labels(opt.labels);
          if (std::int64_t(labels.size()) != im.count)
            throw std::runtime_error("'" + opt.labels + "' holds " + std::to_string(labels.size()) +
                                     " labels, expected " + std::to_string(im.count));
          std::int64_t correct = 0;
          for (std::int64_t i = 0; i < im.count; ++i) correct += argmax(&probs[i * classes], classes) == labels[i];
          std::printf("  accuracy: %.2f%% (%lld / %lld)\n", 100.0 * double(correct) / double(im.count),
                      static_cast<long long>(correct), static_cast<long long>(im.count));
        }
      }
      if (csv)
        for (std::int64_t i = 0; i < im.count; ++i, ++image_index) {
          const float* p = &probs[i * classes];
          std::fprintf(csv, "%lld,%s", static_cast<long long>(image_index), names[argmax(p, classes)].c_str());
          for (std::int64_t c = 0; c < classes; ++c) std::fprintf(csv, ",%.9g", p[c]);
          std::fprintf(csv, "\n");
        }
    }
    if (csv && std::fclose(csv) != 0) throw std::runtime_error("cannot write '" + opt.csv + "'");
    return 0;
  } catch (const std::exception& e) {  // cnnx::Error (a bad model file, a wrong shape) and the above
    std::fprintf(stderr, "classify: %s\n", e.what());
    return 1;
  }
}
