// Each layer class: the arguments its Python constructor accepts (the same names, defaults,
// types and conversions: strings such as padding lowercased, an int or a pair for windows,
// null for "not given"), then the core constructor, which validates the values; and the config
// Python's get_config writes for it, key for key.
#include "io/layer_config.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "cnnx/cnnx.hpp"
#include "layers/activation_layers.hpp"
#include "layers/average_pooling2d.hpp"
#include "layers/batch_normalization.hpp"
#include "layers/concatenate.hpp"
#include "layers/conv2d.hpp"
#include "layers/dense.hpp"
#include "layers/depthwise_conv2d.hpp"
#include "layers/dropout.hpp"
#include "layers/flatten.hpp"
#include "layers/global_pooling2d.hpp"
#include "layers/image_augmentation.hpp"
#include "layers/max_pooling2d.hpp"
#include "layers/merge.hpp"
#include "layers/random_contrast.hpp"
#include "layers/random_flip.hpp"
#include "layers/random_rotation.hpp"
#include "layers/random_translation.hpp"
#include "layers/random_zoom.hpp"
#include "layers/rescaling.hpp"
#include "layers/reshape.hpp"
#include "layers/resizing.hpp"
#include "layers/separable_conv2d.hpp"

namespace cnnx::io {
namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A layer's config being read: typed accessors in Python's conversions, and a check that no
// argument is left over (as Python refuses unknown keyword arguments).
class Args {
 public:
  Args(const json& config, std::string where) : config_(config), where_(std::move(where)) {}

  // The value of `key` when present and not null (null means "not given" for every argument).
  const json* find(const char* key) {
    used_.insert(key);
    auto it = config_.find(key);
    return it == config_.end() || it->is_null() ? nullptr : &*it;
  }
  const json& require(const char* key) {
    const json* v = find(key);
    if (!v) throw TypeError(where_ + ": missing required argument '" + std::string(key) + "'");
    return *v;
  }
  [[noreturn]] void type_error(const char* key, const std::string& expected, const json& v) const {
    throw TypeError(where_ + ": expected " + key + " to be " + expected + ", received " + key + "=" + clip(v));
  }
  [[noreturn]] void value_error(const char* key, const std::string& expected, const json& v) const {
    throw ValueError(where_ + ": expected " + expected + ", received " + key + "=" + clip(v));
  }

