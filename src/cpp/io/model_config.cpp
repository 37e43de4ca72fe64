#include "io/model_config.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

#include "cnnx/error.hpp"
#include "cnnx/random.hpp"
#include "io/layer_config.hpp"

namespace cnnx::io {
namespace {

// A nested model used again is inlined again: nodes grow with each reuse, so their number is
// bounded on its own (a legitimate file stays far below).
constexpr std::int64_t kMaxGraphNodes = 1 << 16;

// Fallbacks for absent keys live as long as the configuration (get returns a reference).
const json kNull = nullptr;
const json kTrue = true;
const json kEmptyList = json::array();
const json kEmptyObject = json::object();
const json& get(const json& object, const char* key, const json& fallback = kNull) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it == object.end() ? fallback : *it;
}

std::string shape_text(const Shape& sample) { return batch_shape_str(sample); }

// Keras' map_graph (python/cnnx/_graph.py) over call nodes: the order a model runs its calls
// (deepest first) and its operations in Keras' order. Each node has one output tensor.
struct CallGraph {
  std::vector<int> op;                   // per node: its operation
  std::vector<std::vector<int>> inputs;  // per node: the nodes whose outputs it reads
  std::vector<char> is_input;            // an InputLayer's node
};
struct Mapped {
  std::vector<int> schedule;    // nodes, every node after the nodes it reads
  std::vector<int> operations;  // ops by decreasing depth, ties in the order first met
};

Mapped map_graph(const CallGraph& g, int input, int output, const std::string& where) {
  const std::size_t n = g.op.size();
  std::vector<int> ordered;
  std::vector<char> finished(n, 0), in_progress(n, 0);
  std::unordered_map<int, int> op_index;
  std::vector<std::pair<int, bool>> stack{{output, false}};
  while (!stack.empty()) {
    const auto [node, expanded] = stack.back();
    stack.pop_back();
    if (expanded) {
      in_progress[node] = 0;
      if (!finished[node]) {
        finished[node] = 1;
        ordered.push_back(node);
      }
      continue;
    }
    if (finished[node]) continue;
    if (in_progress[node]) throw ValueError(where + ": the layer calls form a cycle");
    op_index.emplace(g.op[node], static_cast<int>(op_index.size()));
    in_progress[node] = 1;
    stack.push_back({node, true});
    if (!g.is_input[node])
      for (auto it = g.inputs[node].rbegin(); it != g.inputs[node].rend(); ++it) stack.push_back({*it, false});
  }
  // Depth: the number of calls between a call and the output (Keras' definition), kept in the
  // order first assigned, which orders the calls of one depth.
  std::vector<int> depth_order;
  std::unordered_map<int, int> depth, op_depth;
  auto set_depth = [&](int node, int d) {
    if (!depth.count(node)) depth_order.push_back(node);
    depth[node] = d;
  };
  for (auto it = ordered.rbegin(); it != ordered.rend(); ++it) {
    const int node = *it;
    if (!depth.count(node)) set_depth(node, 0);
    int d = std::max(depth[node], op_depth.count(g.op[node]) ? op_depth[g.op[node]] : 0);
    op_depth[g.op[node]] = d;
    set_depth(node, d);
    if (g.is_input[node]) continue;
    for (int parent : g.inputs[node]) set_depth(parent, std::max(d + 1, depth.count(parent) ? depth[parent] : 0));
  }
  if (!op_depth.count(g.op[input])) {  // an input the output does not use
    op_depth[g.op[input]] = 0;
    op_index[g.op[input]] = -1;
    set_depth(input, 0);
  }
  std::map<int, std::vector<int>, std::greater<int>> by_depth;
  std::vector<int> ops;
  std::set<int> seen_ops;
  for (int node : depth_order) {
    by_depth[depth[node]].push_back(node);
    if (seen_ops.insert(g.op[node]).second) ops.push_back(g.op[node]);
  }
  std::stable_sort(ops.begin(), ops.end(), [&](int a, int b) {
    return std::make_pair(-op_depth[a], op_index[a]) < std::make_pair(-op_depth[b], op_index[b]);
  });
  Mapped out;
  out.operations = ops;
  std::vector<char> computable(n, 0);
  computable[input] = 1;
  for (const auto& [d, nodes] : by_depth)
    for (int node : nodes) {
      for (int t : g.inputs[node])
        if (!computable[t])
          throw ValueError(where + ": graph disconnected: a call reads a tensor the model's input does not give");
      if (g.is_input[node] && node != input)
        throw ValueError(where + ": graph disconnected: the output needs an InputLayer that is not the model's input");
      out.schedule.push_back(node);
      computable[node] = 1;
    }
  return out;
}

// -- reading ------------------------------------------------------------------------------------

struct Spec;
// A layer or a model as a configuration names it; a name seen again is the same object.
struct Item {
  std::string class_name, name;
  std::shared_ptr<Layer> layer;      // a layer
  std::shared_ptr<Spec> model;       // or a model
  std::optional<Shape> input_shape;  // the input_shape argument of a layer, if given
};

// A functional model's call: `op` indexes Spec::ops (-1 for the InputLayer), `inputs` other calls.
struct Call {
  int op = -1;
  std::vector<int> inputs;
  bool list = false;
};

struct Spec {
  bool functional = false;
  std::string name;
  bool trainable = true;
  std::optional<Shape> input_shape;          // declared (Sequential) or the InputLayer's (Functional)
  std::vector<std::shared_ptr<Item>> items;  // a Sequential's elements, a Functional's operations
  std::vector<Call> calls;                   // Functional: every call, the InputLayer's first
  std::vector<int> schedule;                 // Functional: the calls in the order they run
  int input_call = 0, output_call = 0;
};

bool is_model(const std::string& cls) { return cls == "Sequential" || cls == "Functional" || cls == "Model"; }

Shape sample_shape(const json& batch_shape) {
  Shape s;
  for (std::size_t i = 1; i < batch_shape.size(); ++i) s.push_back(batch_shape[i].get<std::int64_t>());
  return s;
}

class Reader {
 public:
  explicit Reader(const json& root) { collect_names(root); }

