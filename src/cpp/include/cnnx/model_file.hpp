// The .cnnx model file (docs/model-format.md), read and written by the core: the Python
// package's save / load_model and native applications use the same code.
//
// Two levels:
// - the container: a safetensors file whose __metadata__ holds the model's configuration, with
//   a SHA-256 over the canonical header and the data. read_model_file checks every reading rule
//   of docs/model-format.md (sizes bounded and overflow-checked before anything is allocated)
//   and throws cnnx::ValueError naming the file and the problem;
// - the model: load_model rebuilds a Model (layers, graph, weights, compile configuration,
//   optimizer state, class names) from a file, save_model writes one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnnx/export.hpp"
#include "cnnx/model.hpp"
#include "cnnx/tensor.hpp"

namespace cnnx {

// One float32 tensor of a file, row-major.
struct FileTensor {
  std::string name;  // "weights/<layer>/<weight>", "optimizer/<layer>/<weight>/<slot>"
  Shape shape;
  std::vector<float> data;
};

// A file's contents once checked: the metadata strings (without "sha256", which the writer
// computes) and the tensors in the order of their data.
struct ModelFileContents {
  std::map<std::string, std::string> metadata;
  std::vector<FileTensor> tensors;
};

// Reads and checks a container (every container rule; `name` is the file name used in
// messages): cnnx::ValueError "<name>: <problem>". The metadata strings are returned as they
// are: load_model checks the model configuration (structure, layer classes, graph references,
// cycles) before it builds anything. A file that cannot be opened or read throws
// std::system_error naming the path.
CNNX_API ModelFileContents read_model_file(const std::string& path);
CNNX_API ModelFileContents parse_model_file(const std::uint8_t* bytes, std::size_t size, const std::string& name);
// Writes a container atomically (a temporary file in the same directory, then a rename), with
// the metadata's "format" and the checksum filled in.
CNNX_API void write_model_file(const std::string& path, const ModelFileContents& contents);
// The file's bytes, as write_model_file writes them (for tests and in-memory use).
CNNX_API std::vector<std::uint8_t> serialize_model_file(const ModelFileContents& contents);

// -- models -------------------------------------------------------------------------------------
struct LoadOptions {
  bool compile = true;  // restore the loss, optimizer and optimizer state when the file has them
};

// The model a file describes, built for its input shape, with its weights; compiled when the
// file holds a compile configuration and options.compile. Throws cnnx::ValueError naming the
// file and the problem (a layer class cnnx does not have, a weight of the wrong shape, ...).
CNNX_API std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options = {});
CNNX_API std::unique_ptr<Model> load_model_from_memory(const std::uint8_t* bytes, std::size_t size,
                                                       const std::string& name = "<memory>",
                                                       const LoadOptions& options = {});
// Writes a built model: its configuration, weights and, when compiled, its compile
// configuration and optimizer state. A chain of layers each used once is written as a
// Sequential (format version 1), any other graph as a Functional (version 2).
CNNX_API void save_model(const Model& model, const std::string& path);

}  // namespace cnnx
