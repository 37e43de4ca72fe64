// libFuzzer target for the core's model-file reader (built with CNNX_BUILD_FUZZER=ON by
// fuzz/run.py, under AddressSanitizer and UndefinedBehaviorSanitizer).
//
// The contract under test: whatever the bytes, the reader returns or throws a cnnx::Error whose
// message names the file ("<fuzz>: ...") and stays short. Anything else -- another exception
// (std::bad_alloc included: the bounds must refuse a file before it can demand much more than
// its own size), a crash, a sanitizer report, a hang or memory beyond the limit -- is a finding.
//
// With CNNX_FUZZ_MODEL (set by fuzz/run.py once the core has load_model_from_memory) a whole
// model is loaded: container, configuration and rebuild; without it, the container alone.
//
// A mutated file almost always fails the SHA-256 check, which would hide everything behind it,
// so an input whose only fault is its checksum is read again with the checksum recomputed. Byte
// mutations rarely produce a different but well-formed header or configuration, so half of the
// mutations are structure-aware (LLVMFuzzerCustomMutator): one value somewhere in the header or
// in a JSON metadata entry (model_config, compile_config, class_names) is replaced by an edge
// case, deleted, duplicated or renamed, and the file re-serialised with a valid checksum.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cnnx/error.hpp"
#include "cnnx/model_file.hpp"
#include "io/json_text.hpp"
#include "io/sha256.hpp"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using cnnx::io::Json;
const std::string kName = "<fuzz>";

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

// One read; returns the message of the cnnx::Error it threw ("" if it read the file).
std::string read_once(const std::uint8_t* data, std::size_t size) {
  try {
#ifdef CNNX_FUZZ_MODEL
    cnnx::load_model_from_memory(data, size, kName);
#else
    cnnx::parse_model_file(data, size, kName);
#endif
    return "";
  } catch (const cnnx::Error& e) {
    const std::string message = e.what();
    if (message.rfind(kName + ": ", 0) != 0)
      finding("a cnnx::Error that does not name the file: " + message.substr(0, 500));
    if (message.size() > 20000) finding("a " + std::to_string(message.size()) + "-character message");
    return message;
  }
  // any other exception leaves this function: libFuzzer reports it (std::terminate)
}

// The header's JSON and the data of a structurally sound file, or false.
bool split(const std::uint8_t* data, std::size_t size, Json* header, std::string* tail) {
  if (size < 8) return false;
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | data[i];
  if (n > size - 8 || n > cnnx::io::kMaxJsonContainers * 16) return false;
  try {
    *header = cnnx::io::parse_json_counted(std::string(reinterpret_cast<const char*>(data) + 8, n), "header");
  } catch (const cnnx::Error&) {
    return false;
  }
  if (!header->is_object() || !header->contains("__metadata__") || !(*header)["__metadata__"].is_object()) return false;
  tail->assign(reinterpret_cast<const char*>(data) + 8 + n, size - 8 - n);
  return true;
}

// The file with this header and data and a checksum that matches them, or empty if the header
// has something the canonical form refuses.
std::vector<std::uint8_t> assemble(Json header, const std::string& tail) {
  std::string canonical, text;
  try {
    header["__metadata__"].erase("sha256");
    cnnx::io::append_canonical(canonical, header);
    cnnx::io::Sha256 digest;
    digest.update(canonical);
    digest.update(tail);
    header["__metadata__"]["sha256"] = digest.hex_final();
    cnnx::io::append_canonical(text, header);
  } catch (const cnnx::Error&) {
    return {};
  }
  text.append((8 - text.size() % 8) % 8, ' ');
  std::vector<std::uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::uint8_t>(static_cast<std::uint64_t>(text.size()) >> (8 * i));
  out.insert(out.end(), text.begin(), text.end());
  out.insert(out.end(), tail.begin(), tail.end());
  return out;
}

// -- structure-aware mutation ------------------------------------------------------------------
Json edge_value(std::mt19937_64& rng) {
  static const Json values[] = {0,
                                1,
                                2,
                                -1,
                                3,
                                255,
                                1 << 24,
                                (1 << 24) + 1,
                                2147483647,
                                2147483648ll,
                                4294967296ll,
                                9223372036854775807ll,
                                18446744073709551615ull,
                                0.0,
                                -0.5,
                                0.5,
                                1.5,
                                1e308,
                                nullptr,
                                true,
                                false,
                                "",
                                std::string(5000, 'x'),
                                "same",
                                "valid",
                                "relu",
                                "channels_first",
                                Json::array(),
                                Json::object(),
                                Json::array({1}),
                                Json::array({nullptr, 4}),
                                Json::parse("[[[[[[0]]]]]]"),
                                Json::parse(R"({"class_name": "L2", "config": {"l2": 0.01}})"),
                                Json::parse(R"({"class_name": []})")};
  static const char* names[] = {"Dense",
                                "Conv2D",
                                "Flatten",
                                "Reshape",
                                "Resizing",
                                "BatchNormalization",
                                "MaxPooling2D",
                                "Layer",
                                "InputLayer",
                                "Input",
                                "Adam",
                                "SGD",
                                "ExponentialDecay",
                                "units",
                                "filters",
                                "kernel_size",
                                "input_shape",
                                "target_shape",
                                "name",
                                "config",
                                "class_name",
                                "layers",
                                "optimizer",
                                "loss",
                                "metrics",
                                "Functional",
                                "Sequential",
                                "Add",
                                "Concatenate",
                                "inbound_nodes",
                                "input_layers",
                                "output_layers",
                                "keras_history",
                                "__keras_tensor__",
                                "batch_shape",
                                "input_layer",
                                "dense"};
  const std::size_t n_values = sizeof values / sizeof values[0], n_names = sizeof names / sizeof names[0];
  const std::size_t pick = rng() % (n_values + n_names);
  return pick < n_values ? values[pick] : Json(names[pick - n_values]);
}

