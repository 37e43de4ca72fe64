// JSON for the model file's configurations (nlohmann-json; parsing with bounds is
// json_text.hpp's parse_json_counted): the bounds on what a configuration declares, values
// shown in messages, and writing as Python's json.dumps does, so that a file written by the
// core and one written by Python hold the same configuration text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "io/json_text.hpp"

namespace cnnx::io {

using json = nlohmann::json;           // parsed configurations (keys sorted: lookups stay cheap)
using ojson = nlohmann::ordered_json;  // written configurations (keys in Keras' order)

// Bounds on what a configuration may declare (docs/model-format.md, "Reading rules").
constexpr int kMaxDepth = 32;                               // JSON nesting
constexpr std::int64_t kMaxContainers = 1 << 20;            // '[' and '{' characters in one JSON text
constexpr std::int64_t kMaxLayers = 4096;                   // layers in model_config, nested models' included
constexpr std::int64_t kMaxNodes = 4096;                    // layer calls in model_config
constexpr std::int64_t kMaxString = 4096;                   // characters of a string in a configuration
constexpr std::int64_t kMaxList = 4096;                     // entries of a list in a configuration
constexpr std::int64_t kMaxClasses = 1 << 16;               // entries of class_names
constexpr std::int64_t kMaxSize = 1 << 24;                  // units, filters, a shape's axis, ...
constexpr std::int64_t kMaxWindow = 4096;                   // kernel_size, pool_size, strides, dilation_rate
constexpr std::int64_t kMaxSample = std::int64_t(1) << 31;  // elements of one input sample
constexpr int kMaxRank = 8;                                 // axes of a declared per-sample shape

// The value for a message, as json_text.hpp's quote writes it (a string in single quotes,
// anything else as compact JSON), cut to `limit` characters without first writing all of a
// huge value: a hostile file must not produce a megabyte-long message.
std::string clip(const json& value, std::size_t limit = 200);
std::string clip(const std::string& text, std::size_t limit = 200);

// json.dumps(value) with Python's defaults: ", " and ": " separators, non-ASCII escaped.
std::string python_dumps(const ojson& value);

// The shortest decimal that reads back as `f`, as a double: a float32 argument is written as
// 0.1, not 0.10000000149011612 (what Python writes for the float it was given).
double float_value(float f);

bool is_int(const json& v);  // a JSON integer (booleans are not)
// The integer value, or false when it does not fit int64 (a huge unsigned number).
bool int_value(const json& v, std::int64_t* out);

}  // namespace cnnx::io
