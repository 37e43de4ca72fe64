#include "io/config_check.hpp"

#include <algorithm>
#include <set>
#include <unordered_map>
#include <utility>

#include "cnnx/error.hpp"
#include "io/layer_config.hpp"

namespace cnnx::io {
namespace {

const std::set<std::string> kShapeKeys = {"input_shape", "target_shape", "noise_shape", "batch_shape", "shape"};
const std::set<std::string> kWindowKeys = {"kernel_size", "pool_size", "strides", "dilation_rate"};
const std::set<std::string> kSizeKeys = {"filters",          "units",       "height",       "width",
                                         "depth_multiplier", "input_shape", "target_shape", "noise_shape",
                                         "batch_shape",      "shape"};

std::string str(std::int64_t v) { return std::to_string(v); }

// Layers and layer calls declared so far across a model_config and its nested models.
struct Tally {
  std::int64_t layers = 0, nodes = 0;
  void add(std::int64_t more_layers, std::int64_t more_nodes, const std::string& where) {
    layers += more_layers;
    nodes += more_nodes;
    if (layers > kMaxLayers)
      throw ValueError(where + ": " + str(layers) + " layers; expected at most " + str(kMaxLayers) +
                       " (nested models included)");
    if (nodes > kMaxNodes)
      throw ValueError(where + ": " + str(nodes) + " layer calls; expected at most " + str(kMaxNodes) +
                       " (nested models included)");
  }
};

bool is_model_class(const json& cls) { return cls.is_string() && (cls == "Sequential" || cls == "Functional"); }

// A key's value, or `fallback` when the key is absent (Python's dict.get).
const json& get(const json& object, const char* key, const json& fallback) {
  auto it = object.find(key);
  return it == object.end() ? fallback : *it;
}
const json kNull = nullptr;
const json kTrue = true;
const json kEmptyList = json::array();
const json kEmptyObject = json::object();

// Saturating product of max(|d|, 1) over the integers of a list: a 0 must not hide huge others.
std::uint64_t dims_product(const json& list) {
  std::uint64_t p = 1;
  for (const auto& d : list) {
    if (!is_int(d)) continue;
    std::uint64_t a;
    if (d.is_number_unsigned()) {
      a = d.get<std::uint64_t>();
    } else {
      const std::int64_t s = d.get<std::int64_t>();
      a = s < 0 ? 0 - static_cast<std::uint64_t>(s) : static_cast<std::uint64_t>(s);
    }
    a = std::max<std::uint64_t>(a, 1);
    if (__builtin_mul_overflow(p, a, &p)) return UINT64_MAX;
  }
  return p;
}

// [null, d1, ...] with 1 to kMaxRank dimensions in [1, kMaxSize] and at most kMaxSample elements.
bool valid_batch_shape(const json& shape) {
  if (!shape.is_array() || shape.size() < 2 || shape.size() > static_cast<std::size_t>(kMaxRank) + 1) return false;
  if (!shape[0].is_null()) return false;
  for (std::size_t i = 1; i < shape.size(); ++i) {
    std::int64_t d;
    if (!int_value(shape[i], &d) || d <= 0 || d > kMaxSize) return false;
  }
  return true;
}
std::uint64_t sample_elements(const json& shape) {
  std::uint64_t p = 1;
  for (std::size_t i = 1; i < shape.size(); ++i)
    if (__builtin_mul_overflow(p, shape[i].get<std::uint64_t>(), &p)) return UINT64_MAX;
  return p;
}

const std::string& known_list() {
  static const std::string text = [] {
    std::string s = "[";
    for (const auto& name : layer_class_names()) s += (s.size() > 1 ? ", '" : "'") + name + "'";
    return s + "]";
  }();
  return text;
}

bool known_layer(const json& cls) {
  if (!cls.is_string()) return false;
  const auto& names = layer_class_names();
  return std::binary_search(names.begin(), names.end(), cls.get<std::string>());
}

void check_model(const std::string& class_name, const json& config, const std::string& where, Tally& tally);

void check_header(const json& config, const std::string& where) {
  if (!config.is_object()) throw ValueError(where + ": expected a JSON object, received " + clip(config));
  const json& name = get(config, "name", kNull);
  if (!name.is_null() && !name.is_string())
    throw ValueError(where + ": expected 'name' to be a string, received " + clip(name));
  check_values(name, where, "name");
  const json& trainable = get(config, "trainable", kTrue);
  if (!trainable.is_boolean())
    throw ValueError(where + ": expected 'trainable' to be true or false, received " + clip(trainable));
}

void check_sequential(const json& config, const std::string& where, Tally& tally, bool nested) {
  check_header(config, where);
  const json& shape = get(config, "input_shape", kNull);
  if (!shape.is_null()) {
    if (!valid_batch_shape(shape))
      throw ValueError(where + ": expected 'input_shape' as [null, d1, ...] with 1 to " + str(kMaxRank) +
                       " dimensions in [1, " + str(kMaxSize) + "], received " + clip(shape));
    if (sample_elements(shape) > static_cast<std::uint64_t>(kMaxSample))
      throw ValueError(where + ": input_shape " + clip(shape) + " has more than " + str(kMaxSample) +
                       " elements per sample");
  }
  const json& layers = get(config, "layers", kEmptyList);
  if (!layers.is_array()) throw ValueError(where + ": expected 'layers' to be a list, received " + clip(layers));
  tally.add(static_cast<std::int64_t>(layers.size()), 0, where);
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const json& entry = layers[i];
    const std::string at = where + ": layer " + std::to_string(i);
    if (!entry.is_object())
      throw ValueError(at + ": expected an object with 'class_name' and 'config', received " + clip(entry));
    const json& cls = get(entry, "class_name", kNull);
    if (nested && is_model_class(cls)) {
      check_model(cls.get<std::string>(), get(entry, "config", kNull), at + " (" + cls.get<std::string>() + ")", tally);
      continue;
    }
    if (!known_layer(cls))
      throw ValueError(at + ": unknown layer class " + clip(cls) + "; expected one of " + known_list());
    const std::string name = cls.get<std::string>();
    const json& layer_config = get(entry, "config", kEmptyObject);
    if (!layer_config.is_object())
      throw ValueError(at + " (" + name + "): expected 'config' to be an object, received " + clip(layer_config));
    check_values(layer_config, at + " (" + name + ")");
  }
}

void check_input_layer(const json& config, const std::string& where) {
  const json& shape = get(config, "batch_shape", kNull);
  if (!valid_batch_shape(shape))
    throw ValueError(where + " (InputLayer): expected 'batch_shape' as [null, d1, ...] with 1 to " + str(kMaxRank) +
                     " dimensions in [1, " + str(kMaxSize) + "], received " + clip(shape));
  if (sample_elements(shape) > static_cast<std::uint64_t>(kMaxSample))
    throw ValueError(where + " (InputLayer): batch_shape " + clip(shape) + " has more than " + str(kMaxSample) +
                     " elements per sample");
  check_values(config, where + " (InputLayer)");
}

using Call = std::pair<std::string, std::int64_t>;  // (layer name, call index)

// {"class_name": "__keras_tensor__", "config": {"keras_history": [layer, node, 0], ...}}.
Call tensor_reference(const json& value, const std::string& where) {
  const json* history = nullptr;
  if (value.is_object()) {
    const json& config = get(value, "config", kNull);
    if (config.is_object()) history = &get(config, "keras_history", kNull);
  }
  std::int64_t node = -1, tensor = -1;
  const bool ok = history && get(value, "class_name", kNull) == "__keras_tensor__" && history->is_array() &&
                  history->size() == 3 && (*history)[0].is_string() && int_value((*history)[1], &node) && node >= 0 &&
                  node < kMaxNodes && int_value((*history)[2], &tensor) && tensor == 0;
  if (!ok)
    throw ValueError(where +
                     ": expected a tensor as {'class_name': '__keras_tensor__', 'config': {'keras_history': [layer "
                     "name, node index, 0]}}, received " +
                     clip(value));
  check_values(value["config"], where);
  return {(*history)[0].get<std::string>(), node};
}

// The calls one layer call reads: {"args": [tensor or list of tensors], "kwargs": {}}.
std::vector<Call> node_references(const json& node, const std::string& where) {
  bool ok = node.is_object();
  if (ok)
    for (auto it = node.begin(); it != node.end(); ++it)
      if (it.key() != "args" && it.key() != "kwargs") ok = false;
  if (ok && node.contains("kwargs") && node["kwargs"] != kEmptyObject) ok = false;
  if (!ok) throw ValueError(where + ": expected {'args': [...], 'kwargs': {}}, received " + clip(node));
  const json& args = get(node, "args", kNull);
  if (!args.is_array() || args.size() != 1)
    throw ValueError(where + ": expected 'args' to hold one argument (a tensor or a list of them), received " +
                     clip(args));
  const json& arg = args[0];
  std::vector<Call> out;
  if (arg.is_array()) {
    if (arg.empty() || static_cast<std::int64_t>(arg.size()) > kMaxList)
      throw ValueError(where + ": expected a list of 1 to " + str(kMaxList) + " tensors, received " +
                       std::to_string(arg.size()));
    for (const auto& t : arg) out.push_back(tensor_reference(t, where));
  } else {
    out.push_back(tensor_reference(arg, where));
  }
  return out;
}

// [layer, node, 0], or a list holding exactly one (cnnx: one input and one output).
Call io_reference(const json& given, const std::string& where) {
  const json* value = &given;
  if (given.is_array() && given.size() == 1 && given[0].is_array()) value = &given[0];
  std::int64_t node = -1, tensor = -1;
  const bool ok = value->is_array() && value->size() == 3 && (*value)[0].is_string() && int_value((*value)[1], &node) &&
                  node >= 0 && node <= kMaxNodes && int_value((*value)[2], &tensor) && tensor == 0;
  if (!ok)
    throw ValueError(where + ": expected [layer name, node index, 0] (one input and one output), received " +
                     clip(given));
  return {(*value)[0].get<std::string>(), node};
}

struct CallHash {
  std::size_t operator()(const Call& c) const { return std::hash<std::string>()(c.first) * 31 + std::size_t(c.second); }
};

void check_functional(const json& config, const std::string& where, Tally& tally) {
  check_header(config, where);
  const json& layers = get(config, "layers", kNull);
  if (!layers.is_array() || layers.empty())
    throw ValueError(where + ": expected 'layers' to be a non-empty list, received " + clip(layers));
  tally.add(static_cast<std::int64_t>(layers.size()), 0, where);
  std::unordered_map<std::string, std::int64_t> calls;  // layer name -> number of calls
  std::unordered_map<std::string, std::string> classes;
  std::vector<std::string> order;                         // layer names in config order
  std::vector<std::pair<Call, std::vector<Call>>> edges;  // call -> calls it reads
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const json& entry = layers[i];
    std::string at = where + ": layer " + std::to_string(i);
    if (!entry.is_object())
      throw ValueError(at + ": expected an object with 'class_name', 'name', 'config', 'inbound_nodes'");
    const json& cls = get(entry, "class_name", kNull);
    const json& name = get(entry, "name", kNull);
    const json& nodes = get(entry, "inbound_nodes", kNull);
    if (!name.is_string() || name.get_ref<const std::string&>().empty() ||
        static_cast<std::int64_t>(utf8_length(name.get_ref<const std::string&>())) > kMaxString)
      throw ValueError(at + ": expected 'name' to be a non-empty string, received " + clip(name));
    const std::string layer_name = name.get<std::string>();
    if (calls.count(layer_name)) throw ValueError(at + ": the layer name " + clip(name) + " is used twice");
    at = where + ": layer " + clip(name);
    const json& layer_config = get(entry, "config", kNull);
    if (!layer_config.is_object())
      throw ValueError(at + ": expected 'config' to be an object, received " + clip(layer_config));
    if (!nodes.is_array() || static_cast<std::int64_t>(nodes.size()) > kMaxList)
      throw ValueError(at + ": expected 'inbound_nodes' to be a list of at most " + str(kMaxList) + " calls");
    const bool input = cls == "InputLayer";
    if (input) {
      if (!nodes.empty()) throw ValueError(at + " (InputLayer): expected no inbound nodes, received " + clip(nodes));
      check_input_layer(layer_config, at);
    } else if (is_model_class(cls)) {
      check_model(cls.get<std::string>(), layer_config, at + " (" + cls.get<std::string>() + ")", tally);
    } else if (known_layer(cls)) {
      check_values(layer_config, at + " (" + cls.get<std::string>() + ")");
    } else {
      throw ValueError(at + ": unknown layer class " + clip(cls) + "; expected one of " + known_list());
    }
    tally.add(0, static_cast<std::int64_t>(nodes.size()), where);
    calls[layer_name] = input ? 1 : static_cast<std::int64_t>(nodes.size());
    classes[layer_name] = cls.get<std::string>();
    order.push_back(layer_name);
    for (std::size_t k = 0; k < nodes.size(); ++k)
      edges.push_back(
          {{layer_name, static_cast<std::int64_t>(k)}, node_references(nodes[k], at + ", call " + std::to_string(k))});
  }