  std::shared_ptr<Spec> model(const std::string& class_name, const json& config, const std::string& where) {
    return class_name == "Sequential" ? sequential(config, where) : functional(config, where);
  }

  std::shared_ptr<Spec> sequential(const json& config, const std::string& where) {
    auto spec = std::make_shared<Spec>();
    spec->name = model_name(config, "Sequential");
    spec->trainable = get(config, "trainable", kTrue).get<bool>();
    const json& shape = get(config, "input_shape");
    if (shape.is_array()) spec->input_shape = sample_shape(shape);
    const json& layers = get(config, "layers", kEmptyList);
    for (std::size_t i = 0; i < layers.size(); ++i) spec->items.push_back(entry(layers[i], where));
    return spec;
  }

  std::shared_ptr<Spec> functional(const json& config, const std::string& where_outer) {
    auto spec = std::make_shared<Spec>();
    spec->functional = true;
    spec->name = model_name(config, "Functional");
    spec->trainable = get(config, "trainable", kTrue).get<bool>();
    const std::string where = where_outer + " (Functional '" + spec->name + "')";
    std::unordered_map<std::string, int> op_of;              // layer name -> index into items, -1: InputLayer
    std::unordered_map<std::string, std::vector<int>> made;  // layer name -> its calls replayed here
    struct Pending {
      std::string name;
      std::int64_t k;
      const json* node;
    };
    std::vector<Pending> pending;
    for (const json& e : config.at("layers")) {
      const std::string name = e.at("name").get<std::string>();
      const std::string cls = e.at("class_name").get<std::string>();
      if (cls == "InputLayer") {
        const std::string made_name = input_layer(e.at("config"), where);
        if (made_name != name)
          throw ValueError(where + ": layer entry " + clip(name) + " holds a layer named " + clip(made_name));
        op_of[name] = -1;
        made[name] = {static_cast<int>(spec->calls.size())};
        spec->calls.push_back({-1, {}, false});
        spec->input_shape = sample_shape(e.at("config").at("batch_shape"));
        continue;
      }
      auto item = entry(e, where);
      if (item->name != name)
        throw ValueError(where + ": layer entry " + clip(name) + " holds a layer named " + clip(item->name));
      op_of[name] = static_cast<int>(spec->items.size());
      spec->items.push_back(item);
      made[name] = {};
      const json& nodes = e.at("inbound_nodes");
      for (std::size_t k = 0; k < nodes.size(); ++k) pending.push_back({name, static_cast<std::int64_t>(k), &nodes[k]});
    }
    // Replay: a call once the calls it reads exist and the layer's previous call was made
    // (config_check proved the calls acyclic and their references in range).
    auto refs_of = [](const json& node, bool* list) {
      const json& arg = node.at("args").at(0);
      *list = arg.is_array();
      std::vector<std::pair<std::string, std::int64_t>> refs;
      for (const json& t : *list ? arg : json::array({arg})) {
        const json& h = t.at("config").at("keras_history");
        refs.push_back({h.at(0).get<std::string>(), h.at(1).get<std::int64_t>()});
      }
      return refs;
    };
    // Kahn's algorithm over the calls (config_check proved them acyclic and their references in
    // range): a call runs once the calls it reads exist and after the layer's previous call.
    std::map<std::pair<std::string, std::int64_t>, std::size_t> index;
    for (std::size_t i = 0; i < pending.size(); ++i) index[{pending[i].name, pending[i].k}] = i;
    std::vector<std::int64_t> waiting(pending.size(), 0);
    std::vector<std::vector<std::size_t>> readers(pending.size());
    std::vector<std::vector<std::pair<std::string, std::int64_t>>> refs(pending.size());
    std::vector<char> lists(pending.size(), 0);
    for (std::size_t i = 0; i < pending.size(); ++i) {
      bool list = false;
      refs[i] = refs_of(*pending[i].node, &list);
      lists[i] = list;
      std::set<std::pair<std::string, std::int64_t>> needs(refs[i].begin(), refs[i].end());
      if (pending[i].k) needs.insert({pending[i].name, pending[i].k - 1});
      for (const auto& need : needs) {
        auto it = index.find(need);
        if (it == index.end()) continue;  // an InputLayer's call: exists from the start
        ++waiting[i];
        readers[it->second].push_back(i);
      }
    }
    std::vector<std::size_t> ready;
    for (std::size_t i = pending.size(); i-- > 0;)
      if (!waiting[i]) ready.push_back(i);
    std::size_t replayed = 0;
    while (!ready.empty()) {
      const std::size_t i = ready.back();
      ready.pop_back();
      Call call{op_of[pending[i].name], {}, lists[i] != 0};
      for (const auto& [ref, k] : refs[i]) call.inputs.push_back(made[ref][static_cast<std::size_t>(k)]);
      made[pending[i].name].push_back(static_cast<int>(spec->calls.size()));
      spec->calls.push_back(call);
      ++replayed;
      for (std::size_t r : readers[i])
        if (--waiting[r] == 0) ready.push_back(r);
    }
    if (replayed != pending.size()) throw ValueError(where + ": the layer calls form a cycle");
    auto lookup = [&](const char* key) {
      json ref = config.at(key);
      if (ref.size() == 1) ref = ref.at(0);
      const std::string name = ref.at(0).get<std::string>();
      std::int64_t k = ref.at(1).get<std::int64_t>();
      const int op = op_of.at(name);
      // Keras counts a functional model's own graph as its call 0.
      if (op >= 0 && spec->items[op]->model && spec->items[op]->model->functional) --k;
      const auto& calls = made[name];
      if (k < 0 || k >= static_cast<std::int64_t>(calls.size()))
        throw ValueError(where + ": " + key + " " + clip(config.at(key)) + " refers to a call that does not exist");
      return calls[static_cast<std::size_t>(k)];
    };
    spec->input_call = lookup("input_layers");
    spec->output_call = lookup("output_layers");
    if (spec->output_call == spec->input_call)
      throw ValueError(where + ": expected at least one layer between the input and the output");
    CallGraph g;
    for (const Call& c : spec->calls) {
      g.op.push_back(c.op < 0 ? -1 - static_cast<int>(g.op.size()) : c.op);  // each InputLayer its own op
      g.inputs.push_back(c.inputs);
      g.is_input.push_back(c.op < 0);
    }
    spec->schedule = map_graph(g, spec->input_call, spec->output_call, where).schedule;
    return spec;
  }

