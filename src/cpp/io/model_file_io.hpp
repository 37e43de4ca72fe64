// The container entry points of model_file.hpp with the name used in messages given apart
// from the path, and a writer taking views of the tensors (no copy): for the Python bindings,
// which put the user's spelling of the path in front of the message themselves.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "cnnx/model_file.hpp"
#include "io/container.hpp"

namespace cnnx::io {

// Reads `path`; problems are cnnx::ValueError "<name>: <problem>", I/O errors std::system_error.
// Also removes stale temporary files in the file's directory (atomic_file.hpp).
ModelFileContents read_container_file(const std::string& path, const std::string& name);
ModelFileContents parse_container(const std::uint8_t* bytes, std::size_t size, const std::string& name);
void write_container_file(const std::string& path, const std::map<std::string, std::string>& metadata,
                          const std::vector<TensorView>& tensors);

}  // namespace cnnx::io