  for (const auto& [call, reads] : edges)
    for (const auto& ref : reads) {
      auto it = calls.find(ref.first);
      if (it == calls.end() || ref.second >= it->second)
        throw ValueError(where + ": call " + std::to_string(call.second) + " of layer " + clip(call.first) + " reads " +
                         clip(json::array({ref.first, ref.second, 0})) + ", a call that does not exist");
    }
  // Kahn: a call runs after the calls it reads and after the layer's previous call.
  std::unordered_map<Call, std::int64_t, CallHash> waiting;
  std::unordered_map<Call, std::vector<Call>, CallHash> readers;
  for (const auto& [call, reads] : edges) {
    std::set<Call> needs(reads.begin(), reads.end());
    if (call.second) needs.insert({call.first, call.second - 1});
    waiting[call] = static_cast<std::int64_t>(needs.size());
    for (const auto& need : needs) readers[need].push_back(call);
  }
  std::vector<Call> ready;
  std::int64_t inputs = 0;
  for (const auto& name : order)
    if (classes[name] == "InputLayer") {
      ready.push_back({name, 0});
      ++inputs;
    }
  for (const auto& [call, n] : waiting)
    if (n == 0) ready.push_back(call);
  std::int64_t done = 0;
  while (!ready.empty()) {
    const Call call = ready.back();
    ready.pop_back();
    ++done;
    auto it = readers.find(call);
    if (it == readers.end()) continue;
    for (const auto& reader : it->second)
      if (--waiting[reader] == 0) ready.push_back(reader);
  }
  if (done != static_cast<std::int64_t>(edges.size()) + inputs)
    throw ValueError(where + ": the layer calls form a cycle (or read calls that never run)");