 private:
  // Python's _layer_from_entry: a layer or a nested model from {"class_name", "config"}.
  std::shared_ptr<Item> entry(const json& e, const std::string& where) {
    const std::string cls = e.at("class_name").get<std::string>();
    const json& config = get(e, "config", kEmptyObject);
    const json& name = get(config, "name");
    if (name.is_string()) {
      auto it = registry_.find(name.get<std::string>());
      if (it != registry_.end()) {
        const std::string& made_as = it->second->class_name;
        if (made_as != cls && !(made_as == "Functional" && cls == "Model"))
          throw ValueError(where + ": the name " + clip(name) + " is used by a " + made_as + " and a " + cls);
        return it->second;
      }
    }
    auto item = std::make_shared<Item>();
    item->class_name = cls == "Model" ? "Functional" : cls;
    if (is_model(cls)) {
      item->model = model(item->class_name, config, where);
      item->name = item->model->name;
    } else {
      if (!name.is_null() && !name.is_string())
        throw TypeError(where + ": expected the name of a " + cls + " to be a string, received " + clip(name));
      item->name = name.is_string() ? name.get<std::string>() : auto_name(cls);
      auto made = layer_from_config(cls, config, item->name, "layer " + clip(item->name) + " (" + cls + ")");
      item->layer = made.layer;
      item->input_shape = made.input_shape;
    }
    if (name.is_string()) registry_[item->name] = item;
    return item;
  }

