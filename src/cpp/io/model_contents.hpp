// The model side of the model file, between the container (ModelFileContents) and a Model.
// load_model / save_model (model_file.hpp, model_io.cpp) add the container; the Python bindings
// call these too. Messages do not name the file: the caller adds it.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cnnx/model_file.hpp"

namespace cnnx::io {

// The model a checked container holds: configuration checked, then built within the parameter
// floats the file holds, weights assigned by name (shapes checked), compiled with its optimizer
// state when options.compile and the file has a compile configuration.
std::unique_ptr<Model> model_from_contents(const ModelFileContents& contents, const LoadOptions& options);

// What save_model writes for a built model: metadata (contents, format_version, model_config,
// class_names, compile_config, optimizer_iterations) and tensors (weights, then optimizer slots).
ModelFileContents model_contents(const Model& model);

// The checks of a model file's metadata (config_check.hpp) alone, before anything is built
// (python/cnnx/saving.py runs them, then builds its own layers). Without nlohmann-json in the
// signature, so that callers need not see the JSON library.
void check_metadata(const std::map<std::string, std::string>& metadata, bool compile);
// The layer classes a configuration may name, sorted (layer_config.hpp).
std::vector<std::string> layer_classes();

// Rethrows the cnnx::Error being handled as "<name>: <what>" (the container's form), keeping
// TypeError a TypeError and any other problem a ValueError.
[[noreturn]] void rethrow_for_file(const std::string& name);

}  // namespace cnnx::io
