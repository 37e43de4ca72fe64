// The compile configuration both ways: {"optimizer": {"class_name", "config"}, "loss": {...},
// "metrics": [...]} (the classes and keys the Python package writes) to core objects, and back.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cnnx/model.hpp"
#include "io/json_util.hpp"

namespace cnnx::io {

struct CompileFromConfig {
  std::shared_ptr<Loss> loss;
  std::shared_ptr<Optimizer> optimizer;
  std::vector<std::string> metrics;
};

// ValueError / TypeError "compile_config: ..." for an unknown class or a wrong argument; a
// learning-rate schedule is refused (the core has none: load with compile=false).
CompileFromConfig compile_from_config(const json& config);
// compile() plus the metrics as the Python package configures them (Keras' choice of binary or
// argmax accuracy from the loss and the output width).
void compile_model(Model& model, const CompileFromConfig& compiled);
ojson compile_config(const Model& model);

// (layer name, weight name) of the weights the optimizer updates, in its order: optimizer slots
// are saved under these names.
std::vector<std::pair<std::string, std::string>> trainable_param_names(const Model& model);

}  // namespace cnnx::io