  for (const char* key : {"input_layers", "output_layers"}) {
    const Call ref = io_reference(get(config, key, kNull), where + ": " + key);
    auto it = calls.find(ref.first);
    // Keras counts a functional model's own graph as its call 0.
    const std::int64_t offset = it != calls.end() && classes[ref.first] == "Functional" ? 1 : 0;
    if (it == calls.end() || !(offset <= ref.second && ref.second < it->second + offset))
      throw ValueError(where + ": " + key + " refers to " + clip(json::array({ref.first, ref.second, 0})) +
                       ", a call that does not exist");
    if (std::string(key) == "input_layers" && classes[ref.first] != "InputLayer")
      throw ValueError(where + ": input_layers must refer to an InputLayer, received " +
                       clip(json::array({ref.first, ref.second, 0})));
  }
}

void check_model(const std::string& class_name, const json& config, const std::string& where, Tally& tally) {
  if (class_name == "Sequential")
    check_sequential(config, where, tally, true);
  else
    check_functional(config, where, tally);
}

}  // namespace

void check_values(const json& value, const std::string& where, const std::string& key) {
  if (value.is_string()) {
    const auto n = static_cast<std::int64_t>(utf8_length(value.get_ref<const std::string&>()));
    if (n > kMaxString)
      throw ValueError(where + ": " + (key.empty() ? std::string("a string") : key) + " is " + str(n) +
                       " characters long; expected at most " + str(kMaxString));
  } else if (is_int(value)) {
    const std::int64_t limit = kWindowKeys.count(key) ? kMaxWindow : kSizeKeys.count(key) ? kMaxSize : INT64_MAX;
    std::int64_t v;
    if (!int_value(value, &v) || v < -limit || v > limit)
      throw ValueError(where + ": expected " + (key.empty() ? std::string("an integer") : key) + " within +-" +
                       str(limit) + ", received " + clip(value));
  } else if (value.is_array()) {
    if (static_cast<std::int64_t>(value.size()) > kMaxList)
      throw ValueError(where + ": " + (key.empty() ? std::string("a list") : key) + " has " +
                       std::to_string(value.size()) + " entries; expected at most " + str(kMaxList));
    if (kShapeKeys.count(key) && (value.size() > static_cast<std::size_t>(kMaxRank) + 1 ||
                                  dims_product(value) > static_cast<std::uint64_t>(kMaxSample)))
      throw ValueError(where + ": " + key + " " + clip(value) + " has more than " + str(kMaxRank + 1) + " axes or " +
                       str(kMaxSample) + " elements");
    for (const auto& v : value) check_values(v, where, key);
  } else if (value.is_object()) {
    if (value.contains("class_name")) {
      if (!value["class_name"].is_string() || !get(value, "config", kEmptyObject).is_object())
        throw ValueError(where + ": expected " + (key.empty() ? std::string("an entry") : key) +
                         " as {'class_name': str, 'config': {...}}, received " + clip(value));
    }
    for (auto it = value.begin(); it != value.end(); ++it) check_values(it.value(), where, it.key());
  }
}