void collect(Json& value, std::vector<Json*>& out) {
  out.push_back(&value);
  if (value.is_structured()) {
    for (auto& child : value) collect(child, out);
  }
}

// Changes one value inside `tree` (a container): replaced, deleted, duplicated or renamed.
void mutate_tree(Json& tree, std::mt19937_64& rng) {
  std::vector<Json*> nodes;
  collect(tree, nodes);
  std::vector<Json*> parents;
  for (Json* node : nodes) {
    if (node->is_structured() && !node->empty()) parents.push_back(node);
  }
  if (parents.empty()) {
    tree = edge_value(rng);
    return;
  }
  Json& parent = *parents[rng() % parents.size()];
  const double action = std::uniform_real_distribution<double>(0, 1)(rng);
  if (parent.is_array()) {
    const std::size_t i = rng() % parent.size();
    if (action < 0.6) {
      parent[i] = edge_value(rng);
    } else if (action < 0.8) {
      parent.erase(i);
    } else {
      parent.insert(parent.begin() + static_cast<std::ptrdiff_t>(i), Json(parent[i]));  // e.g. a layer twice
    }
    return;
  }
  auto it = parent.begin();
  std::advance(it, static_cast<std::ptrdiff_t>(rng() % parent.size()));
  const std::string key = it.key();
  if (action < 0.6) {
    parent[key] = edge_value(rng);
  } else if (action < 0.8) {
    parent.erase(key);
  } else {
    Json moved = std::move(parent[key]);
    parent.erase(key);
    const Json name = edge_value(rng);
    parent[name.is_string() ? name.get<std::string>() : key + "_"] = std::move(moved);  // a renamed key
  }
}

std::size_t structured(std::uint8_t* data, std::size_t size, std::size_t max_size, std::mt19937_64& rng) {
  Json header;
  std::string tail;
  if (!split(data, size, &header, &tail)) return 0;
  Json& meta = header["__metadata__"];
  std::vector<std::string> targets;
  for (const char* key : {"model_config", "compile_config", "class_names"}) {
    if (meta.contains(key) && meta[key].is_string()) targets.push_back(key);
  }
  const std::size_t pick = rng() % (targets.size() + 2);
  if (pick == targets.size()) {
    mutate_tree(header, rng);
    if (!header.is_object() || !header.contains("__metadata__") || !header["__metadata__"].is_object()) return 0;
  } else if (pick == targets.size() + 1) {
    if (meta.empty()) return 0;
    auto it = meta.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(rng() % meta.size()));
    static const char* texts[] = {"", "model", "weights", "1", "2", "-1", "18446744073709551616", "[]", "{}"};
    it.value() = texts[rng() % (sizeof texts / sizeof texts[0])];
  } else {
    Json config;
    try {
      config = cnnx::io::parse_json(meta[targets[pick]].get<std::string>(), "config");
    } catch (const cnnx::Error&) {
      return 0;
    }
    mutate_tree(config, rng);
    meta[targets[pick]] = config.dump();
  }
  const std::vector<std::uint8_t> out = assemble(std::move(header), tail);
  if (out.empty() || out.size() > max_size) return 0;
  std::memcpy(data, out.data(), out.size());
  return out.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string message = read_once(data, size);
  if (message.rfind(kName + ": the header and data do not match", 0) == 0) {
    Json header;
    std::string tail;
    if (split(data, size, &header, &tail)) {
      const std::vector<std::uint8_t> fixed = assemble(std::move(header), tail);
      if (!fixed.empty()) {
        const std::string again = read_once(fixed.data(), fixed.size());
        if (again.rfind(kName + ": the header and data do not match", 0) == 0)
          finding("a recomputed checksum does not match: " + again);
      }
    }
  }
  return 0;
}

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  std::mt19937_64 rng(seed);
  if (rng() % 2 == 0) {
    const std::size_t n = structured(data, size, max_size, rng);
    if (n > 0) return n;
  }
  return LLVMFuzzerMutate(data, size, max_size);
}