  std::int64_t integer(const json& v, const char* key) const {
    std::int64_t out;
    if (!int_value(v, &out)) type_error(key, "an int", v);
    return out;
  }
  std::int64_t integer(const char* key, std::int64_t fallback) {
    const json* v = find(key);
    return v ? integer(*v, key) : fallback;
  }
  double number(const json& v, const char* key) const {
    if (!v.is_number()) type_error(key, "a number", v);
    return v.get<double>();
  }
  double number(const char* key, double fallback) {
    const json* v = find(key);
    return v ? number(*v, key) : fallback;
  }
  bool boolean(const char* key, bool fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_boolean()) type_error(key, "true or false", *v);
    return v->get<bool>();
  }
  // Lowercased, as Python's layers store padding, initializers, modes.
  std::string string(const char* key, const std::string& fallback) {
    const json* v = find(key);
    if (!v) return fallback;
    if (!v->is_string()) type_error(key, "a string", *v);
    return lower(v->get<std::string>());
  }
  std::string activation(const char* key = "activation") {
    const json* v = find(key);
    if (!v) return "linear";
    if (!v->is_string()) type_error(key, "a string such as 'relu' or null", *v);
    return v->get<std::string>();
  }
  // An int or a list of 2 ints, each >= 1 (kernel_size, strides, ...).
  std::pair<std::int64_t, std::int64_t> window(const json& v, const char* key) const {
    std::int64_t a, b;
    if (int_value(v, &a)) {
      b = a;
    } else if (!(v.is_array() && v.size() == 2 && int_value(v[0], &a) && int_value(v[1], &b))) {
      type_error(key, "an int or a list of 2 ints", v);
    }
    if (a < 1 || b < 1) value_error(key, std::string("positive ") + key, v);
    return {a, b};
  }
  std::pair<std::int64_t, std::int64_t> window(const char* key, std::pair<std::int64_t, std::int64_t> fallback) {
    const json* v = find(key);
    return v ? window(*v, key) : fallback;
  }
  void channels_last() {
    const json* v = find("data_format");
    if (v && *v != "channels_last")
      throw ValueError(
          where_ +
          ": cnnx is channels-last; expected data_format null or 'channels_last', received data_format=" + clip(*v));
  }
  // Keras' factor: a number f (meaning (-|f|, |f|), (-f, f) or (f, f) as `single` says) or a
  // (lower, upper) pair.
  std::pair<float, float> factor(const json& v, const char* key, char single) const {
    if (v.is_array() && v.size() == 2)
      return {static_cast<float>(number(v[0], key)), static_cast<float>(number(v[1], key))};
    if (!v.is_number()) type_error(key, "a number or a list of 2 numbers [lower, upper]", v);
    const double f = v.get<double>();
    if (single == 'a') return {static_cast<float>(-std::fabs(f)), static_cast<float>(std::fabs(f))};
    if (single == 'n') return {static_cast<float>(-f), static_cast<float>(f)};
    return {static_cast<float>(f), static_cast<float>(f)};
  }
  std::optional<std::uint64_t> seed() {
    const json* v = find("seed");
    if (!v) return std::nullopt;
    const std::int64_t s = integer(*v, "seed");
    if (s < 0) value_error("seed", "seed to be a non-negative int or null", *v);
    return static_cast<std::uint64_t>(s);
  }
  // A regularizer: null, 'l1', 'l2', 'l1_l2' or {"class_name": "L1" | "L2" | "L1L2", "config": {...}}.
  std::optional<std::pair<double, double>> regularizer(const char* key) {
    const json* v = find(key);
    if (!v) return std::nullopt;
    auto factor = [&](const json& config, const char* arg, double fallback) {
      auto it = config.find(arg);
      if (it == config.end()) return fallback;
      if (it->is_boolean() || !it->is_number() || !(it->get<double>() >= 0.0))
        throw ValueError(where_ + ": " + key + ": expected " + arg + " >= 0, received " + arg + "=" + clip(*it));
      return it->get<double>();
    };
    if (v->is_string()) {
      const std::string name = lower(v->get<std::string>());
      if (name == "l1") return std::pair<double, double>{0.01, 0.0};
      if (name == "l2") return std::pair<double, double>{0.0, 0.01};
      if (name == "l1_l2") return std::pair<double, double>{0.0, 0.0};
    } else if (v->is_object() && v->contains("class_name")) {
      const json& cls = (*v)["class_name"];
      const json config = v->contains("config") ? (*v)["config"] : json::object();
      if (config.is_object()) {
        const std::set<std::string> args = cls == "L1"   ? std::set<std::string>{"l1"}
                                           : cls == "L2" ? std::set<std::string>{"l2"}
                                                         : std::set<std::string>{"l1", "l2"};
        for (auto it = config.begin(); it != config.end(); ++it)
          if (!args.count(it.key()))
            throw TypeError(where_ + ": " + key + ": unexpected argument " + clip(it.key()) + " for " + clip(cls));
        if (cls == "L1") return std::pair<double, double>{factor(config, "l1", 0.01), 0.0};
        if (cls == "L2") return std::pair<double, double>{0.0, factor(config, "l2", 0.01)};
        if (cls == "L1L2") return std::pair<double, double>{factor(config, "l1", 0.0), factor(config, "l2", 0.0)};
      }
    }
    throw ValueError(
        where_ + ": could not interpret " + key +
        ": expected null, 'l1', 'l2', 'l1_l2' or {\"class_name\": \"L1\", \"L2\" or \"L1L2\", \"config\": {...}}, "
        "received " +
        clip(*v));
  }
  // Keras arguments cnnx accepts only at their default (null / false).
  void unsupported(const char* key) {
    const json* v = find(key);
    if (v && *v != false)
      throw ValueError(where_ + ": " + key + " is not supported; expected " + key + "=null, received " + key + "=" +
                       clip(*v));
  }
  void finish() const {
    std::vector<std::string> extra;
    for (auto it = config_.begin(); it != config_.end(); ++it)
      if (!used_.count(it.key())) extra.push_back(it.key());
    if (!extra.empty())
      throw TypeError(where_ + ": unrecognized arguments " + clip(json(extra)) + " for this layer class");
  }
  const std::string& where() const { return where_; }

 private:
  const json& config_;
  std::string where_;
  std::set<std::string> used_;
};

using Maker = std::function<std::shared_ptr<Layer>(Args&, const std::string&)>;

