#include "io/model_contents.hpp"

#include <cstring>
#include <stdexcept>
#include <unordered_map>

#include "cnnx/error.hpp"
#include "io/compile_config.hpp"
#include "io/config_check.hpp"
#include "io/layer_config.hpp"
#include "io/model_config.hpp"

namespace cnnx::io {
namespace {

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

Tensor to_tensor(const FileTensor& t) {
  Tensor out(t.shape);
  if (out.size()) std::memcpy(out.data(), t.data.data(), sizeof(float) * static_cast<std::size_t>(out.size()));
  return out;
}

FileTensor from_tensor(std::string name, const Tensor& t) {
  FileTensor out{std::move(name), t.shape(), {}};
  out.data.assign(t.data(), t.data() + t.size());
  return out;
}

// The configuration checks (config_check.hpp) make every access the builders make valid; should one slip
// through, it still comes out as a cnnx::ValueError, never as the JSON library's exception.
template <class F>
auto config_errors_as_value_errors(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const json::exception& e) {
    throw ValueError(std::string("the saved configuration is invalid (") + e.what() + ")");
  } catch (const std::out_of_range& e) {
    throw ValueError(std::string("the saved configuration is invalid (") + e.what() + ")");
  }
}

std::unique_ptr<Model> load(const ModelFileContents& contents, const LoadOptions& options) {
  const CheckedMetadata meta = check_model_metadata(contents.metadata, options.compile);
  std::unordered_map<std::string, const FileTensor*> tensors;
  std::int64_t held = 0;  // the config may not ask for more weights than the file holds
  for (const auto& t : contents.tensors) {
    tensors[t.name] = &t;
    if (t.name.rfind("weights/", 0) == 0) held = checked_add(held, static_cast<std::int64_t>(t.data.size()));
  }
  // Compile arguments are checked before anything is built.
  std::optional<CompileFromConfig> compiled;
  if (meta.compile_config) compiled = compile_from_config(*meta.compile_config);

  std::unique_ptr<Model> model = model_from_config(meta.model_config, meta.format_version, held);
  if (meta.class_names) model->set_class_names(*meta.class_names);
  for (const auto& layer : model->layers()) {
    std::vector<std::string> missing;
    for (const auto& p : layer->params())
      if (!tensors.count("weights/" + layer->name() + "/" + p.name)) missing.push_back(p.name);
    if (!missing.empty()) throw ValueError("no weights for layer '" + layer->name() + "' (" + join(missing) + ")");
    for (auto& p : layer->params()) {
      const FileTensor& t = *tensors["weights/" + layer->name() + "/" + p.name];
      if (t.shape != p.value.shape())
        throw ValueError("layer '" + layer->name() + "' (" + layer->class_name() + "): expected weight '" + p.name +
                         "' of shape " + shape_str(p.value.shape()) + ", received " + shape_str(t.shape));
      if (p.value.size())
        std::memcpy(p.value.data(), t.data.data(), sizeof(float) * static_cast<std::size_t>(p.value.size()));
    }
  }
  if (compiled) {
    compile_model(*model, *compiled);
    Optimizer& opt = model->optimizer();
    opt.iterations = meta.optimizer_iterations;
    bool any = false;
    for (const auto& t : contents.tensors) any = any || t.name.rfind("optimizer/", 0) == 0;
    if (any) {
      std::vector<std::vector<Tensor>> slots;
      for (const auto& [layer, weight] : trainable_param_names(*model)) {
        std::vector<Tensor> per_param;
        for (int i = 0;; ++i) {
          auto it = tensors.find("optimizer/" + layer + "/" + weight + "/" + std::to_string(i));
          if (it == tensors.end()) break;
          per_param.push_back(to_tensor(*it->second));
        }
        slots.push_back(std::move(per_param));
      }
      opt.set_slots(model->trainable_params(), std::move(slots));
    }
  }
  return model;
}

}  // namespace

std::unique_ptr<Model> model_from_contents(const ModelFileContents& contents, const LoadOptions& options) {
  return config_errors_as_value_errors([&] { return load(contents, options); });
}

ModelFileContents model_contents(const Model& model) {
  ModelFileContents out;
  const auto [config, version] = model_config(model);
  out.metadata["contents"] = "model";
  out.metadata["format_version"] = version;
  out.metadata["model_config"] = python_dumps(config);
  if (!model.class_names().empty()) out.metadata["class_names"] = python_dumps(ojson(model.class_names()));
  for (const auto& layer : model.layers())
    for (const auto& p : layer->params())
      out.tensors.push_back(from_tensor("weights/" + layer->name() + "/" + p.name, p.value));
  if (model.compiled()) {
    out.metadata["compile_config"] = python_dumps(compile_config(model));
    const Optimizer& opt = model.optimizer();
    out.metadata["optimizer_iterations"] = std::to_string(opt.iterations);
    const auto names = trainable_param_names(model);
    const auto& slots = opt.slots();
    if (!slots.empty()) {
      if (slots.size() != names.size())
        throw ValueError("save: the optimizer holds state for " + std::to_string(slots.size()) +
                         " weights, the model trains " + std::to_string(names.size()) +
                         " (compile the model again after changing trainable)");
      for (std::size_t i = 0; i < slots.size(); ++i)
        for (std::size_t k = 0; k < slots[i].size(); ++k)
          out.tensors.push_back(from_tensor(
              "optimizer/" + names[i].first + "/" + names[i].second + "/" + std::to_string(k), slots[i][k]));
    }
  }
  return out;
}

void check_metadata(const std::map<std::string, std::string>& metadata, bool compile) {
  config_errors_as_value_errors([&] { check_model_metadata(metadata, compile); });
}

std::vector<std::string> layer_classes() { return layer_class_names(); }

void rethrow_for_file(const std::string& name) {
  const std::string where = name + ": ";
  try {
    throw;
  } catch (const TypeError& e) {
    throw TypeError(where + e.what());
  } catch (const Error& e) {
    throw ValueError(where + e.what());
  }
}

}  // namespace cnnx::io