json check_model_config(const std::string& text, const std::string& format_version) {
  json config = parse_json_counted(text, "model_config");
  Tally tally;
  if (format_version == "1") {
    check_sequential(config, "model_config", tally, false);
    return config;
  }
  if (!config.is_object() || !is_model_class(get(config, "class_name", kNull)))
    throw ValueError("model_config: expected {'class_name': 'Sequential' or 'Functional', 'config': {...}}, received " +
                     clip(config));
  check_model(config["class_name"].get<std::string>(), get(config, "config", kNull), "model_config", tally);
  return config;
}

json check_compile_config(const std::string& text) {
  json config = parse_json_counted(text, "compile_config");
  if (!config.is_object()) throw ValueError("compile_config: expected a JSON object, received " + clip(config));
  for (const char* part : {"optimizer", "loss"}) {
    const json& entry = get(config, part, kNull);
    if (!(entry.is_object() && get(entry, "class_name", kNull).is_string() &&
          get(entry, "config", kEmptyObject).is_object()))
      throw ValueError(std::string("compile_config: expected '") + part +
                       "' as {'class_name': str, 'config': {...}}, received " + clip(entry));
  }
  // A metric is its Keras name or, for a metric object, {'class_name': str, 'config': {...}}.
  for (const char* part : {"metrics", "weighted_metrics"}) {
    const json& metrics = get(config, part, kEmptyList);
    bool ok = metrics.is_null() || metrics.is_array();
    if (ok && metrics.is_array())
      for (const auto& m : metrics)
        ok = ok && (m.is_string() || (m.is_object() && get(m, "class_name", kNull).is_string() &&
                                      get(m, "config", kEmptyObject).is_object()));
    if (!ok)
      throw ValueError(std::string("compile_config: expected '") + part +
                       "' to be a list of names or {'class_name': str, 'config': {...}}, received " + clip(metrics));
  }
  check_values(config, "compile_config");
  return config;
}

