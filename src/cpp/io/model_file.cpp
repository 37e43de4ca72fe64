// model_file.hpp's container functions: the container's reading and writing with the file's
// name put in front of every problem. (The model-level functions, load_model and save_model,
// are in their own files.)
#include "cnnx/model_file.hpp"

#include <algorithm>
#include <cstring>

#include "io/atomic_file.hpp"
#include "io/json_text.hpp"
#include "io/model_file_io.hpp"

namespace cnnx {
namespace io {
namespace {

class MemorySource : public ByteSource {
 public:
  MemorySource(const std::uint8_t* bytes, std::size_t size) : bytes_(bytes), size_(size) {}
  std::uint64_t size() const override { return size_; }
  std::size_t read(std::uint64_t offset, void* dst, std::size_t n) override {
    if (offset >= size_) return 0;
    n = std::min<std::size_t>(n, static_cast<std::size_t>(size_ - offset));
    if (n > 0) std::memcpy(dst, bytes_ + offset, n);
    return n;
  }

 private:
  const std::uint8_t* bytes_;
  std::size_t size_;
};

ModelFileContents named(ByteSource& source, const std::string& name) {
  try {
    return read_container(source);
  } catch (const FileProblem& e) {
    throw ValueError(name + ": " + e.what());
  }
}

std::vector<TensorView> views(const ModelFileContents& contents, const std::string& where) {
  std::vector<TensorView> out;
  out.reserve(contents.tensors.size());
  for (const FileTensor& t : contents.tensors) {
    std::int64_t count = 0;
    try {
      count = shape_size(t.shape);
    } catch (const SizeError&) {
      count = -1;
    }
    if (count < 0 || static_cast<std::uint64_t>(count) != t.data.size()) {
      throw ValueError(where + ": tensor " + quote(t.name) + " has shape " + shape_str(t.shape) + " but " +
                       std::to_string(t.data.size()) + " values");
    }
    out.push_back({&t.name, &t.shape, t.data.data()});
  }
  return out;
}

}  // namespace

ModelFileContents read_container_file(const std::string& path, const std::string& name) {
  remove_stale_temp_files(directory_of(path));
  FileSource source(path);
  return named(source, name);
}

ModelFileContents parse_container(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  MemorySource source(bytes, size);
  return named(source, name);
}

void write_container_file(const std::string& path, const std::map<std::string, std::string>& metadata,
                          const std::vector<TensorView>& tensors) {
  // Checked before the temporary file exists: a bad tensor or metadata entry leaves no trace.
  const std::string head = container_head(metadata, tensors, path);
  write_file_atomically(path, [&](const ByteSink& sink) {
    sink(head.data(), head.size());
    write_container_data(tensors, sink);
  });
}

}  // namespace io

ModelFileContents read_model_file(const std::string& path) { return io::read_container_file(path, path); }

ModelFileContents parse_model_file(const std::uint8_t* bytes, std::size_t size, const std::string& name) {
  return io::parse_container(bytes, size, name);
}

void write_model_file(const std::string& path, const ModelFileContents& contents) {
  io::write_container_file(path, contents.metadata, io::views(contents, path));
}

std::vector<std::uint8_t> serialize_model_file(const ModelFileContents& contents) {
  const auto tensors = io::views(contents, "serialize_model_file");
  const std::string head = io::container_head(contents.metadata, tensors, "serialize_model_file");
  std::vector<std::uint8_t> bytes(head.begin(), head.end());
  io::write_container_data(tensors, [&](const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    bytes.insert(bytes.end(), p, p + size);
  });
  return bytes;
}

}  // namespace cnnx
