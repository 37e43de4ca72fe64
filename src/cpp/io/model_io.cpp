// cnnx::load_model / load_model_from_memory / save_model: the container (read_model_file,
// write_model_file) around the model side (model_contents.hpp).
#include "cnnx/error.hpp"
#include "cnnx/model_file.hpp"
#include "io/model_contents.hpp"

namespace cnnx {

std::unique_ptr<Model> load_model(const std::string& path, const LoadOptions& options) {
  const ModelFileContents contents = read_model_file(path);
  try {
    return io::model_from_contents(contents, options);
  } catch (const Error&) {
    io::rethrow_for_file(path);
  }
}

std::unique_ptr<Model> load_model_from_memory(const std::uint8_t* bytes, std::size_t size, const std::string& name,
                                              const LoadOptions& options) {
  const ModelFileContents contents = parse_model_file(bytes, size, name);
  try {
    return io::model_from_contents(contents, options);
  } catch (const Error&) {
    io::rethrow_for_file(name);
  }
}

void save_model(const Model& model, const std::string& path) { write_model_file(path, io::model_contents(model)); }

}  // namespace cnnx
