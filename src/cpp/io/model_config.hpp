// Model configurations both ways. Reading: a checked model_config (config_check.hpp) becomes a
// flat core graph: nested models are inlined, a name seen again is the same layer or model used
// again (shared weights), and a functional config is rebuilt by replaying its calls once the
// tensors they read exist (Keras' algorithm), then ordered as Keras orders a functional model
// (map_graph). Layers are built as they are added, within a budget of parameter floats.
// Writing: a chain of layers each used once is a Sequential (format version 1), any other graph
// a flat Functional (version 2), as the Python package writes them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "cnnx/model.hpp"
#include "io/json_util.hpp"

namespace cnnx::io {

// The built model; at most `max_param_floats` parameter floats are created (-1: no limit).
// ValueError / TypeError naming the layer or model at fault.
std::unique_ptr<Model> model_from_config(const json& config, const std::string& format_version,
                                         std::int64_t max_param_floats);

// (model_config, format_version) of a built model.
std::pair<ojson, std::string> model_config(const Model& model);

}  // namespace cnnx::io