std::vector<std::string> check_class_names(const std::string& text) {
  const json names = parse_json_counted(text, "class_names");
  bool ok = names.is_array() && static_cast<std::int64_t>(names.size()) <= kMaxClasses;
  if (ok)
    for (const auto& c : names) ok = ok && c.is_string();
  if (!ok)
    throw ValueError("class_names: expected a JSON list of at most " + str(kMaxClasses) + " strings, received " +
                     clip(names));
  return names.get<std::vector<std::string>>();
}

std::int64_t check_iterations(const std::string& text) {
  bool ok = !text.empty() && text.size() <= 19;
  for (char c : text) ok = ok && c >= '0' && c <= '9';
  // 19 digits fit uint64; below 2**63 they fit int64
  if (ok && std::stoull(text) > static_cast<unsigned long long>(INT64_MAX)) ok = false;
  if (!ok)
    throw ValueError("optimizer_iterations: expected a non-negative integer below 2**63, received " + clip(text));
  return static_cast<std::int64_t>(std::stoull(text));
}

CheckedMetadata check_model_metadata(const std::map<std::string, std::string>& metadata, bool compile) {
  auto find = [&](const char* key) -> const std::string* {
    auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
  };
  const std::string* contents = find("contents");
  if (!contents || *contents != "model")
    throw ValueError("it holds " + (contents ? clip(*contents) : std::string("no contents entry")) +
                     ", not a whole model (use model.load_weights for a weights file)");
  const std::string* model_config = find("model_config");
  if (!model_config) throw ValueError("the metadata has no 'model_config'");
  CheckedMetadata out;
  const std::string* version = find("format_version");
  out.format_version = version ? *version : "1";
  out.model_config = check_model_config(*model_config, out.format_version);
  if (const std::string* text = compile ? find("compile_config") : nullptr) {
    out.compile_config = check_compile_config(*text);
    const std::string* iterations = find("optimizer_iterations");
    out.optimizer_iterations = check_iterations(iterations ? *iterations : "0");
  }
  if (const std::string* text = find("class_names")) out.class_names = check_class_names(*text);
  return out;
}

}  // namespace cnnx::io
