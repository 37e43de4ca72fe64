#include "io/compile_config.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "cnnx/error.hpp"
#include "cnnx/losses.hpp"
#include "cnnx/optimizers.hpp"

namespace cnnx::io {
namespace {

const char* kAccuracy[] = {"accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy", "binary_accuracy"};
const char* kTopK[] = {"top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"};
// The other names cnnx.metrics knows: the Python package computes them from the step's outputs;
// a model loaded here keeps them (and writes them back) but the core's fit does not report them.
const char* kPythonMetrics[] = {"mse",
                                "mae",
                                "mape",
                                "msle",
                                "bce",
                                "kld",
                                "rmse",
                                "auc",
                                "logcosh",
                                "mean_squared_error",
                                "mean_absolute_error",
                                "mean_absolute_percentage_error",
                                "mean_squared_logarithmic_error",
                                "root_mean_squared_error",
                                "binary_crossentropy",
                                "categorical_crossentropy",
                                "sparse_categorical_crossentropy",
                                "hinge",
                                "squared_hinge",
                                "categorical_hinge",
                                "kl_divergence",
                                "poisson",
                                "log_cosh",
                                "log_cosh_error",
                                "cosine_similarity",
                                "precision",
                                "recall",
                                "true_positives",
                                "false_positives",
                                "true_negatives",
                                "false_negatives",
                                "mean",
                                "sum"};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
template <std::size_t N>
bool one_of(const std::string& s, const char* (&names)[N]) {
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return s == n; });
}

// An optimizer's or loss's config: typed accessors and no argument left over.
class Config {
 public:
  Config(const json& entry, std::string where) : where_(std::move(where)) {
    auto it = entry.find("config");
    if (it != entry.end()) config_ = *it;
    used_.insert("name");
  }
  const json* find(const char* key) {
    used_.insert(key);
    auto it = config_.find(key);
    return it == config_.end() || it->is_null() ? nullptr : &*it;
  }
  double number(const char* key, double fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_number())
      throw TypeError(where_ + ": expected " + key + " to be a number, received " + key + "=" + clip(*v));
    return v->get<double>();
  }
  bool boolean(const char* key, bool fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean())
      throw TypeError(where_ + ": expected " + key + " to be true or false, received " + key + "=" + clip(*v));
    return v->get<bool>();
  }
  void finish() const {
    std::vector<std::string> extra;
    for (auto it = config_.begin(); it != config_.end(); ++it)
      if (!used_.count(it.key())) extra.push_back(it.key());
    if (!extra.empty()) throw TypeError(where_ + ": unrecognized arguments " + clip(json(extra)));
  }
  const std::string& where() const { return where_; }

 private:
  json config_ = json::object();
  std::string where_;
  std::set<std::string> used_;
};

std::shared_ptr<Optimizer> optimizer_from(const json& entry) {
  const std::string cls = entry.at("class_name").get<std::string>();
  Config c(entry, "compile_config: optimizer " + cls);
  double lr_default = cls == "SGD" ? 0.01 : 0.001;
  if (const json* lr = c.find("learning_rate"); lr && lr->is_object()) {
    const json name = lr->contains("class_name") ? lr->at("class_name") : json(nullptr);
    throw ValueError(c.where() + ": the learning-rate schedule " + clip(name) +
                     " is not supported by the C++ loader (the core has no schedules); load the model with "
                     "compile=false, or compile it again with a constant learning rate");
  }
  const double lr = c.number("learning_rate", lr_default);
  std::shared_ptr<Optimizer> opt;
  double weight_decay_default = 0.0;
  if (cls == "SGD") {
    opt = std::make_shared<SGD>(lr, c.number("momentum", 0.0), c.boolean("nesterov", false));
  } else if (cls == "Adam" || cls == "AdamW") {
    if (cls == "AdamW") weight_decay_default = 0.004;
    opt = std::make_shared<Adam>(lr, c.number("beta_1", 0.9), c.number("beta_2", 0.999), c.number("epsilon", 1e-7));
  } else if (cls == "RMSprop") {
    opt = std::make_shared<RMSprop>(lr, c.number("rho", 0.9), c.number("momentum", 0.0), c.number("epsilon", 1e-7));
  } else if (cls == "Adagrad") {
    opt = std::make_shared<Adagrad>(lr, c.number("initial_accumulator_value", 0.1), c.number("epsilon", 1e-7));
  } else {
    throw ValueError("compile_config: unknown optimizer class " + clip(cls) +
                     "; expected one of ['Adagrad', 'Adam', 'AdamW', 'RMSprop', 'SGD']");
  }
  opt->clipvalue = c.number("clipvalue", 0.0);
  opt->clipnorm = c.number("clipnorm", 0.0);
  opt->global_clipnorm = c.number("global_clipnorm", 0.0);
  opt->weight_decay = c.number("weight_decay", weight_decay_default);
  opt->check_options();
  c.finish();
  return opt;
}

