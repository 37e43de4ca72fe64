// The structural checks of a model file's configuration (docs/model-format.md, "Reading
// rules"), run before anything is built from it: types of every field, known layer classes,
// bounds on every size a configuration declares, and for functional graphs that every call
// reads calls that exist and that the calls are free of cycles (Kahn's algorithm), so that
// replaying them always finishes. The Python package runs the same checks through the bindings.
// Messages do not name the file; the caller adds it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "io/json_util.hpp"

namespace cnnx::io {

// What a model file's metadata says, checked.
struct CheckedMetadata {
  std::string format_version;  // "1": model_config is a Sequential's config; "2": {"class_name", "config"}
  json model_config;
  std::optional<json> compile_config;  // only when asked for and present
  std::optional<std::vector<std::string>> class_names;
  std::int64_t optimizer_iterations = 0;
};

// The metadata of a file that must hold a whole model ("contents": "model"); compile_config and
// optimizer_iterations are read only with `compile`. ValueError naming the problem.
CheckedMetadata check_model_metadata(const std::map<std::string, std::string>& metadata, bool compile);

json check_model_config(const std::string& text, const std::string& format_version);
json check_compile_config(const std::string& text);
std::vector<std::string> check_class_names(const std::string& text);
std::int64_t check_iterations(const std::string& text);

// Generic bounds on a configuration value (string and list lengths, integer ranges by key,
// shapes, the {"class_name": str, "config": {...}} form of nested objects).
void check_values(const json& value, const std::string& where, const std::string& key = "");

}  // namespace cnnx::io