  std::string model_name(const json& config, const std::string& cls) {
    const json& name = get(config, "name");
    return name.is_string() ? name.get<std::string>() : auto_name(cls);
  }

  // InputLayer(**config) as Python accepts it; its name.
  std::string input_layer(const json& config, const std::string& where) {
    for (auto it = config.begin(); it != config.end(); ++it) {
      const std::string& key = it.key();
      const json& v = it.value();
      if (key == "batch_shape" || key == "name" || v.is_null()) continue;
      if (key == "dtype" && v == "float32") continue;
      if (key == "sparse" && v == false) continue;
      if (key == "optional" && v == false) continue;
      if (key == "dtype" || key == "sparse")
        throw ValueError(where + " (InputLayer): cnnx takes dense float32 inputs; received " + key + "=" + clip(v));
      throw TypeError(where + " (InputLayer): unrecognized argument " + clip(key));
    }
    const json& name = get(config, "name");
    if (!name.is_null() && !name.is_string())
      throw TypeError(where + " (InputLayer): expected name to be a string, received " + clip(name));
    return name.is_string() ? name.get<std::string>() : auto_name("InputLayer");
  }

  // Keras-style automatic names, distinct from every name the configuration gives.
  std::string auto_name(const std::string& cls) {
    const std::string base = snake_name(cls);
    for (int n = 0;; ++n) {
      std::string name = n ? base + "_" + std::to_string(n) : base;
      if (taken_.insert(name).second) return name;
    }
  }

  void collect_names(const json& v) {
    if (v.is_object()) {
      const json& name = get(v, "name");
      if (name.is_string()) taken_.insert(name.get<std::string>());
      for (auto it = v.begin(); it != v.end(); ++it)
        if (it.value().is_structured()) collect_names(it.value());
    } else if (v.is_array()) {
      for (const auto& e : v)
        if (e.is_structured()) collect_names(e);
    }
  }

  std::map<std::string, std::shared_ptr<Item>> registry_;
  std::set<std::string> taken_;
};

// Adds the calls of models and layers to the flat core graph, building each layer as it
// first comes, as the Python package builds them.
class Builder {
 public:
  Builder(Model& model, const Shape& input, std::int64_t budget) : model_(model), budget_(budget) {
    model_.add_input(input);
    shapes_.push_back(input);
  }