std::shared_ptr<Loss> loss_from(const json& entry) {
  const std::string cls = entry.at("class_name").get<std::string>();
  Config c(entry, "compile_config: loss " + cls);
  auto smoothing = [&] {
    const double ls = c.number("label_smoothing", 0.0);
    if (!(ls >= 0.0 && ls <= 1.0))
      throw ValueError(c.where() + ": expected label_smoothing in [0, 1], received " + clip(json(ls)));
    return ls;
  };
  // Keras 3's Loss arguments that must keep their defaults for the core's losses.
  if (const json* r = c.find("reduction"); r && !(r->is_string() && r->get<std::string>() == "sum_over_batch_size"))
    throw ValueError(c.where() + ": expected reduction 'sum_over_batch_size', received " + clip(*r));
  if (const json* a = c.find("axis"); a && !(a->is_number_integer() && a->get<std::int64_t>() == -1))
    throw ValueError(c.where() + ": expected axis -1, received " + clip(*a));
  if (const json* ic = c.find("ignore_class"))
    throw ValueError(c.where() + ": expected ignore_class null, received " + clip(*ic));
  c.find("dtype");
  if (entry.contains("registered_name") && !entry.at("registered_name").is_null())
    throw ValueError(c.where() +
                     ": the loss is written in Python (custom_objects); load the model with "
                     "compile=false here");
  std::shared_ptr<Loss> loss;
  if (cls == "CategoricalCrossentropy") {
    const bool logits = c.boolean("from_logits", false);
    loss = make_crossentropy(false, logits, smoothing());
  } else if (cls == "SparseCategoricalCrossentropy") {
    loss = make_crossentropy(true, c.boolean("from_logits", false));
  } else if (cls == "BinaryCrossentropy") {
    const bool logits = c.boolean("from_logits", false);
    loss = make_binary_crossentropy(logits, smoothing());
  } else if (cls == "MeanSquaredError") {
    loss = make_mean_squared_error();
  } else if (cls == "MeanAbsoluteError") {
    loss = make_mean_absolute_error();
  } else {
    throw ValueError("compile_config: unknown loss class " + clip(cls) +
                     "; expected one of ['BinaryCrossentropy', 'CategoricalCrossentropy', 'MeanAbsoluteError', "
                     "'MeanSquaredError', 'SparseCategoricalCrossentropy']");
  }
  c.finish();
  return loss;
}

// Keras' choice for an accuracy metric: binary for binary cross-entropy or one output unit.
AccuracyKind accuracy_kind(const std::string& metric, const Loss& loss, const Shape& output) {
  if (metric == "binary_accuracy") return AccuracyKind::binary;
  if (metric == "categorical_accuracy" || metric == "sparse_categorical_accuracy") return AccuracyKind::argmax;
  if (loss.name() == "binary_crossentropy") return AccuracyKind::binary;
  return !output.empty() && output.back() == 1 ? AccuracyKind::binary : AccuracyKind::argmax;
}

const char* loss_class(const std::string& name) {
  if (name == "categorical_crossentropy") return "CategoricalCrossentropy";
  if (name == "sparse_categorical_crossentropy") return "SparseCategoricalCrossentropy";
  if (name == "binary_crossentropy") return "BinaryCrossentropy";
  if (name == "mean_squared_error") return "MeanSquaredError";
  if (name == "mean_absolute_error") return "MeanAbsoluteError";
  return nullptr;
}

}  // namespace

CompileFromConfig compile_from_config(const json& config) {
  CompileFromConfig out;
  out.optimizer = optimizer_from(config.at("optimizer"));
  out.loss = loss_from(config.at("loss"));
  for (const char* part : {"metrics", "weighted_metrics"}) {
    auto it = config.find(part);
    if (it == config.end() || !it->is_array()) continue;
    for (const auto& m : *it) {
      if (!m.is_string())
        throw ValueError(std::string("compile_config: the metric object ") + clip(m) +
                         " is computed by the Python package; load the model with compile=false here");
      if (std::string(part) == "weighted_metrics")
        throw ValueError(
            "compile_config: weighted_metrics are computed by the Python package; load the model with compile=false "
            "here");
      const std::string name = m.get<std::string>();
      if (!one_of(lower(name), kAccuracy) && !one_of(lower(name), kTopK) && !one_of(lower(name), kPythonMetrics))
        throw ValueError("compile_config: unknown metric " + clip(name) +
                         "; expected one of ['accuracy', 'acc', 'categorical_accuracy', "
                         "'sparse_categorical_accuracy', 'binary_accuracy', 'top_k_categorical_accuracy', "
                         "'sparse_top_k_categorical_accuracy'] or another name cnnx.metrics knows");
      out.metrics.push_back(name);
    }
  }
  return out;
}