void set_regularizers(Args& a, Layer& layer, std::initializer_list<std::pair<const char*, const char*>> pairs) {
  for (const auto& [arg, weight] : pairs)
    if (auto r = a.regularizer(arg)) layer.set_regularizer(weight, r->first, r->second);
}

std::shared_ptr<Layer> pooling(Args& a, const std::string& name, bool max) {
  Pooling2DConfig c;
  std::tie(c.pool_h, c.pool_w) = a.window("pool_size", {2, 2});
  if (const json* s = a.find("strides"))
    std::tie(c.stride_h, c.stride_w) = a.window(*s, "strides");
  else {
    c.stride_h = c.pool_h;
    c.stride_w = c.pool_w;
  }
  c.padding = a.string("padding", "valid");
  a.channels_last();
  if (max) return std::make_shared<MaxPooling2D>(name, c);
  return std::make_shared<AveragePooling2D>(name, c);
}

AffineOptions affine(Args& a) {
  a.channels_last();
  AffineOptions o;
  o.fill_mode = a.string("fill_mode", "reflect");
  o.interpolation = a.string("interpolation", "bilinear");
  o.fill_value = static_cast<float>(a.number("fill_value", 0.0));
  const auto seed = a.seed();
  o.has_seed = seed.has_value();
  o.seed = seed.value_or(0);
  return o;
}

std::int64_t single_axis(Args& a, const char* key, std::int64_t fallback) {
  const json* v = a.find(key);
  if (!v) return fallback;
  if (v->is_array() && v->size() == 1) return a.integer((*v)[0], key);
  return a.integer(*v, key);
}

template <class T>
Maker merge() {
  return [](Args&, const std::string& name) { return std::make_shared<T>(name); };
}