  int spec(const Spec& s, int node, bool on) {
    on = on && s.trainable;
    const std::string where = std::string(s.functional ? "Functional" : "Sequential") + " '" + s.name + "'";
    if (s.input_shape && *s.input_shape != shapes_[node])
      throw ValueError("Input 0 of layer \"" + s.name + "\" is incompatible with the layer: expected shape=" +
                       shape_text(*s.input_shape) + ", found shape=" + shape_text(shapes_[node]));
    if (!s.functional) {
      if (s.items.empty()) throw ValueError(where + ": cannot build a model with no layers");
      for (const auto& item : s.items)
        node = item->model ? spec(*item->model, node, on) : add(*item, {node}, on, false);
      return node;
    }
    std::vector<int> ids(s.calls.size(), -1);
    ids[static_cast<std::size_t>(s.input_call)] = node;
    for (int c : s.schedule) {
      const Call& call = s.calls[static_cast<std::size_t>(c)];
      if (call.op < 0) continue;
      std::vector<int> inputs;
      for (int t : call.inputs) inputs.push_back(ids[static_cast<std::size_t>(t)]);
      const Item& item = *s.items[static_cast<std::size_t>(call.op)];
      if (item.model) {
        if (inputs.size() != 1 || call.list)
          throw ValueError(where + ": model '" + item.name + "' is called on " + std::to_string(inputs.size()) +
                           " tensors; cnnx models take one input");
        ids[static_cast<std::size_t>(c)] = spec(*item.model, inputs[0], on);
      } else {
        ids[static_cast<std::size_t>(c)] = add(item, inputs, on, call.list);
      }
    }
    return ids[static_cast<std::size_t>(s.output_call)];
  }

  // Keras' trainable: a layer trains if it and every model on some path to it are trainable.
  void apply_trainable() {
    for (const auto& [layer, on] : trains_) layer->set_trainable(on);
  }

 private:
  int add(const Item& item, const std::vector<int>& inputs, bool on, bool list) {
    Layer& layer = *item.layer;
    const std::string where = layer.class_name() + " '" + layer.name() + "'";
    if (++nodes_ > kMaxGraphNodes)
      throw ValueError("the model expands to more than " + std::to_string(kMaxGraphNodes) +
                       " layer calls (a nested model used again is inlined again)");
    if (!list && layer.max_inputs() != 1)
      throw ValueError(where + ": a merge layer should be called on a list of inputs");
    std::vector<Shape> in;
    for (int u : inputs) in.push_back(shapes_[static_cast<std::size_t>(u)]);
    if (!layer.built()) {
      layer.build(in, next_seed(), budget_ < 0 ? -1 : std::max<std::int64_t>(budget_, 0));
      if (budget_ >= 0) budget_ -= layer.count_params();
    } else if (layer.input_shapes() != in) {
      std::string got;
      for (const auto& s : in) got += (got.empty() ? "" : ", ") + shape_text(s);
      std::string built;
      for (const auto& s : layer.input_shapes()) built += (built.empty() ? "" : ", ") + shape_text(s);
      throw ValueError(where + ": a layer used twice needs the same input shapes; built for " + built + ", received " +
                       got);
    }
    const bool own = layer.trainable();
    auto it = std::find_if(trains_.begin(), trains_.end(), [&](const auto& t) { return t.first == &layer; });
    if (it == trains_.end())
      trains_.push_back({&layer, on && own});
    else
      it->second = it->second || (on && own);
    const int id = model_.add_node(item.layer, inputs);
    shapes_.push_back(layer.output_shape());
    return id;
  }

  Model& model_;
  std::int64_t budget_;
  std::vector<Shape> shapes_;  // per node: its per-sample output
  std::int64_t nodes_ = 0;
  std::vector<std::pair<Layer*, bool>> trains_;
};

// The input a top-level model declares: its own, or its first element's.
std::optional<Shape> declared_input(const Spec& s) {
  if (s.input_shape || s.functional || s.items.empty()) return s.input_shape;
  const Item& first = *s.items.front();
  return first.model ? declared_input(*first.model) : first.input_shape;
}

// -- writing ------------------------------------------------------------------------------------

ojson batch_shape(const Shape& sample) {
  ojson s = ojson::array({nullptr});
  for (auto d : sample) s.push_back(d);
  return s;
}

}  // namespace

std::unique_ptr<Model> model_from_config(const json& config, const std::string& format_version,
                                         std::int64_t max_param_floats) {
  Reader reader(config);
  std::shared_ptr<Spec> spec;
  if (format_version == "1")
    spec = reader.sequential(config, "model_config");
  else
    spec = reader.model(config.at("class_name").get<std::string>(), config.at("config"), "model_config");
  const auto input = declared_input(*spec);
  if (!input)
    throw ValueError("Sequential '" + spec->name +
                     "': the input shape is unknown (neither the model's config nor its first layer's gives "
                     "input_shape)");
  auto model = std::make_unique<Model>();
  model->set_name(spec->name);
  Builder builder(*model, *input, max_param_floats);
  const int output = builder.spec(*spec, 0, true);
  builder.apply_trainable();
  model->set_output(output);
  model->build();
  return model;
}

