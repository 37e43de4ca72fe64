// The safetensors container of a model file (docs/model-format.md, "Layout" and "Reading
// rules"), private to the core: reading from any byte source with every bound checked before
// anything is allocated, and the header and data a writer produces. The metadata's contents
// (model_config, compile_config, ...) are not interpreted here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "cnnx/model_file.hpp"

namespace cnnx::io {

constexpr std::uint64_t kMaxHeader = 16u << 20;    // bytes of JSON header
constexpr std::size_t kMaxTensors = 1u << 17;      // tensors in one file
constexpr std::size_t kMaxRank = 8;                // axes of one tensor
constexpr std::int64_t kMaxDim = (1ll << 31) - 1;  // one axis of a tensor
constexpr std::size_t kMaxName = 4096;             // characters of a tensor name

// Where a file's bytes come from: a file on disk (read piecewise, so only the header and the
// checked tensors are ever in memory) or a buffer.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual std::uint64_t size() const = 0;
  // Copies up to n bytes from `offset`; returns how many there were.
  virtual std::size_t read(std::uint64_t offset, void* dst, std::size_t n) = 0;
};

// Checks and reads a container: metadata (with "format" and "format_version", without
// "sha256") and tensors in the order of their data. A bad file is a FileProblem
// (json_text.hpp) without the file's name; I/O errors are std::system_error.
ModelFileContents read_container(ByteSource& source);

// A tensor to write: float32, row-major, `data` holding shape_size(shape) values.
struct TensorView {
  const std::string* name;
  const Shape* shape;
  const float* data;
};
// Receives the file's bytes in order.
using ByteSink = std::function<void(const void* data, std::size_t size)>;
// The start of a container's bytes: the 8-byte header length and the padded header, for the
// metadata as given with "format" set and "format_version" "1" unless it says "2", with the
// checksum over the canonical header and the tensors' data. A tensor or metadata entry the
// reader would refuse (duplicate or reserved name, a shape of rank > 8, more than 131072
// tensors, a header beyond 16 MiB, a string that is not UTF-8) is a cnnx::ValueError
// "<where>: <problem>".
std::string container_head(const std::map<std::string, std::string>& metadata, const std::vector<TensorView>& tensors,
                           const std::string& where);
// The rest: the tensors' data, little-endian, in order.
void write_container_data(const std::vector<TensorView>& tensors, const ByteSink& sink);

}  // namespace cnnx::io