const std::map<std::string, Maker>& makers() {
  static const std::map<std::string, Maker> table = {
      {"Conv2D",
       [](Args& a, const std::string& name) {
         Conv2DConfig c;
         c.filters = a.integer(a.require("filters"), "filters");
         std::tie(c.kernel_h, c.kernel_w) = a.window(a.require("kernel_size"), "kernel_size");
         std::tie(c.stride_h, c.stride_w) = a.window("strides", {1, 1});
         c.padding = a.string("padding", "valid");
         a.channels_last();
         std::tie(c.dilation_h, c.dilation_w) = a.window("dilation_rate", {1, 1});
         c.activation = a.activation();
         c.use_bias = a.boolean("use_bias", true);
         c.kernel_initializer = a.string("kernel_initializer", "glorot_uniform");
         c.bias_initializer = a.string("bias_initializer", "zeros");
         auto layer = std::make_shared<Conv2D>(name, c);
         set_regularizers(a, *layer, {{"kernel_regularizer", "kernel"}, {"bias_regularizer", "bias"}});
         return std::shared_ptr<Layer>(layer);
       }},
      {"DepthwiseConv2D",
       [](Args& a, const std::string& name) {
         DepthwiseConv2DConfig c;
         std::tie(c.kernel_h, c.kernel_w) = a.window(a.require("kernel_size"), "kernel_size");
         std::tie(c.stride_h, c.stride_w) = a.window("strides", {1, 1});
         c.padding = a.string("padding", "valid");
         c.depth_multiplier = a.integer("depth_multiplier", 1);
         a.channels_last();
         std::tie(c.dilation_h, c.dilation_w) = a.window("dilation_rate", {1, 1});
         c.activation = a.activation();
         c.use_bias = a.boolean("use_bias", true);
         c.depthwise_initializer = a.string("depthwise_initializer", "glorot_uniform");
         c.bias_initializer = a.string("bias_initializer", "zeros");
         auto layer = std::make_shared<DepthwiseConv2D>(name, c);
         set_regularizers(a, *layer, {{"depthwise_regularizer", "kernel"}, {"bias_regularizer", "bias"}});
         return std::shared_ptr<Layer>(layer);
       }},
      {"SeparableConv2D",
       [](Args& a, const std::string& name) {
         SeparableConv2DConfig c;
         c.filters = a.integer(a.require("filters"), "filters");
         std::tie(c.kernel_h, c.kernel_w) = a.window(a.require("kernel_size"), "kernel_size");
         std::tie(c.stride_h, c.stride_w) = a.window("strides", {1, 1});
         c.padding = a.string("padding", "valid");
         a.channels_last();
         std::tie(c.dilation_h, c.dilation_w) = a.window("dilation_rate", {1, 1});
         c.depth_multiplier = a.integer("depth_multiplier", 1);
         c.activation = a.activation();
         c.use_bias = a.boolean("use_bias", true);
         c.depthwise_initializer = a.string("depthwise_initializer", "glorot_uniform");
         c.pointwise_initializer = a.string("pointwise_initializer", "glorot_uniform");
         c.bias_initializer = a.string("bias_initializer", "zeros");
         auto layer = std::make_shared<SeparableConv2D>(name, c);
         set_regularizers(a, *layer,
                          {{"depthwise_regularizer", "depthwise_kernel"},
                           {"pointwise_regularizer", "pointwise_kernel"},
                           {"bias_regularizer", "bias"}});
         return std::shared_ptr<Layer>(layer);
       }},
      {"MaxPooling2D", [](Args& a, const std::string& name) { return pooling(a, name, true); }},
      {"AveragePooling2D", [](Args& a, const std::string& name) { return pooling(a, name, false); }},
      {"Flatten",
       [](Args& a, const std::string& name) {
         a.channels_last();
         return std::make_shared<Flatten>(name);
       }},
      {"Dense",
       [](Args& a, const std::string& name) {
         DenseConfig c;
         c.units = a.integer(a.require("units"), "units");
         c.activation = a.activation();
         c.use_bias = a.boolean("use_bias", true);
         c.kernel_initializer = a.string("kernel_initializer", "glorot_uniform");
         c.bias_initializer = a.string("bias_initializer", "zeros");
         auto layer = std::make_shared<Dense>(name, c);
         set_regularizers(a, *layer, {{"kernel_regularizer", "kernel"}, {"bias_regularizer", "bias"}});
         return std::shared_ptr<Layer>(layer);
       }},
      {"Dropout",
       [](Args& a, const std::string& name) {
         DropoutConfig c;
         c.rate = static_cast<float>(a.number(a.require("rate"), "rate"));
         if (const json* noise = a.find("noise_shape")) {
           if (!noise->is_array())
             a.type_error("noise_shape", "null or a list of ints and nulls such as [null, 1, 1, 8]", *noise);
           for (const auto& d : *noise) {
             if (d.is_null()) {
               c.noise_shape.push_back(-1);
               continue;
             }
             std::int64_t v;
             if (!int_value(d, &v))
               a.type_error("noise_shape", "null or a list of ints and nulls such as [null, 1, 1, 8]", *noise);
             // the core reads -1 as null: a negative entry must not pass for it
             if (v < 1) a.value_error("noise_shape", "noise_shape entries to be positive or null", *noise);
             c.noise_shape.push_back(v);
           }
         }
         const auto seed = a.seed();
         c.has_seed = seed.has_value();
         c.seed = seed.value_or(0);
         return std::make_shared<Dropout>(name, c);
       }},
      {"BatchNormalization",
       [](Args& a, const std::string& name) {
         BatchNormalizationConfig c;
         c.axis = single_axis(a, "axis", -1);
         c.momentum = static_cast<float>(a.number("momentum", 0.99));
         c.epsilon = static_cast<float>(a.number("epsilon", 1e-3));
         c.center = a.boolean("center", true);
         c.scale = a.boolean("scale", true);
         c.beta_initializer = a.string("beta_initializer", "zeros");
         c.gamma_initializer = a.string("gamma_initializer", "ones");
         c.moving_mean_initializer = a.string("moving_mean_initializer", "zeros");
         c.moving_variance_initializer = a.string("moving_variance_initializer", "ones");
         a.unsupported("beta_constraint");
         a.unsupported("gamma_constraint");
         if (a.boolean("synchronized", false))
           throw ValueError(a.where() + ": synchronized=true is not supported (cnnx runs on one device)");
         auto layer = std::make_shared<BatchNormalization>(name, c);
         set_regularizers(a, *layer, {{"beta_regularizer", "beta"}, {"gamma_regularizer", "gamma"}});
         return std::shared_ptr<Layer>(layer);
       }},
      {"GlobalAveragePooling2D",
       [](Args& a, const std::string& name) {
         a.channels_last();
         return std::make_shared<GlobalAveragePooling2D>(name, a.boolean("keepdims", false));
       }},
      {"GlobalMaxPooling2D",
       [](Args& a, const std::string& name) {
         a.channels_last();
         return std::make_shared<GlobalMaxPooling2D>(name, a.boolean("keepdims", false));
       }},
      {"Activation",
       [](Args& a, const std::string& name) {
         a.require("activation");
         return std::make_shared<ActivationLayer>(name, a.activation());
       }},
      {"ReLU",
       [](Args& a, const std::string& name) {
         ReLUConfig c;
         if (const json* m = a.find("max_value")) c.max_value = static_cast<float>(a.number(*m, "max_value"));
         c.negative_slope = static_cast<float>(a.number("negative_slope", 0.0));
         c.threshold = static_cast<float>(a.number("threshold", 0.0));
         return std::make_shared<ReLU>(name, c);
       }},
      {"LeakyReLU",
       [](Args& a, const std::string& name) {
         double slope = a.number("negative_slope", 0.3);
         if (const json* alpha = a.find("alpha")) slope = a.number(*alpha, "alpha");  // Keras 2's name
         return std::make_shared<LeakyReLU>(name, static_cast<float>(slope));
       }},
      {"ELU",
       [](Args& a, const std::string& name) {
         return std::make_shared<ELU>(name, static_cast<float>(a.number("alpha", 1.0)));
       }},
      {"Softmax",
       [](Args& a, const std::string& name) { return std::make_shared<Softmax>(name, single_axis(a, "axis", -1)); }},
      {"Rescaling",
       [](Args& a, const std::string& name) {
         const double scale = a.number(a.require("scale"), "scale");
         return std::make_shared<Rescaling>(name, static_cast<float>(scale),
                                            static_cast<float>(a.number("offset", 0.0)));
       }},
      {"Reshape",
       [](Args& a, const std::string& name) {
         const json& t = a.require("target_shape");
         Shape target;
         std::int64_t d;
         if (int_value(t, &d)) {
           target.push_back(d);
         } else if (t.is_array()) {
           for (const auto& e : t) {
             if (!int_value(e, &d)) a.type_error("target_shape", "a list of ints such as [7, 7, 3]", t);
             target.push_back(d);
           }
         } else {
           a.type_error("target_shape", "a list of ints such as [7, 7, 3]", t);
         }
         return std::make_shared<Reshape>(name, target);
       }},
      {"Resizing",
       [](Args& a, const std::string& name) {
         ResizingConfig c;
         c.height = a.integer(a.require("height"), "height");
         c.width = a.integer(a.require("width"), "width");
         c.interpolation = a.string("interpolation", "bilinear");
         c.crop_to_aspect_ratio = a.boolean("crop_to_aspect_ratio", false);
         if (a.boolean("pad_to_aspect_ratio", false))
           throw ValueError(a.where() +
                            ": pad_to_aspect_ratio is not supported; expected pad_to_aspect_ratio=false, received "
                            "pad_to_aspect_ratio=true");
         a.string("fill_mode", "constant");  // used only with pad_to_aspect_ratio
         a.number("fill_value", 0.0);
         a.channels_last();
         return std::make_shared<Resizing>(name, c);
       }},
      {"RandomFlip",
       [](Args& a, const std::string& name) {
         const std::string mode = a.string("mode", "horizontal_and_vertical");
         const auto seed = a.seed();
         a.channels_last();
         return std::make_shared<RandomFlip>(name, mode, seed.has_value(), seed.value_or(0));
       }},
      {"RandomRotation",
       [](Args& a, const std::string& name) {
         const auto f = a.factor(a.require("factor"), "factor", 'a');
         return std::make_shared<RandomRotation>(name, f.first, f.second, affine(a));
       }},
      {"RandomTranslation",
       [](Args& a, const std::string& name) {
         const auto h = a.factor(a.require("height_factor"), "height_factor", 'n');
         const auto w = a.factor(a.require("width_factor"), "width_factor", 'n');
         return std::make_shared<RandomTranslation>(name, h.first, h.second, w.first, w.second, affine(a));
       }},
      {"RandomZoom",
       [](Args& a, const std::string& name) {
         const auto h = a.factor(a.require("height_factor"), "height_factor", 'n');
         const json* wf = a.find("width_factor");
         const auto w = wf ? a.factor(*wf, "width_factor", 'n') : std::pair<float, float>{0.0f, 0.0f};
         return std::make_shared<RandomZoom>(name, h.first, h.second, wf != nullptr, w.first, w.second, affine(a));
       }},
      {"RandomContrast",
       [](Args& a, const std::string& name) {
         const auto f = a.factor(a.require("factor"), "factor", 's');
         float lo = 0.0f, hi = 255.0f;
         if (const json* range = a.find("value_range")) {
           if (!(range->is_array() && range->size() == 2))
             a.type_error("value_range", "a list of 2 numbers [min, max]", *range);
           lo = static_cast<float>(a.number((*range)[0], "value_range"));
           hi = static_cast<float>(a.number((*range)[1], "value_range"));
         }
         const auto seed = a.seed();
         return std::make_shared<RandomContrast>(name, f.first, f.second, lo, hi, seed.has_value(), seed.value_or(0));
       }},
      {"Add", merge<Add>()},
      {"Subtract", merge<Subtract>()},
      {"Multiply", merge<Multiply>()},
      {"Average", merge<Average>()},
      {"Maximum", merge<Maximum>()},
      {"Minimum", merge<Minimum>()},
      {"Concatenate",
       [](Args& a, const std::string& name) { return std::make_shared<Concatenate>(name, a.integer("axis", -1)); }},
  };
  return table;
}

