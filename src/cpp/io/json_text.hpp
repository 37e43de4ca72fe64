// JSON for the model file, private to the core: parsing with the bounds of
// docs/model-format.md, the canonical form the checksum covers, and values quoted for messages.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

#include "cnnx/error.hpp"

namespace cnnx::io {

using Json = nlohmann::json;  // objects keep their keys sorted (the canonical order)

constexpr int kMaxJsonDepth = 32;                     // nesting levels (cnnx writes at most 6)
constexpr std::size_t kMaxJsonContainers = 1u << 20;  // '[' and '{' characters in a header

// A problem found in a file, without the file's name: the public entry points catch it and
// throw a cnnx::ValueError "<file name>: <problem>".
class FileProblem : public ValueError {
 public:
  using ValueError::ValueError;
};
[[noreturn]] void fail(const std::string& problem);

// Byte offset of the first byte that makes `text` invalid UTF-8 (as Python's strict decoder
// sees it: no overlong forms, no surrogates, nothing above U+10FFFF), or `size` if it is valid.
std::size_t invalid_utf8_at(const char* text, std::size_t size);
std::size_t utf8_length(const std::string& text);  // code points of valid UTF-8

// Parses `text` (already valid UTF-8) as JSON nested at most kMaxJsonDepth levels. `what`
// ("the header", "model_config") starts the FileProblem's message. Strict JSON: no comments,
// NaN or Infinity; of duplicate keys the last one counts, as in Python's json.loads.
Json parse_json(const std::string& text, const std::string& what);
// The same after counting '[' and '{' (those inside strings too, which only errs on the safe
// side) against kMaxJsonContainers: parsed, each costs ~100 bytes whatever its size in the text.
Json parse_json_counted(const std::string& text, const std::string& what);

// Appends `value` as Python's json.dumps(value, sort_keys=True, separators=(",", ":")) writes
// it (ensure_ascii: every character outside ' '..'~' as a lowercase \uXXXX escape, astral
// ones as surrogate pairs), byte for byte: the checksum is computed over this form. Only
// objects, arrays, strings, integers, booleans and null occur in a header; a float is a
// FileProblem (Python's float repr is not reproduced).
void append_canonical(std::string& out, const Json& value);
void append_json_string(std::string& out, const std::string& utf8);

// A value from a file for a message: a string in single quotes with control characters
// escaped, anything else as compact JSON; cut to about `limit` bytes ("...)" marks a cut) so
// that a hostile file cannot produce a megabyte-long message.
std::string quote(const std::string& text, std::size_t limit = 200);
std::string quote(const Json& value, std::size_t limit = 200);

}  // namespace cnnx::io