void compile_model(Model& model, const CompileFromConfig& compiled) {
  const Shape& output = model.output_shape();
  std::set<AccuracyKind> kinds;
  const std::string* first = nullptr;
  bool top_k = false;
  for (const auto& m : compiled.metrics) {
    const std::string name = lower(m);
    if (one_of(name, kTopK)) top_k = true;
    if (!one_of(name, kAccuracy)) continue;
    kinds.insert(accuracy_kind(name, *compiled.loss, output));
    if (!first) first = &m;
  }
  if (kinds.size() > 1) throw ValueError("compile_config: the metrics mix binary and categorical accuracy");
  model.compile(compiled.loss, compiled.optimizer);
  const AccuracyKind kind = first ? accuracy_kind(lower(*first), *compiled.loss, output) : AccuracyKind::argmax;
  const bool logits_bce = compiled.loss->name() == "binary_crossentropy" && compiled.loss->from_logits();
  model.set_metrics(kind, logits_bce ? 0.0f : 0.5f, top_k ? 5 : 0);
  model.set_metric_names(compiled.metrics);
}

ojson compile_config(const Model& model) {
  const Optimizer& opt = model.optimizer();
  const Loss& loss = model.loss();
  ojson o;
  std::string name = opt.name();
  o["name"] = [&] {
    std::string s = name;
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return s;
  }();
  o["learning_rate"] = opt.learning_rate;
  if (opt.clipvalue) o["clipvalue"] = opt.clipvalue;
  if (opt.clipnorm) o["clipnorm"] = opt.clipnorm;
  if (opt.global_clipnorm) o["global_clipnorm"] = opt.global_clipnorm;
  if (opt.weight_decay) o["weight_decay"] = opt.weight_decay;
  if (const auto* s = dynamic_cast<const SGD*>(&opt)) {
    o["momentum"] = s->momentum;
    o["nesterov"] = s->nesterov;
  } else if (const auto* a = dynamic_cast<const Adam*>(&opt)) {
    o["beta_1"] = a->beta_1;
    o["beta_2"] = a->beta_2;
    o["epsilon"] = a->epsilon;
  } else if (const auto* r = dynamic_cast<const RMSprop*>(&opt)) {
    o["rho"] = r->rho;
    o["momentum"] = r->momentum;
    o["epsilon"] = r->epsilon;
  } else if (const auto* g = dynamic_cast<const Adagrad*>(&opt)) {
    o["initial_accumulator_value"] = g->initial_accumulator_value;
    o["epsilon"] = g->epsilon;
  } else {
    throw ValueError("save: optimizer " + name + " has no model-file configuration; cnnx cannot save it");
  }
  const char* cls = loss_class(loss.name());
  if (!cls) throw ValueError("save: loss " + loss.name() + " has no model-file configuration; cnnx cannot save it");
  ojson l;
  l["name"] = loss.name();
  l["reduction"] = "sum_over_batch_size";  // the keys and order of the Python Loss.get_config()
  const std::string c = cls;
  const bool with_axis = c == "CategoricalCrossentropy" || c == "BinaryCrossentropy";
  if (with_axis || c == "SparseCategoricalCrossentropy") l["from_logits"] = loss.from_logits();
  if (with_axis) {
    l["label_smoothing"] = loss.label_smoothing();
    l["axis"] = -1;
  }
  if (c == "SparseCategoricalCrossentropy") l["ignore_class"] = nullptr;
  ojson out;
  out["optimizer"] = {{"class_name", name}, {"config", o}};
  out["loss"] = {{"class_name", c}, {"config", l}};
  out["metrics"] = model.metric_names();
  return out;
}

std::vector<std::pair<std::string, std::string>> trainable_param_names(const Model& model) {
  std::vector<std::pair<std::string, std::string>> out;
  std::set<const Layer*> seen;
  for (int i = 1; i < model.node_count(); ++i) {
    const Layer* layer = model.node_layer(i).get();
    if (!seen.insert(layer).second) continue;
    const Layer* runner = model.node_runner(i);
    if (!runner || !runner->trainable()) continue;
    for (const auto& p : runner->params())
      if (p.trainable) out.push_back({layer->name(), p.name});
  }
  return out;
}

}  // namespace cnnx::io