// -- writing ----------------------------------------------------------------------------------

ojson pair(std::int64_t a, std::int64_t b) { return ojson::array({a, b}); }
ojson fpair(float a, float b) { return ojson::array({float_value(a), float_value(b)}); }

ojson regularizer(const Layer& layer, const std::string& weight) {
  for (const auto& [name, factors] : layer.regularizers()) {
    if (name != weight) continue;
    const auto [l1, l2] = factors;
    if (l1 != 0.0 && l2 == 0.0) return {{"class_name", "L1"}, {"config", {{"l1", l1}}}};
    if (l1 == 0.0 && l2 != 0.0) return {{"class_name", "L2"}, {"config", {{"l2", l2}}}};
    return {{"class_name", "L1L2"}, {"config", {{"l1", l1}, {"l2", l2}}}};
  }
  return nullptr;
}

ojson seed_value(const ImageAugmentation& l) { return l.has_seed() ? ojson(l.seed()) : ojson(nullptr); }

void affine_config(const RandomAffine& l, ojson& c) {
  const AffineOptions& o = l.options();
  c["fill_mode"] = o.fill_mode;
  c["interpolation"] = o.interpolation;
  c["seed"] = o.has_seed ? ojson(o.seed) : ojson(nullptr);
  c["fill_value"] = float_value(o.fill_value);
  c["data_format"] = "channels_last";
}

}  // namespace