std::pair<ojson, std::string> model_config(const Model& model) {
  if (!model.built()) throw ValueError("save: build the model before saving it");
  const int n = model.node_count();
  bool chain = model.output_node() == n - 1 && static_cast<int>(model.layers().size()) == n - 1;
  for (int i = 1; chain && i < n; ++i) chain = model.node_inputs(i) == std::vector<int>{i - 1};
  if (chain) {
    ojson c;
    c["name"] = model.name().empty() ? "sequential" : model.name();
    c["trainable"] = true;
    c["input_shape"] = batch_shape(model.input_shape());
    ojson layers = ojson::array();
    for (const auto& layer : model.layers())
      layers.push_back({{"class_name", layer->class_name()}, {"config", layer_config(*layer)}});
    c["layers"] = layers;
    return {c, "1"};
  }

  // A flat functional graph: op 0 is the InputLayer, op k the k-th distinct layer.
  const auto& layers = model.layers();
  std::set<std::string> names;
  for (const auto& l : layers) names.insert(l->name());
  std::string input_name = "input_layer";
  for (int k = 1; names.count(input_name); ++k) input_name = "input_layer_" + std::to_string(k);
  CallGraph g;
  std::vector<int> call_index(static_cast<std::size_t>(n), 0);  // a node's index among its layer's calls
  std::vector<int> calls_of(layers.size() + 1, 0);
  for (int i = 0; i < n; ++i) {
    int op = 0;
    if (i > 0) {
      const Layer* l = model.node_layer(i).get();
      op =
          1 + static_cast<int>(std::find_if(layers.begin(), layers.end(), [&](const auto& p) { return p.get() == l; }) -
                               layers.begin());
    }
    g.op.push_back(op);
    g.inputs.push_back(model.node_inputs(i));
    g.is_input.push_back(i == 0);
    call_index[static_cast<std::size_t>(i)] = calls_of[static_cast<std::size_t>(op)]++;
  }
  const Mapped mapped = map_graph(g, 0, model.output_node(), "save");
  auto op_name = [&](int op) { return op == 0 ? input_name : layers[static_cast<std::size_t>(op - 1)]->name(); };
  auto node_shape = [&](int node) { return node == 0 ? model.input_shape() : model.node_layer(node)->output_shape(); };
  auto history = [&](int node) { return ojson::array({op_name(g.op[node]), call_index[node], 0}); };
  ojson entries = ojson::array();
  for (int op : mapped.operations) {
    ojson e;
    e["module"] = "keras.layers";
    if (op == 0) {
      e["class_name"] = "InputLayer";
      e["config"] = {{"batch_shape", batch_shape(model.input_shape())},
                     {"dtype", "float32"},
                     {"sparse", false},
                     {"name", input_name}};
    } else {
      const Layer& layer = *layers[static_cast<std::size_t>(op - 1)];
      e["class_name"] = layer.class_name();
      e["config"] = layer_config(layer);
    }
    e["registered_name"] = nullptr;
    e["name"] = op_name(op);
    ojson inbound = ojson::array();
    for (int i = 1; op != 0 && i < n; ++i) {
      if (g.op[i] != op) continue;
      ojson args = ojson::array();
      for (int u : g.inputs[i])
        args.push_back(
            {{"class_name", "__keras_tensor__"},
             {"config", {{"shape", batch_shape(node_shape(u))}, {"dtype", "float32"}, {"keras_history", history(u)}}}});
      const bool list = model.node_layer(i)->max_inputs() != 1;
      inbound.push_back({{"args", ojson::array({list ? args : args[0]})}, {"kwargs", ojson::object()}});
    }
    e["inbound_nodes"] = inbound;
    entries.push_back(e);
  }
  ojson c;
  c["name"] = model.name().empty() ? "functional" : model.name();
  c["trainable"] = true;
  c["layers"] = entries;
  c["input_layers"] = history(0);
  c["output_layers"] = history(model.output_node());
  return {{{"class_name", "Functional"}, {"config", c}}, "2"};
}

}  // namespace cnnx::io