const std::vector<std::string>& layer_class_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const auto& [name, maker] : makers()) out.push_back(name);
    return out;  // std::map: sorted
  }();
  return names;
}

std::string snake_name(const std::string& class_name) {
  std::string out;
  for (std::size_t i = 0; i < class_name.size(); ++i) {
    const char c = class_name[i];
    const char prev = i ? class_name[i - 1] : '\0';
    if (i && std::isupper(static_cast<unsigned char>(c)) &&
        (std::islower(static_cast<unsigned char>(prev)) || std::isdigit(static_cast<unsigned char>(prev))))
      out += '_';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  for (auto pos = out.find("2_d"); pos != std::string::npos; pos = out.find("2_d")) out.replace(pos, 3, "2d");
  return out;
}

LayerFromConfig layer_from_config(const std::string& class_name, const json& config, const std::string& name,
                                  const std::string& where) {
  auto it = makers().find(class_name);
  if (it == makers().end()) throw ValueError(where + ": unknown layer class " + clip(class_name));
  if (!config.is_object()) throw TypeError(where + ": expected the config to be an object, received " + clip(config));
  Args a(config, where);
  a.find("name");   // resolved by the caller
  a.find("dtype");  // float32 is the only dtype: Keras' argument is accepted and ignored
  LayerFromConfig out;
  out.trainable = a.boolean("trainable", true);
  if (const json* shape = a.find("input_shape")) {
    Shape s;
    std::int64_t d;
    if (int_value(*shape, &d)) {
      s.push_back(d);
    } else if (shape->is_array()) {
      for (const auto& e : *shape) {
        if (!int_value(e, &d)) a.type_error("input_shape", "a list of ints such as [28, 28, 1]", *shape);
        s.push_back(d);
      }
    } else {
      a.type_error("input_shape", "a list of ints such as [28, 28, 1]", *shape);
    }
    if (s.empty() || std::any_of(s.begin(), s.end(), [](std::int64_t v) { return v <= 0; }))
      a.value_error("input_shape", "input_shape with positive dimensions such as [28, 28, 1]", *shape);
    out.input_shape = s;
  }
  out.layer = it->second(a, name);
  a.finish();
  out.layer->set_trainable(out.trainable);
  return out;
}

ojson layer_config(const Layer& layer) {
  ojson c;
  c["name"] = layer.name();
  c["trainable"] = layer.trainable();
  const std::string cls = layer.class_name();
  if (const auto* l = dynamic_cast<const Conv2D*>(&layer)) {
    const Conv2DConfig& k = l->config();
    c["filters"] = k.filters;
    c["kernel_size"] = pair(k.kernel_h, k.kernel_w);
    c["strides"] = pair(k.stride_h, k.stride_w);
    c["padding"] = k.padding;
    c["data_format"] = "channels_last";
    c["dilation_rate"] = pair(k.dilation_h, k.dilation_w);
    c["activation"] = k.activation;
    c["use_bias"] = k.use_bias;
    c["kernel_initializer"] = k.kernel_initializer;
    c["bias_initializer"] = k.bias_initializer;
    c["kernel_regularizer"] = regularizer(layer, "kernel");
    c["bias_regularizer"] = regularizer(layer, "bias");
  } else if (const auto* l = dynamic_cast<const DepthwiseConv2D*>(&layer)) {
    const DepthwiseConv2DConfig& k = l->config();
    c["depth_multiplier"] = k.depth_multiplier;
    c["kernel_size"] = pair(k.kernel_h, k.kernel_w);
    c["strides"] = pair(k.stride_h, k.stride_w);
    c["padding"] = k.padding;
    c["data_format"] = "channels_last";
    c["dilation_rate"] = pair(k.dilation_h, k.dilation_w);
    c["activation"] = k.activation;
    c["use_bias"] = k.use_bias;
    c["depthwise_initializer"] = k.depthwise_initializer;
    c["bias_initializer"] = k.bias_initializer;
    c["depthwise_regularizer"] = regularizer(layer, "kernel");
    c["bias_regularizer"] = regularizer(layer, "bias");
  } else if (const auto* l = dynamic_cast<const SeparableConv2D*>(&layer)) {
    const SeparableConv2DConfig& k = l->config();
    c["depth_multiplier"] = k.depth_multiplier;
    c["filters"] = k.filters;
    c["kernel_size"] = pair(k.kernel_h, k.kernel_w);
    c["strides"] = pair(k.stride_h, k.stride_w);
    c["padding"] = k.padding;
    c["data_format"] = "channels_last";
    c["dilation_rate"] = pair(k.dilation_h, k.dilation_w);
    c["activation"] = k.activation;
    c["use_bias"] = k.use_bias;
    c["depthwise_initializer"] = k.depthwise_initializer;
    c["pointwise_initializer"] = k.pointwise_initializer;
    c["bias_initializer"] = k.bias_initializer;
    c["depthwise_regularizer"] = regularizer(layer, "depthwise_kernel");
    c["pointwise_regularizer"] = regularizer(layer, "pointwise_kernel");
    c["bias_regularizer"] = regularizer(layer, "bias");
  } else if (dynamic_cast<const MaxPooling2D*>(&layer) || dynamic_cast<const AveragePooling2D*>(&layer)) {
    const auto* mp = dynamic_cast<const MaxPooling2D*>(&layer);
    const Pooling2DConfig& k = mp ? mp->config() : dynamic_cast<const AveragePooling2D&>(layer).config();
    c["pool_size"] = pair(k.pool_h, k.pool_w);
    c["strides"] = pair(k.stride_h.value_or(k.pool_h), k.stride_w.value_or(k.pool_w));
    c["padding"] = k.padding;
    c["data_format"] = "channels_last";
  } else if (cls == "Flatten") {
    c["data_format"] = "channels_last";
  } else if (const auto* l = dynamic_cast<const Dense*>(&layer)) {
    const DenseConfig& k = l->config();
    c["units"] = k.units;
    c["activation"] = k.activation;
    c["use_bias"] = k.use_bias;
    c["kernel_initializer"] = k.kernel_initializer;
    c["bias_initializer"] = k.bias_initializer;
    c["kernel_regularizer"] = regularizer(layer, "kernel");
    c["bias_regularizer"] = regularizer(layer, "bias");
  } else if (const auto* l = dynamic_cast<const Dropout*>(&layer)) {
    const DropoutConfig& k = l->config();
    c["rate"] = float_value(k.rate);
    if (k.noise_shape.empty()) {
      c["noise_shape"] = nullptr;
    } else {
      ojson noise = ojson::array();
      for (auto d : k.noise_shape) noise.push_back(d < 0 ? ojson(nullptr) : ojson(d));
      c["noise_shape"] = noise;
    }
    c["seed"] = k.has_seed ? ojson(k.seed) : ojson(nullptr);
  } else if (const auto* l = dynamic_cast<const BatchNormalization*>(&layer)) {
    const BatchNormalizationConfig& k = l->config();
    c["axis"] = k.axis;
    c["momentum"] = float_value(k.momentum);
    c["epsilon"] = float_value(k.epsilon);
    c["center"] = k.center;
    c["scale"] = k.scale;
    c["beta_initializer"] = k.beta_initializer;
    c["gamma_initializer"] = k.gamma_initializer;
    c["moving_mean_initializer"] = k.moving_mean_initializer;
    c["moving_variance_initializer"] = k.moving_variance_initializer;
    c["beta_regularizer"] = regularizer(layer, "beta");
    c["gamma_regularizer"] = regularizer(layer, "gamma");
  } else if (const auto* l = dynamic_cast<const GlobalPooling2D*>(&layer)) {
    c["data_format"] = "channels_last";
    c["keepdims"] = l->keepdims();
  } else if (const auto* l = dynamic_cast<const ReLU*>(&layer)) {
    const ReLUConfig& k = l->config();
    c["max_value"] = std::isinf(k.max_value) ? ojson(nullptr) : ojson(float_value(k.max_value));
    c["negative_slope"] = float_value(k.negative_slope);
    c["threshold"] = float_value(k.threshold);
  } else if (const auto* l = dynamic_cast<const LeakyReLU*>(&layer)) {
    c["negative_slope"] = float_value(l->alpha());
  } else if (const auto* l = dynamic_cast<const ELU*>(&layer)) {
    c["alpha"] = float_value(l->alpha());
  } else if (const auto* l = dynamic_cast<const Softmax*>(&layer)) {
    c["axis"] = l->axis();
  } else if (const auto* l = dynamic_cast<const ActivationLayer*>(&layer)) {
    c["activation"] = activation_name(l->activation());
  } else if (const auto* l = dynamic_cast<const Rescaling*>(&layer)) {
    c["scale"] = float_value(l->scale());
    c["offset"] = float_value(l->offset());
  } else if (const auto* l = dynamic_cast<const Reshape*>(&layer)) {
    c["target_shape"] = l->target_shape();
  } else if (const auto* l = dynamic_cast<const Resizing*>(&layer)) {
    const ResizingConfig& k = l->config();
    c["height"] = k.height;
    c["width"] = k.width;
    c["interpolation"] = k.interpolation;
    c["crop_to_aspect_ratio"] = k.crop_to_aspect_ratio;
    c["pad_to_aspect_ratio"] = false;
    c["fill_mode"] = "constant";
    c["fill_value"] = 0.0;
    c["data_format"] = "channels_last";
  } else if (const auto* l = dynamic_cast<const RandomFlip*>(&layer)) {
    c["mode"] = l->mode();
    c["seed"] = seed_value(*l);
    c["data_format"] = "channels_last";
  } else if (const auto* l = dynamic_cast<const RandomRotation*>(&layer)) {
    affine_config(*l, c);
    c["factor"] = fpair(l->lower(), l->upper());
  } else if (const auto* l = dynamic_cast<const RandomTranslation*>(&layer)) {
    affine_config(*l, c);
    c["height_factor"] = fpair(l->height_lower(), l->height_upper());
    c["width_factor"] = fpair(l->width_lower(), l->width_upper());
  } else if (const auto* l = dynamic_cast<const RandomZoom*>(&layer)) {
    affine_config(*l, c);
    c["height_factor"] = fpair(l->height_lower(), l->height_upper());
    c["width_factor"] = l->has_width() ? fpair(l->width_lower(), l->width_upper()) : ojson(nullptr);
  } else if (const auto* l = dynamic_cast<const RandomContrast*>(&layer)) {
    c["factor"] = fpair(l->lower(), l->upper());
    c["value_range"] = fpair(l->value_min(), l->value_max());
    c["seed"] = seed_value(*l);
  } else if (const auto* l = dynamic_cast<const Concatenate*>(&layer)) {
    c["axis"] = l->axis();
  } else if (!dynamic_cast<const Merge*>(&layer)) {
    throw ValueError("save: layer '" + layer.name() + "' of class " + cls +
                     " has no model-file configuration; cnnx cannot save it");
  }
  return c;
}

}  // namespace cnnx::io
