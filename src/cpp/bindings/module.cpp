// PYBIND11_MODULE(_core): numpy <-> raw pointers, exceptions, GIL release. No math here.
// Arrays arrive already validated and converted by the Python layer (float32, C-contiguous);
// the checks below are the last line of defence so that a direct _core call cannot crash.
//
// Locking rule. A Sequential ("Model" below) runs its steps without the GIL, so Python threads
// can drive one model concurrently (fit in one thread, predict / save / get_weights in others).
// Every method of the Sequential binding does its work on the model under the model's mutex,
// one acquisition per call, so each call sees the model between two steps: a snapshot() taken
// while fit runs holds the weights, optimizer slots and iteration count of one step boundary.
// Two rules keep this deadlock-free:
//   - never wait for the mutex while holding the GIL: release it first (locked() below);
//   - never touch Python (or wait for the GIL) while holding the mutex: numpy inputs are
//     copied or read through plain pointers, outputs are copied into C++ buffers under the lock
//     and turned into numpy arrays after unlocking.
// predict is the exception: it takes the mutex shared (a reader) and runs on an inference
// context of its own (Model::make_inference_context), so several Python threads predict with one
// model at once, while every other call (a step, set_weights, compile) excludes them.
// The Layer bindings have no lock: a layer alone belongs to nobody. For a layer inside a model,
// python/cnnx/layers.py routes get_weights / set_weights / __call__ through the model's
// get_layer_weights / set_layer_weights / layer_forward, which take the model's lock.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <system_error>

#include "bindings/os_errors.hpp"
#include "cnnx/cnnx.hpp"
#include "cnnx/model_file.hpp"
#include "io/model_contents.hpp"
#include "kernels/gemm.hpp"
#include "kernels/peak_probe.hpp"
// The concrete layer classes (private headers): the bindings construct them and expose
// their plans and parameters to Python.
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

namespace py = pybind11;
using namespace cnnx;

namespace cnnx {
void bind_model_file(py::module_& m);  // bindings/model_file.cpp
}

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
using IndexArray = py::array_t<std::int64_t, py::array::c_style>;

Shape array_shape(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

FloatArray as_float_array(const py::handle& obj, const std::string& what) {
  if (!py::isinstance<FloatArray>(obj))
    throw TypeError(what + ": expected a C-contiguous float32 numpy array, received " +
                    std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<FloatArray>(obj);
}

FloatArray to_numpy(const Tensor& t) {
  FloatArray out(t.shape());
  std::memcpy(out.mutable_data(), t.data(), sizeof(float) * t.size());
  return out;
}

py::list to_numpy(const std::vector<Tensor>& ts) {
  py::list out;
  for (const auto& t : ts) out.append(to_numpy(t));
  return out;
}

// Copies of numpy arrays, made while holding the GIL so that the model's lock can be taken
// without it.
std::vector<Tensor> to_tensors(const py::handle& arrays, const std::string& what) {
  std::vector<Tensor> out;
  for (const auto& a : arrays) {
    FloatArray arr = as_float_array(a, what);
    Tensor t(array_shape(arr));
    if (t.size()) std::memcpy(t.data(), arr.data(), sizeof(float) * t.size());
    out.push_back(std::move(t));
  }
  return out;
}

std::vector<Tensor> copy_weights(const Layer& layer) {
  std::vector<Tensor> out;
  for (const auto& p : layer.params()) out.push_back(p.value);
  return out;
}

// Checks every array of `weights` against the layer's parameters, then copies them in; nothing
// is written unless all match.
void check_weights(const Layer& layer, const std::vector<Tensor>& weights) {
  const auto& params = layer.params();
  const std::string where = layer.class_name() + " '" + layer.name() + "'";
  if (!layer.built()) throw ValueError(where + ": set_weights() called before the layer was built");
  if (weights.size() != params.size())
    throw ValueError(where + ": expected a list of " + std::to_string(params.size()) + " weight arrays, received " +
                     std::to_string(weights.size()));
  for (std::size_t i = 0; i < params.size(); ++i)
    if (weights[i].shape() != params[i].value.shape())
      throw ValueError(where + ": expected " + params[i].name + " of shape " + shape_str(params[i].value.shape()) +
                       ", received " + shape_str(weights[i].shape()));
}

void assign_weights(Layer& layer, const std::vector<Tensor>& weights) {
  auto& params = layer.params();
  for (std::size_t i = 0; i < params.size(); ++i)
    if (params[i].value.size())
      std::memcpy(params[i].value.data(), weights[i].data(), sizeof(float) * weights[i].size());
}

// A model plus its lock (see the locking rule at the top of this file). `who` names the
// Python class in messages.
struct ModelHandle {
  ModelHandle(std::unique_ptr<Model> m, const char* name) : model(std::move(m)), who(name) {}
  virtual ~ModelHandle() = default;
  std::unique_ptr<Model> model;
  std::shared_mutex mutex;
  const char* who;
  // Inference contexts not in use by a predict call; taken and given back under pool_mutex.
  std::mutex pool_mutex;
  std::vector<std::unique_ptr<InferenceContext>> contexts;
  // train_step / test_step also return (y_pred, y_true, sample_weight) of the batch, for the
  // metrics computed in Python (set_return_outputs).
  bool return_outputs = false;

  // Called with `mutex` held shared or exclusive. A context made before the model was last
  // re-planned is dropped.
  std::unique_ptr<InferenceContext> take_context() {
    {
      std::lock_guard<std::mutex> lock(pool_mutex);
      while (!contexts.empty()) {
        auto ctx = std::move(contexts.back());
        contexts.pop_back();
        if (model->context_is_current(*ctx)) return ctx;
      }
    }
    return model->make_inference_context();
  }
  void give_back(std::unique_ptr<InferenceContext> ctx) {
    std::lock_guard<std::mutex> lock(pool_mutex);
    contexts.push_back(std::move(ctx));
  }
};
struct DataParallelHandle {
  DataParallelHandle(ModelHandle* m, std::unique_ptr<DataParallelStep> s) : model(m), step(std::move(s)) {}
  ModelHandle* model;  // kept alive by the Python object (keep_alive)
  std::unique_ptr<DataParallelStep> step;
};
struct SequentialHandle : ModelHandle {
  SequentialHandle() : ModelHandle(std::make_unique<Sequential>(), "Sequential") {}
  Sequential& seq() { return static_cast<Sequential&>(*model); }
};

// The model whose lock this thread holds, if any. A Python loss runs inside a step, under the
// lock: if it called back into the same model, that call would wait for the lock forever, so
// locked() refuses it with an error instead.
thread_local const ModelHandle* t_holding = nullptr;

struct Holding {
  explicit Holding(const ModelHandle& m) : previous(t_holding) { t_holding = &m; }
  ~Holding() { t_holding = previous; }
  const ModelHandle* previous;
};

void refuse_reentry(const ModelHandle& m) {
  if (t_holding == &m)
    throw std::runtime_error(std::string(m.who) +
                             ": the model was used from inside its own training or evaluation step (a Python "
                             "loss or metric calling the model); use the model only outside its steps");
}

// f() on the model under its lock, the GIL released while waiting and running. f must not
// touch Python objects (a Python loss takes the GIL back: see PythonLoss); exceptions leave
// through the lock and the GIL as usual.
template <class F>
auto locked(ModelHandle& m, F&& f) -> decltype(f()) {
  refuse_reentry(m);
  py::gil_scoped_release release;
  std::unique_lock<std::shared_mutex> lock(m.mutex);
  Holding holding(m);
  return f();
}

// The same for readers that may run together (predict).
template <class F>
auto shared_locked(ModelHandle& m, F&& f) -> decltype(f()) {
  refuse_reentry(m);
  py::gil_scoped_release release;
  std::shared_lock<std::shared_mutex> lock(m.mutex);
  Holding holding(m);
  return f();
}

// A loss written in Python (cnnx.losses: a Loss subclass or a plain function). compute() takes
// the GIL back and calls `fn(y_true, y_pred, sample_weight, need_grad)`, which returns the
// reduced loss and, when asked, dL/dy_pred of that loss (float32, y_pred's shape). It runs
// inside a step, under the model's lock: safe because no thread waits for that lock while
// holding the GIL (locked() releases the GIL first, and so does save_model's with_os_errors). A Python
// exception leaves compute as error_already_set, before backward and the update: the weights
// are those of the last completed step, and Python sees its own exception.
class PythonLoss : public Loss {
 public:
  PythonLoss(py::object fn, std::string name) : fn_(std::move(fn)), name_(std::move(name)) {}
  ~PythonLoss() override {
    if (!Py_IsInitialized()) {  // at interpreter exit: nothing left to release
      fn_.release();
      return;
    }
    py::gil_scoped_acquire gil;  // the model may be destroyed or recompiled without the GIL
    fn_ = py::object();
  }

  std::string name() const override { return name_; }
  bool sparse_targets() const override { return sparse_; }

  // The core's accuracy reads the targets as one value per output (dense) or one class index per
  // output row (sparse): those are the target shapes a Python loss may have.
  void check_targets(const Shape& out, std::int64_t received) const override {
    const std::int64_t size = shape_size(out), classes = out.empty() ? 1 : out.back();
    if (received != size && !(classes > 1 && received * classes == size))
      throw ValueError(name_ + ": expected targets with " + std::to_string(size) +
                       " values per sample (the model output " + shape_str(out) + ") or " +
                       std::to_string(size / classes) + " class index(es) per sample, received " +
                       std::to_string(received));
    output_shape_ = out;
    target_dim_ = received;
    sparse_ = received != size;
  }

  double compute(const float* out, const float* target, const float* row_weight, std::int64_t rows,
                 std::int64_t classes, float* grad, bool) const override {
    const std::int64_t per = shape_size(output_shape_) / classes;  // output rows per sample
    const std::int64_t n = rows / per;
    if (sparse_)  // the core's accuracy indexes outputs by these labels: check them first
      for (std::int64_t i = 0; i < rows; ++i)
        if (!(target[i] >= 0.0f) || target[i] >= float(classes) || target[i] != std::floor(target[i]))
          throw ValueError(name_ + ": expected integer labels in [0, " + std::to_string(classes - 1) + "], received " +
                           std::to_string(target[i]));
    py::gil_scoped_acquire gil;
    const Shape pred_shape = with_batch(n, output_shape_);
    FloatArray y_pred(pred_shape);
    std::memcpy(y_pred.mutable_data(), out, sizeof(float) * rows * classes);
    Shape true_shape = sparse_ ? with_batch(n, Shape(output_shape_.begin(), output_shape_.end() - 1)) : pred_shape;
    FloatArray y_true(true_shape);
    std::memcpy(y_true.mutable_data(), target, sizeof(float) * n * target_dim_);
    py::object w = py::none();
    if (row_weight) {
      FloatArray wa({n});
      for (std::int64_t i = 0; i < n; ++i) wa.mutable_data()[i] = row_weight[i * per];
      w = wa;
    }
    py::tuple r = fn_(y_true, y_pred, w, grad != nullptr);
    const double loss = r[0].cast<double>();
    if (grad) {
      FloatArray g = py::cast<FloatArray>(r[1]);
      if (g.size() != rows * classes)
        throw ValueError(name_ + ": expected a gradient with " + std::to_string(rows * classes) + " values, received " +
                         std::to_string(g.size()));
      std::memcpy(grad, g.data(), sizeof(float) * rows * classes);
    }
    return loss;
  }

 private:
  py::object fn_;
  std::string name_;
  // What the current step's targets look like (check_targets runs first in every step, under
  // the same lock): one PythonLoss belongs to one model (compile makes a new one).
  mutable Shape output_shape_;
  mutable std::int64_t target_dim_ = 0;
  mutable bool sparse_ = false;
};

// What a step returns: the loss and accuracy counts, then with return_outputs the batch's
// (y_pred, y_true, sample_weight) copied under the lock.
struct StepOutputs {
  StepResult r;
  std::vector<float> pred, truth, weight;
};

py::tuple step_tuple(const StepOutputs& o, const Shape& pred_shape, const Shape& true_shape, bool outputs,
                     bool weighted) {
  py::tuple base = py::make_tuple(o.r.loss, o.r.correct, o.r.rows, o.r.top_k_correct);
  if (!outputs) return base;
  auto array = [](const std::vector<float>& v, const Shape& shape) {
    FloatArray a(shape);
    if (!v.empty()) std::memcpy(a.mutable_data(), v.data(), sizeof(float) * v.size());
    return a;
  };
  py::object w = weighted ? py::object(array(o.weight, {static_cast<std::int64_t>(o.weight.size())})) : py::none();
  return py::make_tuple(o.r.loss, o.r.correct, o.r.rows, o.r.top_k_correct,
                        py::make_tuple(array(o.pred, pred_shape), array(o.truth, true_shape), w));
}

// Copies of b's targets and weights (under the lock).
void copy_step_targets(const Batch& b, StepOutputs& o) {
  o.truth.resize(static_cast<std::size_t>(b.n * b.target_dim));
  for (std::int64_t i = 0; i < b.n; ++i) {
    const std::int64_t k = b.index ? b.index[i] : i;
    std::memcpy(o.truth.data() + i * b.target_dim, b.y + k * b.target_dim, sizeof(float) * b.target_dim);
    if (b.sample_weight) o.weight.push_back(b.sample_weight[k]);
  }
}

// Under the lock, after a step on b: copies of its outputs, targets and weights.
void copy_step_outputs(const Model& model, const Batch& b, StepOutputs& o) {
  const float* out = model.last_step_output();
  o.pred.assign(out, out + b.n * model.output_size());
  copy_step_targets(b, o);
}

// The plain facts of a numpy array that a step reads without the GIL.
struct ArrayView {
  const float* data;
  Shape shape;
  std::int64_t size;
};
ArrayView view(const FloatArray& a) { return {a.data(), array_shape(a), static_cast<std::int64_t>(a.size())}; }

// Called under the model's lock (it reads the model's input shape).
Batch make_batch(const Model& seq, const ArrayView& x, const ArrayView& y, std::int64_t n, const std::string& who) {
  if (!seq.built()) throw ValueError(who + ": build the model before training or evaluating it");
  const Shape& xs = x.shape;
  const Shape expect = with_batch(xs.empty() ? 0 : xs[0], seq.input_shape());
  if (xs != expect)
    throw ValueError(who + ": expected x of shape " + shape_str(expect) + ", received " + shape_str(xs));
  if (y.shape.empty() || y.shape[0] != xs[0])
    throw ValueError(who + ": expected y with " + std::to_string(xs[0]) + " samples, received " +
                     (y.shape.empty() ? std::string("a scalar") : std::to_string(y.shape[0])));
  Batch b;
  b.x = x.data;
  b.y = y.data;
  b.count = xs[0];
  b.target_dim = b.count > 0 ? y.size / b.count : 0;
  b.n = n;
  return b;
}

Layer& find_layer(Model& seq, const Layer* layer) {
  for (const auto& l : seq.layers())
    if (l.get() == layer) return *l;
  throw ValueError("Sequential: layer '" + layer->name() + "' is not in this model");
}

// One layer's forward on a batch (inspection, Layer.__call__). A layer inside a model runs under
// the model's lock, since its workspaces are the ones the model's steps use.
FloatArray layer_forward(Layer& l, const FloatArray& x, bool training, ModelHandle* owner) {
  if (!l.built()) throw ValueError(l.name() + ": build the layer before calling it");
  Shape xs = array_shape(x);
  const Shape expect = with_batch(xs.empty() ? 0 : xs[0], l.input_shape());
  if (xs != expect)
    throw ValueError(l.class_name() + " '" + l.name() + "': expected input of shape " + shape_str(expect) +
                     ", received " + shape_str(xs));
  FloatArray y(with_batch(xs[0], l.output_shape()));
  float* yp = y.mutable_data();
  const float* xp = x.data();
  auto run = [&] {
    l.reserve(xs[0]);
    l.forward(xp, yp, xs[0], training);
  };
  if (owner) {
    locked(*owner, [&] {
      find_layer(*owner->model, &l);
      run();
    });
  } else {
    py::gil_scoped_release release;
    run();
  }
  return y;
}

// The batch size of a list of inputs for a multi-input layer, after checking each array against
// the built layer's input shapes (one batch size for all).
std::int64_t check_inputs(const Layer& l, const std::vector<FloatArray>& xs, const char* what) {
  const std::string where = l.class_name() + " '" + l.name() + "'";
  if (!l.built()) throw ValueError(where + ": build the layer before calling " + what);
  const auto& shapes = l.input_shapes();
  if (xs.size() != shapes.size())
    throw ValueError(where + ": " + what + " expected a list of " + std::to_string(shapes.size()) +
                     " input arrays, received " + std::to_string(xs.size()));
  const std::int64_t n = xs.front().ndim() ? xs.front().shape(0) : 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const Shape expect = with_batch(n, shapes[i]);
    if (array_shape(xs[i]) != expect)
      throw ValueError(where + ": " + what + " expected input " + std::to_string(i) + " of shape " + shape_str(expect) +
                       ", received " + shape_str(array_shape(xs[i])));
  }
  return n;
}

// A Conv2D's plan as the dict that _core.Layer.plan returns (cnnx.planning reads it).
py::dict plan_dict(const Conv2DPlan& p) {
  py::dict d;
  d["algorithm"] = conv_algorithm_name(p.forward);
  d["forward"] = conv_algorithm_name(p.forward);
  d["weight_grad"] = conv_algorithm_name(p.weight_grad);
  d["input_grad"] = conv_algorithm_name(p.input_grad);
  d["bias_grad"] = bias_grad_route_name(p.bias_grad);
  d["shared_padded_dz"] = p.shared_padded_dz;
  d["single_chunk"] = p.single_chunk();
  d["isa"] = p.isa_name;
  d["threads"] = p.threads;
  d["batch_size"] = p.batch;
  d["chunk_images"] = p.chunk_images;
  d["chunks"] = p.chunks;
  d["groups"] = p.groups;
  d["workspace_floats"] = p.workspace_floats();
  return d;
}

// What Layer.plan reports: the plan of a Conv2D (computed, nothing allocated), empty otherwise.
std::optional<Conv2DPlan> layer_plan(const Layer& l, std::int64_t batch) {
  if (!l.built()) throw ValueError(l.class_name() + " '" + l.name() + "': build the layer before planning it");
  if (batch <= 0)
    throw ValueError(l.class_name() + " '" + l.name() + "': expected batch_size >= 1, received " +
                     std::to_string(batch));
  if (const auto* conv = dynamic_cast<const Conv2D*>(&l)) return conv->make_plan(batch);
  return std::nullopt;
}

ConvAlgorithm parse_algorithm(const std::string& name, const std::string& who) {
  for (auto a :
       {ConvAlgorithm::none, ConvAlgorithm::im2col_gemm, ConvAlgorithm::implicit_gemm, ConvAlgorithm::direct_1x1})
    if (name == (a == ConvAlgorithm::none ? "auto" : conv_algorithm_name(a))) return a;
  throw ValueError(who + ": expected 'auto', 'im2col_gemm', 'implicit_gemm' or 'direct_1x1', received '" + name + "'");
}

// Optional per-sample weights: None, or a float32 array with one weight per row of x.
const float* sample_weights(const py::object& w, std::int64_t count) {
  if (w.is_none()) return nullptr;
  FloatArray a = as_float_array(w, "sample_weight");
  if (a.ndim() != 1 || a.shape(0) != count)
    throw ValueError("Sequential: expected sample_weight of shape (" + std::to_string(count) + ",), received " +
                     shape_str(array_shape(a)));
  return a.data();
}

// Rows of x: the leading dimension, 0 for a scalar (make_batch then reports the shape).
std::int64_t rows_of(const FloatArray& x) { return x.ndim() ? x.shape(0) : 0; }
std::int64_t rows_of_shape(const Shape& s) { return s.empty() ? 0 : s[0]; }

// The output shape for input x, after checking that the model is built and x has its input
// shape (under the model's lock); `doing` completes "build the model before ...".
Shape output_shape_for(ModelHandle& s, const ArrayView& xv, const char* doing) {
  return locked(s, [&] {
    if (!s.model->built()) throw ValueError(std::string(s.who) + ": build the model before " + doing);
    const Shape expect = with_batch(rows_of_shape(xv.shape), s.model->input_shape());
    if (xv.shape != expect)
      throw ValueError(std::string(s.who) + ": expected x of shape " + shape_str(expect) + ", received " +
                       shape_str(xv.shape));
    return with_batch(xv.shape[0], s.model->output_shape());
  });
}

// The core's messages speak C++: where a Python user passes None, a C++ user passes -1 (a
// Dropout noise_shape entry) or infinity (ReLU's max_value), and there is no to_categorical.
// These phrases are put back in Python's words before the message becomes a Python exception.
std::string python_words(std::string message) {
  static const std::pair<std::string, std::string> phrases[] = {
      {"max_value >= 0 (infinity: no limit)", "max_value >= 0 or None"},
      {"positive or -1 (the input's size)", "positive or None"},
      {"to be -1, 1 or ", "to be None, 1 or "},
      {"(or -1 / 1 for any batch)", "(or None / 1 for any batch)"},
      {"or one-hot encode them", "or cnnx.utils.to_categorical"},
  };
  for (const auto& [cpp, python] : phrases)
    for (auto at = message.find(cpp); at != std::string::npos; at = message.find(cpp, at + python.size()))
      message.replace(at, cpp.size(), python);
  // noise_shape=(-1, 1, 1, 8) -> noise_shape=(None, 1, 1, 8)
  static const std::string key = "noise_shape=(";
  for (auto at = message.find(key); at != std::string::npos; at = message.find(key, at + 1)) {
    const auto open = at + key.size() - 1, close = message.find(')', open);
    if (close == std::string::npos) break;
    std::string dims;
    for (auto i = open; i < close; ++i) {
      dims += message[i];
      const bool starts_entry = message[i] == '(' || message[i] == ' ';
      if (starts_entry && message.compare(i + 1, 2, "-1") == 0 && (message[i + 3] == ',' || message[i + 3] == ')')) {
        dims += "None";
        i += 2;
      }
    }
    message.replace(open, close - open, dims);
  }
  return message;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "cnnx compiled core (private; use the cnnx package)";
  m.attr("__version__") = CNNX_VERSION;  // from CMakeLists.txt's project(), the one place it is written

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const cnnx::TypeError& e) {
      PyErr_SetString(PyExc_TypeError, python_words(e.what()).c_str());
    } catch (const cnnx::IndexError& e) {
      PyErr_SetString(PyExc_IndexError, python_words(e.what()).c_str());
    } catch (const cnnx::Error& e) {
      PyErr_SetString(PyExc_ValueError, python_words(e.what()).c_str());
    }
  });

  bind_model_file(m);
  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.attr("MAX_THREADS") = kMaxThreads;
  m.def("get_num_threads", &get_num_threads);
  m.def("set_random_seed", [](std::uint64_t s) { set_random_seed(s); }, py::arg("seed"));
  m.def(
      "peak_gflops",
      [](int threads, double seconds) {
        if (threads < 1 || !(seconds > 0.0)) throw ValueError("peak_gflops: expected threads >= 1 and seconds > 0");
        py::gil_scoped_release release;
        return kernels::measure_peak_gflops(threads, seconds);
      },
      py::arg("threads"), py::arg("seconds") = 0.5);
  m.def("next_seed", [] { return next_seed(); });
  m.def("get_isa", [] { return std::string(kernels::isa_name(kernels::active_isa())); });
  m.def("best_isa", [] { return std::string(kernels::isa_name(kernels::best_supported_isa())); });
  m.def(
      "set_isa",
      [](const std::string& name) {
        for (auto isa : {kernels::Isa::generic, kernels::Isa::avx2, kernels::Isa::avx512})
          if (name == kernels::isa_name(isa)) return kernels::set_isa(isa);
        throw ValueError("set_isa: expected 'avx512', 'avx2' or 'generic', received '" + name + "'");
      },
      py::arg("isa"));

  // C = epi(beta * C + A @ B) through the blocked GEMM or the reference, transposes via
  // strides (tests). `c` given: beta = 1 onto a copy of it; bias/relu: the GEMM epilogue.
  auto bind_gemm = [&m](const char* name, bool ref) {
    m.def(
        name,
        [ref](const FloatArray& a, const FloatArray& b, bool trans_a, bool trans_b, std::optional<FloatArray> c0,
              std::optional<FloatArray> bias, bool relu) {
          if (a.ndim() != 2 || b.ndim() != 2) throw ValueError("gemm: expected 2-D arrays");
          const std::int64_t m_ = trans_a ? a.shape(1) : a.shape(0), k = trans_a ? a.shape(0) : a.shape(1);
          const std::int64_t kb = trans_b ? b.shape(1) : b.shape(0), n = trans_b ? b.shape(0) : b.shape(1);
          if (k != kb)
            throw ValueError("gemm: inner dimensions differ: " + std::to_string(k) + " vs " + std::to_string(kb));
          if (c0 && (c0->ndim() != 2 || c0->shape(0) != m_ || c0->shape(1) != n))
            throw ValueError("gemm: expected c of shape (" + std::to_string(m_) + ", " + std::to_string(n) + ")");
          if (bias && (bias->ndim() != 1 || bias->shape(0) != n))
            throw ValueError("gemm: expected bias of shape (" + std::to_string(n) + ",)");
          FloatArray c({m_, n});
          const std::int64_t rs_a = trans_a ? 1 : a.shape(1), cs_a = trans_a ? a.shape(1) : 1;
          const std::int64_t rs_b = trans_b ? 1 : b.shape(1), cs_b = trans_b ? b.shape(1) : 1;
          float* cp = c.mutable_data();
          if (c0) std::copy(c0->data(), c0->data() + c0->size(), cp);
          const float beta = c0 ? 1.0f : 0.0f;
          kernels::GemmEpilogue ep;
          ep.bias = bias ? bias->data() : nullptr;
          ep.relu = relu;
          {
            py::gil_scoped_release release;
            if (ref) {
              kernels::gemm_ref(m_, n, k, a.data(), rs_a, cs_a, b.data(), rs_b, cs_b, beta, cp, n);
              for (std::int64_t i = 0; i < m_ * n; ++i) {
                if (ep.bias) cp[i] += ep.bias[i % n];
                if (relu) cp[i] = cp[i] > 0.0f ? cp[i] : 0.0f;
              }
            } else {
              kernels::gemm(m_, n, k, a.data(), rs_a, cs_a, b.data(), rs_b, cs_b, beta, cp, n, ep);
            }
          }
          return c;
        },
        py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false, py::arg("c") = py::none(),
        py::arg("bias") = py::none(), py::arg("relu") = false);
  };
  bind_gemm("gemm", false);
  bind_gemm("gemm_ref", true);

  py::class_<Layer, std::shared_ptr<Layer>>(m, "Layer")
      .def_property_readonly("name", &Layer::name)
      .def_property_readonly("class_name", &Layer::class_name)
      .def_property_readonly("built", &Layer::built)
      .def_property_readonly("input_shape", &Layer::input_shape)
      .def_property_readonly("output_shape", &Layer::output_shape)
      .def(
          "build",
          [](Layer& l, const Shape& s, std::uint64_t seed, std::int64_t max_param_floats) {
            if (max_param_floats < -1)
              throw ValueError(l.class_name() + " '" + l.name() +
                               "': expected max_param_floats >= 0 or -1 (no limit), received " +
                               std::to_string(max_param_floats));
            return l.build(s, seed, max_param_floats);
          },
          py::arg("input_shape"), py::arg("seed"), py::arg("max_param_floats") = -1)
      .def("count_params", &Layer::count_params)
      // Plans (cnnx.planning): the scratch floats a batch needs and the route a Conv2D takes
      // for it, computed without allocating; what the layer holds now; reserve() as the model
      // calls it.
      .def(
          "workspace_floats",
          [](const Layer& l, std::int64_t batch) {
            layer_plan(l, batch);  // the checks
            return l.workspace_floats(batch);
          },
          py::arg("batch_size"))
      .def("allocated_workspace_floats", &Layer::allocated_workspace_floats)
      .def(
          "plan",
          [](const Layer& l, std::int64_t batch) {
            const auto p = layer_plan(l, batch);
            return p ? plan_dict(*p) : py::dict();
          },
          py::arg("batch_size"))
      .def(
          "reserve",
          [](Layer& l, std::int64_t batch) {
            layer_plan(l, batch);
            py::gil_scoped_release release;
            l.reserve(batch);
          },
          py::arg("batch_size"))
      .def_property("trainable", &Layer::trainable, &Layer::set_trainable)
      .def_property_readonly("input_shapes", &Layer::input_shapes)
      .def("weight_names",
           [](Layer& l) {
             std::vector<std::string> out;
             for (auto& p : l.params()) out.push_back(p.name);
             return out;
           })
      .def("set_regularizer", &Layer::set_regularizer, py::arg("weight"), py::arg("l1"), py::arg("l2"))
      .def("weight_trainable",
           [](Layer& l) {
             std::vector<bool> out;
             for (auto& p : l.params()) out.push_back(p.trainable);
             return out;
           })
      .def("get_weights", [](const Layer& l) { return to_numpy(copy_weights(l)); })
      .def("set_weights",
           [](Layer& l, const py::list& weights) {
             std::vector<Tensor> w = to_tensors(weights, l.name() + ".set_weights");
             check_weights(l, w);
             assign_weights(l, w);
           })
      .def("get_gradients",
           [](Layer& l) {
             py::list out;
             for (const auto& p : l.params()) out.append(to_numpy(p.grad));
             return out;
           })
      // Forward / backward of this layer alone on a batch (tests and inspection).
      .def(
          "forward",
          [](Layer& l, const FloatArray& x, bool training) { return layer_forward(l, x, training, nullptr); },
          py::arg("x"), py::arg("training") = false)
      // Median-free raw timing of this layer inside C++ (benchmarks): seconds per call of
      // forward, or of forward + backward, on a batch shaped like x. No Python in the loop.
      .def(
          "time_step",
          [](Layer& l, const FloatArray& x, int repeats, bool backward, bool need_dx) {
            if (!l.built()) throw ValueError(l.name() + ": build the layer before timing it");
            const std::int64_t n = x.ndim() ? x.shape(0) : 0;
            if (n <= 0 || x.size() != checked_mul(n, shape_size(l.input_shape())) || repeats < 1)
              throw ValueError(l.name() + ": time_step expects a batch shaped like the layer input and repeats >= 1");
            const std::int64_t out_size = checked_mul(n, shape_size(l.output_shape()));
            Buffer y(out_size), dy(out_size), dx(x.size());
            for (std::int64_t i = 0; i < dy.size(); ++i) dy.data()[i] = float((i * 7919) % 13) * 0.01f - 0.06f;
            py::gil_scoped_release release;
            l.reserve(n);
            auto once = [&] {
              l.forward(x.data(), y.data(), n, backward);
              if (backward) l.backward(x.data(), y.data(), dy.data(), need_dx ? dx.data() : nullptr, n);
            };
            once();
            const auto t0 = std::chrono::steady_clock::now();
            for (int r = 0; r < repeats; ++r) once();
            return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
          },
          py::arg("x"), py::arg("repeats"), py::arg("backward"), py::arg("need_dx") = true)
      .def_property_readonly("input_shapes", &Layer::input_shapes)
      .def_property_readonly("min_inputs", &Layer::min_inputs)
      .def_property_readonly("max_inputs", &Layer::max_inputs)
      // The general build: one shape per input (merge layers).
      .def(
          "build_inputs",
          [](Layer& l, const std::vector<Shape>& shapes, std::uint64_t seed, std::int64_t max_param_floats) {
            if (max_param_floats < -1)
              throw ValueError(l.class_name() + " '" + l.name() +
                               "': expected max_param_floats >= 0 or -1 (no limit), received " +
                               std::to_string(max_param_floats));
            return l.build(shapes, seed, max_param_floats);
          },
          py::arg("input_shapes"), py::arg("seed"), py::arg("max_param_floats") = -1)
      // forward / backward through the several-input forms (merge layers; tests and eager calls).
      .def(
          "forward_inputs",
          [](Layer& l, const std::vector<FloatArray>& xs, bool training) {
            const std::int64_t n = check_inputs(l, xs, "forward_inputs");
            std::vector<const float*> xp;
            for (const auto& x : xs) xp.push_back(x.data());
            FloatArray y(with_batch(n, l.output_shape()));
            float* yp = y.mutable_data();
            {
              py::gil_scoped_release release;
              l.reserve(n);
              l.forward_inputs(xp.data(), yp, n, training);
            }
            return y;
          },
          py::arg("xs"), py::arg("training") = false)
      // dx per input; need_dx[i] = False passes nullptr for input i, which then gets None.
      .def(
          "backward_inputs",
          [](Layer& l, const std::vector<FloatArray>& xs, const FloatArray& y, const FloatArray& dy,
             std::optional<std::vector<bool>> need_dx) {
            const std::int64_t n = check_inputs(l, xs, "backward_inputs");
            const Shape expect = with_batch(n, l.output_shape());
            if (array_shape(y) != expect || array_shape(dy) != expect)
              throw ValueError(l.class_name() + " '" + l.name() + "': backward_inputs expected y and dy of shape " +
                               shape_str(expect) + ", received " + shape_str(array_shape(y)) + " and " +
                               shape_str(array_shape(dy)));
            if (need_dx && need_dx->size() != xs.size())
              throw ValueError(l.class_name() + " '" + l.name() + "': backward_inputs expected need_dx with " +
                               std::to_string(xs.size()) + " entries, received " + std::to_string(need_dx->size()));
            std::vector<const float*> xp;
            std::vector<float*> dxp;
            std::vector<std::optional<FloatArray>> dxs;
            for (std::size_t i = 0; i < xs.size(); ++i) {
              xp.push_back(xs[i].data());
              if (need_dx && !(*need_dx)[i]) {
                dxs.emplace_back();
                dxp.push_back(nullptr);
              } else {
                dxs.emplace_back(FloatArray(array_shape(xs[i])));
                dxp.push_back(dxs.back()->mutable_data());
              }
            }
            std::vector<float> g(dy.data(), dy.data() + dy.size());
            {
              py::gil_scoped_release release;
              l.backward_inputs(xp.data(), y.data(), g.data(), dxp.data(), n);
            }
            py::list out;
            for (auto& dx : dxs) out.append(dx ? py::object(*dx) : py::object(py::none()));
            return out;
          },
          py::arg("xs"), py::arg("y"), py::arg("dy"), py::arg("need_dx") = py::none())
      .def("backward", [](Layer& l, const FloatArray& x, const FloatArray& y, const FloatArray& dy) {
        const std::int64_t n = x.ndim() ? x.shape(0) : 0;
        if (n <= 0 || y.size() != dy.size() || y.size() != checked_mul(n, shape_size(l.output_shape())) ||
            x.size() != checked_mul(n, shape_size(l.input_shape())))
          throw ValueError(l.class_name() + " '" + l.name() + "': backward expects x, y, dy from one forward call");
        Shape xs = array_shape(x);
        FloatArray dx(xs);
        std::vector<float> g(dy.data(), dy.data() + dy.size());
        float* dxp = dx.mutable_data();
        {
          py::gil_scoped_release release;
          l.backward(x.data(), y.data(), g.data(), dxp, n);
        }
        return dx;
      });

  py::class_<Conv2D, Layer, std::shared_ptr<Conv2D>>(m, "Conv2D")
      .def(py::init([](std::string name, std::int64_t filters, std::pair<std::int64_t, std::int64_t> k,
                       std::pair<std::int64_t, std::int64_t> s, std::string padding,
                       std::pair<std::int64_t, std::int64_t> d, std::string activation, bool use_bias,
                       std::string kinit, std::string binit) {
             Conv2DConfig c;
             c.filters = filters;
             std::tie(c.kernel_h, c.kernel_w) = k;
             std::tie(c.stride_h, c.stride_w) = s;
             std::tie(c.dilation_h, c.dilation_w) = d;
             c.padding = padding;
             c.activation = activation;
             c.use_bias = use_bias;
             c.kernel_initializer = kinit;
             c.bias_initializer = binit;
             return std::make_shared<Conv2D>(name, c);
           }),
           py::arg("name"), py::arg("filters"), py::arg("kernel_size"), py::arg("strides"), py::arg("padding"),
           py::arg("dilation_rate"), py::arg("activation"), py::arg("use_bias"), py::arg("kernel_initializer"),
           py::arg("bias_initializer"))
      // Tests only: run these algorithms ("auto": the planner's choice) so that every route is
      // compared with the im2col reference on any shape.
      .def(
          "_force_algorithms",
          [](Conv2D& c, const std::string& forward, const std::string& weight_grad, const std::string& input_grad) {
            const std::string who = "Conv2D '" + c.name() + "'._force_algorithms";
            c.force_algorithms(parse_algorithm(forward, who), parse_algorithm(weight_grad, who),
                               parse_algorithm(input_grad, who));
          },
          py::arg("forward") = "auto", py::arg("weight_grad") = "auto", py::arg("input_grad") = "auto");

  py::class_<DepthwiseConv2D, Layer, std::shared_ptr<DepthwiseConv2D>>(m, "DepthwiseConv2D")
      .def(py::init([](std::string name, std::pair<std::int64_t, std::int64_t> k,
                       std::pair<std::int64_t, std::int64_t> s, std::string padding, std::int64_t depth_multiplier,
                       std::pair<std::int64_t, std::int64_t> d, std::string activation, bool use_bias,
                       std::string dinit, std::string binit) {
             DepthwiseConv2DConfig c;
             std::tie(c.kernel_h, c.kernel_w) = k;
             std::tie(c.stride_h, c.stride_w) = s;
             std::tie(c.dilation_h, c.dilation_w) = d;
             c.padding = padding;
             c.depth_multiplier = depth_multiplier;
             c.activation = activation;
             c.use_bias = use_bias;
             c.depthwise_initializer = dinit;
             c.bias_initializer = binit;
             return std::make_shared<DepthwiseConv2D>(name, c);
           }),
           py::arg("name"), py::arg("kernel_size"), py::arg("strides"), py::arg("padding"), py::arg("depth_multiplier"),
           py::arg("dilation_rate"), py::arg("activation"), py::arg("use_bias"), py::arg("depthwise_initializer"),
           py::arg("bias_initializer"));

  py::class_<SeparableConv2D, Layer, std::shared_ptr<SeparableConv2D>>(m, "SeparableConv2D")
      .def(py::init([](std::string name, std::int64_t filters, std::pair<std::int64_t, std::int64_t> k,
                       std::pair<std::int64_t, std::int64_t> s, std::string padding,
                       std::pair<std::int64_t, std::int64_t> d, std::int64_t depth_multiplier, std::string activation,
                       bool use_bias, std::string dinit, std::string pinit, std::string binit) {
             SeparableConv2DConfig c;
             c.filters = filters;
             std::tie(c.kernel_h, c.kernel_w) = k;
             std::tie(c.stride_h, c.stride_w) = s;
             std::tie(c.dilation_h, c.dilation_w) = d;
             c.padding = padding;
             c.depth_multiplier = depth_multiplier;
             c.activation = activation;
             c.use_bias = use_bias;
             c.depthwise_initializer = dinit;
             c.pointwise_initializer = pinit;
             c.bias_initializer = binit;
             return std::make_shared<SeparableConv2D>(name, c);
           }),
           py::arg("name"), py::arg("filters"), py::arg("kernel_size"), py::arg("strides"), py::arg("padding"),
           py::arg("dilation_rate"), py::arg("depth_multiplier"), py::arg("activation"), py::arg("use_bias"),
           py::arg("depthwise_initializer"), py::arg("pointwise_initializer"), py::arg("bias_initializer"));

  py::class_<MaxPooling2D, Layer, std::shared_ptr<MaxPooling2D>>(m, "MaxPooling2D")
      .def(py::init([](std::string name, std::pair<std::int64_t, std::int64_t> pool,
                       std::pair<std::int64_t, std::int64_t> strides, std::string padding) {
             MaxPooling2DConfig c;
             std::tie(c.pool_h, c.pool_w) = pool;
             std::tie(c.stride_h, c.stride_w) = strides;
             c.padding = padding;
             return std::make_shared<MaxPooling2D>(name, c);
           }),
           py::arg("name"), py::arg("pool_size"), py::arg("strides"), py::arg("padding"));

  py::class_<Dense, Layer, std::shared_ptr<Dense>>(m, "Dense")
      .def(py::init([](std::string name, std::int64_t units, std::string activation, bool use_bias, std::string kinit,
                       std::string binit) {
             DenseConfig c;
             c.units = units;
             c.activation = activation;
             c.use_bias = use_bias;
             c.kernel_initializer = kinit;
             c.bias_initializer = binit;
             return std::make_shared<Dense>(name, c);
           }),
           py::arg("name"), py::arg("units"), py::arg("activation"), py::arg("use_bias"), py::arg("kernel_initializer"),
           py::arg("bias_initializer"));

  py::class_<Flatten, Layer, std::shared_ptr<Flatten>>(m, "Flatten").def(py::init<std::string>(), py::arg("name"));

  py::class_<Dropout, Layer, std::shared_ptr<Dropout>>(m, "Dropout")
      .def(py::init([](std::string name, float rate, std::vector<std::int64_t> noise_shape,
                       std::optional<std::uint64_t> seed) {
             DropoutConfig c;
             c.rate = rate;
             c.noise_shape = std::move(noise_shape);
             c.has_seed = seed.has_value();
             c.seed = seed.value_or(0);
             return std::make_shared<Dropout>(name, c);
           }),
           py::arg("name"), py::arg("rate"), py::arg("noise_shape"), py::arg("seed"));

  py::class_<BatchNormalization, Layer, std::shared_ptr<BatchNormalization>>(m, "BatchNormalization")
      .def(py::init([](std::string name, std::int64_t axis, float momentum, float epsilon, bool center, bool scale,
                       std::string beta_init, std::string gamma_init, std::string mm_init, std::string mv_init) {
             BatchNormalizationConfig c;
             c.axis = axis;
             c.momentum = momentum;
             c.epsilon = epsilon;
             c.center = center;
             c.scale = scale;
             c.beta_initializer = beta_init;
             c.gamma_initializer = gamma_init;
             c.moving_mean_initializer = mm_init;
             c.moving_variance_initializer = mv_init;
             return std::make_shared<BatchNormalization>(name, c);
           }),
           py::arg("name"), py::arg("axis"), py::arg("momentum"), py::arg("epsilon"), py::arg("center"),
           py::arg("scale"), py::arg("beta_initializer"), py::arg("gamma_initializer"),
           py::arg("moving_mean_initializer"), py::arg("moving_variance_initializer"));

  py::class_<AveragePooling2D, Layer, std::shared_ptr<AveragePooling2D>>(m, "AveragePooling2D")
      .def(py::init([](std::string name, std::pair<std::int64_t, std::int64_t> pool,
                       std::pair<std::int64_t, std::int64_t> strides, std::string padding) {
             AveragePooling2DConfig c;
             std::tie(c.pool_h, c.pool_w) = pool;
             std::tie(c.stride_h, c.stride_w) = strides;
             c.padding = padding;
             return std::make_shared<AveragePooling2D>(name, c);
           }),
           py::arg("name"), py::arg("pool_size"), py::arg("strides"), py::arg("padding"));
  py::class_<GlobalAveragePooling2D, Layer, std::shared_ptr<GlobalAveragePooling2D>>(m, "GlobalAveragePooling2D")
      .def(py::init<std::string, bool>(), py::arg("name"), py::arg("keepdims"));
  py::class_<GlobalMaxPooling2D, Layer, std::shared_ptr<GlobalMaxPooling2D>>(m, "GlobalMaxPooling2D")
      .def(py::init<std::string, bool>(), py::arg("name"), py::arg("keepdims"));

  py::class_<ActivationLayer, Layer, std::shared_ptr<ActivationLayer>>(m, "Activation")
      .def(py::init<std::string, const std::string&>(), py::arg("name"), py::arg("activation"));
  py::class_<ReLU, ActivationLayer, std::shared_ptr<ReLU>>(m, "ReLU").def(
      py::init([](std::string name, std::optional<float> max_value, float negative_slope, float threshold) {
        ReLUConfig c;
        if (max_value) c.max_value = *max_value;
        c.negative_slope = negative_slope;
        c.threshold = threshold;
        return std::make_shared<ReLU>(name, c);
      }),
      py::arg("name"), py::arg("max_value"), py::arg("negative_slope"), py::arg("threshold"));
  py::class_<LeakyReLU, ActivationLayer, std::shared_ptr<LeakyReLU>>(m, "LeakyReLU")
      .def(py::init<std::string, float>(), py::arg("name"), py::arg("negative_slope"));
  py::class_<ELU, ActivationLayer, std::shared_ptr<ELU>>(m, "ELU").def(py::init<std::string, float>(), py::arg("name"),
                                                                       py::arg("alpha"));
  py::class_<Softmax, ActivationLayer, std::shared_ptr<Softmax>>(m, "Softmax")
      .def(py::init<std::string, std::int64_t>(), py::arg("name"), py::arg("axis"));

  // Merge layers: called through forward_inputs / backward_inputs with a list of arrays.
  py::class_<Merge, Layer, std::shared_ptr<Merge>>(m, "Merge");
  py::class_<Add, Merge, std::shared_ptr<Add>>(m, "Add").def(py::init<std::string>(), py::arg("name"));
  py::class_<Subtract, Merge, std::shared_ptr<Subtract>>(m, "Subtract").def(py::init<std::string>(), py::arg("name"));
  py::class_<Multiply, Merge, std::shared_ptr<Multiply>>(m, "Multiply").def(py::init<std::string>(), py::arg("name"));
  py::class_<Average, Merge, std::shared_ptr<Average>>(m, "Average").def(py::init<std::string>(), py::arg("name"));
  py::class_<Maximum, Merge, std::shared_ptr<Maximum>>(m, "Maximum").def(py::init<std::string>(), py::arg("name"));
  py::class_<Minimum, Merge, std::shared_ptr<Minimum>>(m, "Minimum").def(py::init<std::string>(), py::arg("name"));
  py::class_<Concatenate, Layer, std::shared_ptr<Concatenate>>(m, "Concatenate")
      .def(py::init<std::string, std::int64_t>(), py::arg("name"), py::arg("axis"))
      .def_property_readonly("axis", &Concatenate::axis);

  py::class_<Rescaling, Layer, std::shared_ptr<Rescaling>>(m, "Rescaling")
      .def(py::init<std::string, float, float>(), py::arg("name"), py::arg("scale"), py::arg("offset"));
  py::class_<Reshape, Layer, std::shared_ptr<Reshape>>(m, "Reshape")
      .def(py::init<std::string, Shape>(), py::arg("name"), py::arg("target_shape"));

  py::class_<Resizing, Layer, std::shared_ptr<Resizing>>(m, "Resizing")
      .def(py::init([](std::string name, std::int64_t height, std::int64_t width, std::string interpolation,
                       bool crop_to_aspect_ratio) {
             ResizingConfig c;
             c.height = height;
             c.width = width;
             c.interpolation = interpolation;
             c.crop_to_aspect_ratio = crop_to_aspect_ratio;
             return std::make_shared<Resizing>(name, c);
           }),
           py::arg("name"), py::arg("height"), py::arg("width"), py::arg("interpolation"),
           py::arg("crop_to_aspect_ratio"));

  // The random image layers; last_parameters() -> [last batch, k] float32 (see the headers).
  py::class_<ImageAugmentation, Layer, std::shared_ptr<ImageAugmentation>>(m, "ImageAugmentation")
      .def("last_parameters", [](const ImageAugmentation& l) {
        FloatArray out(std::vector<py::ssize_t>{static_cast<py::ssize_t>(l.last_batch()), l.parameters_per_image()});
        if (out.size()) std::memcpy(out.mutable_data(), l.last_parameters(), sizeof(float) * out.size());
        return out;
      });
  auto affine_options = [](std::string fill_mode, std::string interpolation, float fill_value,
                           std::optional<std::uint64_t> seed) {
    AffineOptions o;
    o.fill_mode = std::move(fill_mode);
    o.interpolation = std::move(interpolation);
    o.fill_value = fill_value;
    o.has_seed = seed.has_value();
    o.seed = seed.value_or(0);
    return o;
  };
  py::class_<RandomFlip, ImageAugmentation, std::shared_ptr<RandomFlip>>(m, "RandomFlip")
      .def(py::init([](std::string name, std::string mode, std::optional<std::uint64_t> seed) {
             return std::make_shared<RandomFlip>(name, mode, seed.has_value(), seed.value_or(0));
           }),
           py::arg("name"), py::arg("mode"), py::arg("seed"));
  py::class_<RandomRotation, ImageAugmentation, std::shared_ptr<RandomRotation>>(m, "RandomRotation")
      .def(py::init([affine_options](std::string name, std::pair<float, float> factor, std::string fill_mode,
                                     std::string interpolation, std::optional<std::uint64_t> seed, float fill_value) {
             return std::make_shared<RandomRotation>(name, factor.first, factor.second,
                                                     affine_options(fill_mode, interpolation, fill_value, seed));
           }),
           py::arg("name"), py::arg("factor"), py::arg("fill_mode"), py::arg("interpolation"), py::arg("seed"),
           py::arg("fill_value"));
  py::class_<RandomTranslation, ImageAugmentation, std::shared_ptr<RandomTranslation>>(m, "RandomTranslation")
      .def(py::init([affine_options](std::string name, std::pair<float, float> hf, std::pair<float, float> wf,
                                     std::string fill_mode, std::string interpolation,
                                     std::optional<std::uint64_t> seed, float fill_value) {
             return std::make_shared<RandomTranslation>(name, hf.first, hf.second, wf.first, wf.second,
                                                        affine_options(fill_mode, interpolation, fill_value, seed));
           }),
           py::arg("name"), py::arg("height_factor"), py::arg("width_factor"), py::arg("fill_mode"),
           py::arg("interpolation"), py::arg("seed"), py::arg("fill_value"));
  py::class_<RandomZoom, ImageAugmentation, std::shared_ptr<RandomZoom>>(m, "RandomZoom")
      .def(py::init([affine_options](std::string name, std::pair<float, float> hf,
                                     std::optional<std::pair<float, float>> wf, std::string fill_mode,
                                     std::string interpolation, std::optional<std::uint64_t> seed, float fill_value) {
             const auto w = wf.value_or(std::pair<float, float>{0.0f, 0.0f});
             return std::make_shared<RandomZoom>(name, hf.first, hf.second, wf.has_value(), w.first, w.second,
                                                 affine_options(fill_mode, interpolation, fill_value, seed));
           }),
           py::arg("name"), py::arg("height_factor"), py::arg("width_factor"), py::arg("fill_mode"),
           py::arg("interpolation"), py::arg("seed"), py::arg("fill_value"));
  py::class_<RandomContrast, ImageAugmentation, std::shared_ptr<RandomContrast>>(m, "RandomContrast")
      .def(py::init([](std::string name, std::pair<float, float> factor, std::pair<float, float> value_range,
                       std::optional<std::uint64_t> seed) {
             return std::make_shared<RandomContrast>(name, factor.first, factor.second, value_range.first,
                                                     value_range.second, seed.has_value(), seed.value_or(0));
           }),
           py::arg("name"), py::arg("factor"), py::arg("value_range"), py::arg("seed"));

  py::class_<Loss, std::shared_ptr<Loss>>(m, "Loss")
      .def_property_readonly("name", &Loss::name)
      // Mean loss and dL/d(output) of a [rows, classes] output (tests).
      .def(
          "compute",
          [](const Loss& l, const FloatArray& out, const FloatArray& target, bool fused, const py::object& weights) {
            if (out.ndim() != 2) throw ValueError(l.name() + ": expected a 2-D output");
            const std::int64_t rows = out.shape(0), classes = out.shape(1);
            l.check_targets({classes}, rows ? target.size() / rows : 0);
            if (target.size() != rows * (l.sparse_targets() ? 1 : classes))
              throw ValueError(l.name() + ": expected targets for " + std::to_string(rows) + " rows");
            const float* w = sample_weights(weights, rows);
            FloatArray grad({rows, classes});
            const double v = l.compute(out.data(), target.data(), w, rows, classes, grad.mutable_data(), fused);
            return py::make_tuple(v, grad);
          },
          py::arg("output"), py::arg("target"), py::arg("fused") = false, py::arg("sample_weight") = py::none())
      .def_property_readonly("fusable_activation",
                             [](const Loss& l) { return std::string(activation_name(l.fusable_activation())); });
  m.def(
      "make_crossentropy",
      [](bool sparse, bool from_logits, double ls) {
        return std::shared_ptr<Loss>(make_crossentropy(sparse, from_logits, ls));
      },
      py::arg("sparse"), py::arg("from_logits"), py::arg("label_smoothing") = 0.0);
  m.def(
      "make_binary_crossentropy",
      [](bool from_logits, double ls) { return std::shared_ptr<Loss>(make_binary_crossentropy(from_logits, ls)); },
      py::arg("from_logits"), py::arg("label_smoothing") = 0.0);
  m.def("make_mean_squared_error", [] { return std::shared_ptr<Loss>(make_mean_squared_error()); });
  m.def("make_mean_absolute_error", [] { return std::shared_ptr<Loss>(make_mean_absolute_error()); });
  py::class_<PythonLoss, Loss, std::shared_ptr<PythonLoss>>(m, "PythonLoss")
      .def(py::init<py::object, std::string>(), py::arg("fn"), py::arg("name"));

  py::class_<Optimizer, std::shared_ptr<Optimizer>>(m, "Optimizer")
      .def_property_readonly("name", &Optimizer::name)
      .def_readwrite("learning_rate", &Optimizer::learning_rate)
      .def_readwrite("iterations", &Optimizer::iterations)
      .def(
          "set_options",
          [](Optimizer& o, double clipvalue, double clipnorm, double global_clipnorm, double weight_decay) {
            const double old[4] = {o.clipvalue, o.clipnorm, o.global_clipnorm, o.weight_decay};
            o.clipvalue = clipvalue, o.clipnorm = clipnorm, o.global_clipnorm = global_clipnorm,
            o.weight_decay = weight_decay;
            try {
              o.check_options();
            } catch (...) {
              o.clipvalue = old[0], o.clipnorm = old[1], o.global_clipnorm = old[2], o.weight_decay = old[3];
              throw;
            }
          },
          py::arg("clipvalue"), py::arg("clipnorm"), py::arg("global_clipnorm"), py::arg("weight_decay"))
      .def_readonly("clipvalue", &Optimizer::clipvalue)
      .def_readonly("clipnorm", &Optimizer::clipnorm)
      .def_readonly("global_clipnorm", &Optimizer::global_clipnorm)
      .def_readonly("weight_decay", &Optimizer::weight_decay);
  py::class_<SGD, Optimizer, std::shared_ptr<SGD>>(m, "SGD")
      .def(py::init<double, double, bool>(), py::arg("learning_rate"), py::arg("momentum"), py::arg("nesterov"))
      .def_readonly("momentum", &SGD::momentum)
      .def_readonly("nesterov", &SGD::nesterov);
  py::class_<Adam, Optimizer, std::shared_ptr<Adam>>(m, "Adam")
      .def(py::init<double, double, double, double>(), py::arg("learning_rate"), py::arg("beta_1"), py::arg("beta_2"),
           py::arg("epsilon"))
      .def_readonly("beta_1", &Adam::beta_1)
      .def_readonly("beta_2", &Adam::beta_2)
      .def_readonly("epsilon", &Adam::epsilon);

  py::class_<RMSprop, Optimizer, std::shared_ptr<RMSprop>>(m, "RMSprop")
      .def(py::init<double, double, double, double>(), py::arg("learning_rate"), py::arg("rho"), py::arg("momentum"),
           py::arg("epsilon"))
      .def_readonly("rho", &RMSprop::rho)
      .def_readonly("momentum", &RMSprop::momentum)
      .def_readonly("epsilon", &RMSprop::epsilon);

  py::class_<Adagrad, Optimizer, std::shared_ptr<Adagrad>>(m, "Adagrad")
      .def(py::init<double, double, double>(), py::arg("learning_rate"), py::arg("initial_accumulator_value"),
           py::arg("epsilon"))
      .def_readonly("initial_accumulator_value", &Adagrad::initial_accumulator_value)
      .def_readonly("epsilon", &Adagrad::epsilon);

  py::class_<ModelHandle>(m, "Model")
      .def(py::init([] { return std::make_unique<ModelHandle>(std::make_unique<Model>(), "Model"); }))
      .def(
          "add_input",
          [](ModelHandle& s, const Shape& shape) { return locked(s, [&] { return s.model->add_input(shape); }); },
          py::arg("shape"))
      .def(
          "add_node",
          [](ModelHandle& s, std::shared_ptr<Layer> l, const std::vector<int>& inputs) {
            return locked(s, [&] { return s.model->add_node(std::move(l), inputs); });
          },
          py::arg("layer"), py::arg("inputs"))
      .def("set_output", [](ModelHandle& s, int node) { locked(s, [&] { s.model->set_output(node); }); })
      .def("build", [](ModelHandle& s) { locked(s, [&] { s.model->build(); }); })
      .def_property_readonly("node_count",
                             [](ModelHandle& s) { return locked(s, [&] { return s.model->node_count(); }); })
      .def("node_inputs",
           [](ModelHandle& s, int node) { return locked(s, [&] { return s.model->node_inputs(node); }); })
      .def("node_layer", [](ModelHandle& s, int node) { return locked(s, [&] { return s.model->node_layer(node); }); })
      .def_property_readonly("layers", [](ModelHandle& s) { return locked(s, [&] { return s.model->layers(); }); })
      .def_property_readonly("input_shape",
                             [](ModelHandle& s) { return locked(s, [&] { return s.model->input_shape(); }); })
      .def(
          "call",
          [](ModelHandle& s, const FloatArray& x, bool training) {
            const ArrayView xv = view(x);
            const Shape out_shape = output_shape_for(s, xv, "calling it");
            FloatArray out(out_shape);
            float* op = out.mutable_data();
            locked(s, [&] { s.model->call(xv.data, out_shape[0], op, training); });
            return out;
          },
          py::arg("x"), py::arg("training") = false)
      // The planner's decisions: one dict per node, and the planned memory for a batch size.
      .def("node_plans",
           [](ModelHandle& s) {
             const auto plans = locked(s, [&] { return s.model->node_plans(); });
             py::list out;
             for (const auto& p : plans) {
               py::dict d;
               d["layer"] = p.layer;
               d["class_name"] = p.class_name;
               d["inputs"] = p.inputs;
               d["output_shape"] = p.output_shape;
               d["fused_with"] = p.fused_with;
               d["runs_backward"] = p.runs_backward;
               d["computes_weight_grads"] = p.computes_weight_grads;
               out.append(d);
             }
             return out;
           })
      .def(
          "memory_plan",
          [](ModelHandle& s, std::int64_t batch) {
            const MemoryPlan p = locked(s, [&] { return s.model->memory_plan(batch); });
            py::dict d;
            d["batch_size"] = p.batch;
            d["training_activation_floats"] = p.training_activations;
            d["training_gradient_floats"] = p.training_gradients;
            d["inference_activation_floats"] = p.inference_activations;
            d["inference_activation_floats_unshared"] = p.inference_activations_unshared;
            return d;
          },
          py::arg("batch_size"))
      .def("allocated_training_floats",
           [](ModelHandle& s) { return locked(s, [&] { return s.model->allocated_training_floats(); }); })
      // Per node, what its layer (the model's clone of it, fused as planned) needs for a batch
      // size: workspace floats, the Conv2D plan (empty dict for other layers), and what it
      // holds now.
      .def(
          "layer_plans",
          [](ModelHandle& s, std::int64_t batch) {
            struct Row {
              std::string layer;
              std::int64_t workspace = 0, allocated = 0;
              std::optional<Conv2DPlan> plan;
            };
            const std::vector<Row> rows = locked(s, [&] {
              if (!s.model->built()) throw ValueError(std::string(s.who) + ": build the model before planning it");
              std::vector<Row> out(static_cast<std::size_t>(s.model->node_count()));
              for (int i = 1; i < s.model->node_count(); ++i) {
                const Layer& l = *s.model->node_runner(i);
                Row& r = out[static_cast<std::size_t>(i)];
                r.layer = l.name();
                r.plan = layer_plan(l, batch);
                r.workspace = l.workspace_floats(batch);
                r.allocated = l.allocated_workspace_floats();
              }
              return out;
            });
            py::list out;
            for (const Row& r : rows) {
              py::dict d;
              d["layer"] = r.layer;
              d["workspace_floats"] = r.workspace;
              d["allocated_workspace_floats"] = r.allocated;
              d["plan"] = r.plan ? plan_dict(*r.plan) : py::dict();
              out.append(d);
            }
            return out;
          },
          py::arg("batch_size"))
      // Floats held by the activation buffers of the model's own inference context.
      .def("allocated_inference_floats",
           [](ModelHandle& s) {
             return locked(s, [&] {
               std::lock_guard<std::mutex> lock(s.pool_mutex);
               std::int64_t n = s.model->allocated_inference_floats();
               for (const auto& c : s.contexts)
                 if (s.model->context_is_current(*c)) n += c->allocated_floats();
               return n;
             });
           })
      .def_property_readonly("built", [](ModelHandle& s) { return locked(s, [&] { return s.model->built(); }); })
      .def_property_readonly("output_shape",
                             [](ModelHandle& s) { return locked(s, [&] { return s.model->output_shape(); }); })
      .def("compile",
           [](ModelHandle& s, std::shared_ptr<Loss> l, std::shared_ptr<Optimizer> o) {
             locked(s, [&] { s.model->compile(std::move(l), std::move(o)); });
           })
      .def(
          "set_metrics",
          [](ModelHandle& s, const std::string& accuracy, float threshold, int top_k) {
            if (accuracy != "argmax" && accuracy != "binary")
              throw ValueError("set_metrics: expected accuracy 'argmax' or 'binary', received '" + accuracy + "'");
            locked(s, [&] {
              s.model->set_metrics(accuracy == "binary" ? AccuracyKind::binary : AccuracyKind::argmax, threshold,
                                   top_k);
            });
          },
          py::arg("accuracy"), py::arg("threshold") = 0.5f, py::arg("top_k") = 0)
      .def("set_return_outputs", [](ModelHandle& s, bool on) { locked(s, [&] { s.return_outputs = on; }); })
      .def(
          "train_step",
          [](ModelHandle& s, const FloatArray& x, const FloatArray& y, const IndexArray& index,
             const py::object& sample_weight) {
            if (index.ndim() != 1) throw ValueError("train_step: expected a 1-D index array");
            const float* w = sample_weights(sample_weight, rows_of(x));
            const ArrayView xv = view(x), yv = view(y);
            const std::int64_t* idx = index.data();
            const std::int64_t n = index.shape(0);
            const bool outputs = s.return_outputs;
            Shape pred_shape;
            StepOutputs o;
            locked(s, [&] {
              Batch b = make_batch(*s.model, xv, yv, n, s.who);
              b.index = idx;
              b.sample_weight = w;
              o.r = s.model->train_step(b);
              if (outputs) {
                copy_step_outputs(*s.model, b, o);
                pred_shape = with_batch(n, s.model->output_shape());
              }
            });
            Shape true_shape = yv.shape;
            if (!true_shape.empty()) true_shape[0] = n;
            return step_tuple(o, pred_shape, true_shape, outputs, w != nullptr);
          },
          py::arg("x"), py::arg("y"), py::arg("index"), py::arg("sample_weight") = py::none())
      .def(
          "test_step",
          [](ModelHandle& s, const FloatArray& x, const FloatArray& y, const py::object& sample_weight) {
            const float* w = sample_weights(sample_weight, rows_of(x));
            const ArrayView xv = view(x), yv = view(y);
            const bool outputs = s.return_outputs;
            Shape pred_shape;
            StepOutputs o;
            locked(s, [&] {
              Batch b = make_batch(*s.model, xv, yv, rows_of_shape(xv.shape), s.who);
              b.sample_weight = w;
              o.r = s.model->test_step(b);
              if (outputs) {
                copy_step_outputs(*s.model, b, o);
                pred_shape = with_batch(b.n, s.model->output_shape());
              }
            });
            return step_tuple(o, pred_shape, yv.shape, outputs, w != nullptr);
          },
          py::arg("x"), py::arg("y"), py::arg("sample_weight") = py::none())
      // Optimizer state, one list of slot arrays per trainable parameter (saving / loading).
      .def("get_optimizer_slots",
           [](ModelHandle& s) {
             const auto slots = locked(s, [&] {
               if (!s.model->compiled()) throw ValueError(std::string(s.who) + ": the model is not compiled");
               return s.model->optimizer().slots();
             });
             py::list out;
             for (const auto& per_param : slots) out.append(to_numpy(per_param));
             return out;
           })
      .def("set_optimizer_slots",
           [](ModelHandle& s, const py::list& slots) {
             std::vector<std::vector<Tensor>> values;
             for (const auto& per_param : slots) values.push_back(to_tensors(per_param, "set_optimizer_slots"));
             locked(s, [&] {
               if (!s.model->compiled()) throw ValueError(std::string(s.who) + ": the model is not compiled");
               s.model->optimizer().set_slots(s.model->trainable_params(), std::move(values));
             });
           })
      // Everything save() writes that training changes, from one step boundary (one lock):
      // (weights: one list of arrays per layer, slots: one list per trainable parameter or None
      // when not compiled, iterations: the optimizer's count or None when not compiled).
      // optimizer=False skips the slots (copied for nothing by get_weights).
      .def(
          "snapshot",
          [](ModelHandle& s, bool optimizer) {
            std::vector<std::vector<Tensor>> weights, slots;
            std::int64_t iterations = 0;
            bool compiled = false;
            locked(s, [&] {
              for (const auto& l : s.model->layers()) weights.push_back(copy_weights(*l));
              compiled = s.model->compiled();
              if (compiled && optimizer) {
                slots = s.model->optimizer().slots();
                iterations = s.model->optimizer().iterations;
              }
            });
            py::list w;
            for (const auto& per_layer : weights) w.append(to_numpy(per_layer));
            if (!compiled || !optimizer) return py::tuple(py::make_tuple(w, py::none(), py::none()));
            py::list sl;
            for (const auto& per_param : slots) sl.append(to_numpy(per_param));
            return py::tuple(py::make_tuple(w, sl, iterations));
          },
          py::arg("optimizer") = true)
      // All weights at once: one list of arrays per layer, checked in full before any is written.
      .def("set_weights",
           [](ModelHandle& s, const py::list& per_layer) {
             std::vector<std::vector<Tensor>> values;
             for (const auto& arrays : per_layer) values.push_back(to_tensors(arrays, "Sequential.set_weights"));
             locked(s, [&] {
               const auto& layers = s.model->layers();
               if (values.size() != layers.size())
                 throw ValueError("Sequential.set_weights: expected one list of weights per layer (" +
                                  std::to_string(layers.size()) + "), received " + std::to_string(values.size()));
               for (std::size_t i = 0; i < layers.size(); ++i) check_weights(*layers[i], values[i]);
               for (std::size_t i = 0; i < layers.size(); ++i) assign_weights(*layers[i], values[i]);
             });
           })
      // One layer's weights under the model's lock (Layer.get_weights / set_weights of a layer
      // that belongs to this model).
      .def("get_layer_weights",
           [](ModelHandle& s, const Layer& layer) {
             return to_numpy(locked(s, [&] { return copy_weights(find_layer(*s.model, &layer)); }));
           })
      .def(
          "layer_forward",
          [](ModelHandle& s, Layer& layer, const FloatArray& x, bool training) {
            return layer_forward(layer, x, training, &s);
          },
          py::arg("layer"), py::arg("x"), py::arg("training") = false)
      .def("set_layer_weights",
           [](ModelHandle& s, const Layer& layer, const py::list& weights) {
             std::vector<Tensor> w = to_tensors(weights, layer.name() + ".set_weights");
             locked(s, [&] {
               Layer& l = find_layer(*s.model, &layer);
               check_weights(l, w);
               assign_weights(l, w);
             });
           })
      // What a model file records besides the graph: the name, the output classes' names, the
      // metric names compile was given.
      .def_property(
          "name", [](ModelHandle& s) { return locked(s, [&] { return s.model->name(); }); },
          [](ModelHandle& s, std::string name) { locked(s, [&] { s.model->set_name(std::move(name)); }); })
      .def_property(
          "class_names", [](ModelHandle& s) { return locked(s, [&] { return s.model->class_names(); }); },
          [](ModelHandle& s, std::vector<std::string> names) {
            locked(s, [&] { s.model->set_class_names(std::move(names)); });
          })
      .def_property(
          "metric_names", [](ModelHandle& s) { return locked(s, [&] { return s.model->metric_names(); }); },
          [](ModelHandle& s, std::vector<std::string> names) {
            locked(s, [&] { s.model->set_metric_names(std::move(names)); });
          })
      .def_property_readonly("compiled", [](ModelHandle& s) { return locked(s, [&] { return s.model->compiled(); }); })
      .def_property_readonly("optimizer_iterations",
                             [](ModelHandle& s) {
                               return locked(s, [&] {
                                 if (!s.model->compiled())
                                   throw ValueError(std::string(s.who) + ": the model is not compiled");
                                 return s.model->optimizer().iterations;
                               });
                             })
      .def("set_profiling", [](ModelHandle& s, bool on) { locked(s, [&] { s.model->set_profiling(on); }); })
      .def("profile",
           [](ModelHandle& s) {
             const auto profile = locked(s, [&] { return s.model->profile(); });
             py::list out;
             for (const auto& p : profile)
               out.append(
                   py::make_tuple(p.name, p.forward_seconds, p.backward_seconds, p.forward_calls, p.backward_calls));
             return out;
           })
      .def(
          "predict",
          [](ModelHandle& s, const FloatArray& x, std::int64_t batch_size) {
            const ArrayView xv = view(x);
            const Shape out_shape = output_shape_for(s, xv, "predicting");
            // Allocated with the GIL, between two lock acquisitions: the shapes are fixed once built.
            FloatArray out(out_shape);
            float* op = out.mutable_data();
            shared_locked(s, [&] {
              auto ctx = s.take_context();
              s.model->predict(*ctx, xv.data, out_shape[0], op, batch_size);
              s.give_back(std::move(ctx));
            });
            return out;
          },
          py::arg("x"), py::arg("batch_size"));

  // The model side of the model file (src/cpp/io): saving.py runs the configuration checks here
  // before it builds anything, and tests move models between Python and the core's loader.
  m.def(
      "check_model_metadata",
      [](const std::map<std::string, std::string>& metadata, bool compile) { io::check_metadata(metadata, compile); },
      py::arg("metadata"), py::arg("compile"));
  m.def("model_file_layer_classes", [] { return io::layer_classes(); });
  // cnnx::load_model / save_model as a native program calls them (tests: a file saved by one
  // side loads in the other). Problems are ValueError / TypeError "<path>: ..."; I/O errors
  // OSError.
  m.def(
      "load_model",
      [](const std::string& path, bool compile) {
        LoadOptions options;
        options.compile = compile;
        std::unique_ptr<Model> model = with_os_errors([&] { return cnnx::load_model(path, options); });
        return std::make_unique<ModelHandle>(std::move(model), "Model");
      },
      py::arg("path"), py::arg("compile") = true);
  m.def(
      "save_model",
      [](ModelHandle& s, const std::string& path) {
        refuse_reentry(s);
        with_os_errors([&] {  // releases the GIL before waiting for the lock
          std::unique_lock<std::shared_mutex> lock(s.mutex);
          cnnx::save_model(*s.model, path);
        });
      },
      py::arg("model"), py::arg("path"));
  // A model from a container's metadata and tensors (name -> float32 array): what load_model
  // does after reading the container. Messages do not name the file (saving.py adds it).
  m.def(
      "model_from_contents",
      [](const std::map<std::string, std::string>& metadata, const py::dict& tensors, bool compile) {
        ModelFileContents contents;
        contents.metadata = metadata;
        for (const auto& [key, value] : tensors) {
          FloatArray a = as_float_array(value, "model_from_contents");
          FileTensor t{py::cast<std::string>(key), array_shape(a), {}};
          t.data.assign(a.data(), a.data() + a.size());
          contents.tensors.push_back(std::move(t));
        }
        LoadOptions options;
        options.compile = compile;
        std::unique_ptr<Model> model;
        {
          py::gil_scoped_release release;
          model = io::model_from_contents(contents, options);
        }
        return std::make_unique<ModelHandle>(std::move(model), "Model");
      },
      py::arg("metadata"), py::arg("tensors"), py::arg("compile") = true);
  // What save_model writes for a model: (metadata, {tensor name: array}) from one step boundary.
  m.def(
      "model_contents",
      [](ModelHandle& s) {
        const ModelFileContents contents = locked(s, [&] { return io::model_contents(*s.model); });
        py::dict tensors;
        for (const auto& t : contents.tensors) {
          FloatArray a(t.shape);
          if (a.size()) std::memcpy(a.mutable_data(), t.data.data(), sizeof(float) * t.data.size());
          tensors[py::str(t.name)] = a;
        }
        return py::make_tuple(contents.metadata, tensors);
      },
      py::arg("model"));
  // The summation tree of the data-parallel step and each process's part of it.
  py::class_<ReductionTree>(m, "ReductionTree")
      .def(py::init<std::int64_t, int>(), py::arg("leaves"), py::arg("processes"))
      .def_property_readonly("leaves", &ReductionTree::leaves)
      .def_property_readonly("processes", &ReductionTree::processes)
      .def("leaf_begin", &ReductionTree::leaf_begin, py::arg("rank"))
      .def("row_begin", &ReductionTree::row_begin, py::arg("rank"), py::arg("global_batch"))
      .def_property_readonly("fragments",
                             [](const ReductionTree& t) {
                               std::vector<std::tuple<std::int64_t, std::int64_t, int>> out;
                               for (const auto& f : t.fragments()) out.emplace_back(f.first, f.end, f.rank);
                               return out;
                             })
      .def_property_readonly("combine", &ReductionTree::combine)
      .def_property_readonly("pairs_by_rank_bits", &ReductionTree::pairs_by_rank_bits);
  // One process's data-parallel step (cnnx/data_parallel.hpp) on a model handle that the Python
  // object keeps alive; python/cnnx/distribute.py runs the communicator thread over mpi4py.
  py::class_<DataParallelHandle>(m, "DataParallelStep")
      .def(py::init([](ModelHandle& model, std::int64_t micro_batches, int rank, int processes,
                       std::int64_t bucket_floats, std::uint64_t seed) {
             return locked(model, [&] {
               return std::make_unique<DataParallelHandle>(
                   &model, std::make_unique<DataParallelStep>(*model.model, micro_batches, rank, processes,
                                                              bucket_floats, seed));
             });
           }),
           py::arg("model"), py::arg("micro_batches"), py::arg("rank"), py::arg("processes"), py::arg("bucket_floats"),
           py::arg("seed"), py::keep_alive<1, 2>())
      .def_property_readonly("leaves_per_process", [](DataParallelHandle& h) { return h.step->leaves_per_process(); })
      // The flat buffer the communicator reduces in place (a view: no copy).
      .def("buffer",
           [](py::object self) {
             auto& h = self.cast<DataParallelHandle&>();
             return FloatArray({h.step->buffer_floats()}, {static_cast<py::ssize_t>(sizeof(float))}, h.step->buffer(),
                               self);
           })
      // This process's fragment sums, in the tree's order (views; fragment 0 is buffer()).
      .def("fragments",
           [](py::object self) {
             auto& h = self.cast<DataParallelHandle&>();
             py::list out;
             for (int i = 0; i < h.step->fragment_count(); ++i)
               out.append(FloatArray({h.step->buffer_floats()}, {static_cast<py::ssize_t>(sizeof(float))},
                                     h.step->fragment(i), self));
             return out;
           })
      .def("buckets",
           [](DataParallelHandle& h) {
             std::vector<std::pair<std::int64_t, std::int64_t>> out;
             for (int k = 0; k < h.step->bucket_count(); ++k)
               out.push_back({h.step->bucket_begin(k), h.step->bucket_end(k)});
             return out;
           })
      .def(
          "train_step",
          [](DataParallelHandle& h, const FloatArray& x, const FloatArray& y, const IndexArray& index,
             const py::object& sample_weight, std::int64_t global_batch, double timeout) {
            if (index.ndim() != 1) throw ValueError("DataParallel.train_step: expected a 1-D index array");
            const float* w = sample_weights(sample_weight, rows_of(x));
            const ArrayView xv = view(x), yv = view(y);
            ModelHandle& s = *h.model;
            const bool outputs = s.return_outputs;  // metrics computed in Python read them
            const std::int64_t n = index.shape(0);
            Shape pred_shape;
            StepOutputs o;
            locked(s, [&] {
              Batch b = make_batch(*s.model, xv, yv, n, s.who);
              b.index = index.data();
              b.sample_weight = w;
              if (outputs) {
                o.pred.resize(static_cast<std::size_t>(checked_mul(n, s.model->output_size())));
                pred_shape = with_batch(n, s.model->output_shape());
              }
              o.r = h.step->run(b, global_batch, timeout, outputs ? o.pred.data() : nullptr);
              if (outputs) copy_step_targets(b, o);
            });
            Shape true_shape = yv.shape;
            if (!true_shape.empty()) true_shape[0] = n;
            return step_tuple(o, pred_shape, true_shape, outputs, w != nullptr);
          },
          py::arg("x"), py::arg("y"), py::arg("index"), py::arg("sample_weight"), py::arg("global_batch"),
          py::arg("timeout"))
      // The communicator's side: no model lock (the step holds it while the buckets are reduced).
      .def(
          "next_ready",
          [](DataParallelHandle& h, double timeout) {
            py::gil_scoped_release release;
            return h.step->next_ready(timeout);
          },
          py::arg("timeout"))
      .def("mark_reduced", [](DataParallelHandle& h, int bucket) { h.step->mark_reduced(bucket); })
      .def("stop", [](DataParallelHandle& h) { h.step->stop(); })
      .def("abort", [](DataParallelHandle& h, const std::string& why) { h.step->abort(why); })
      .def("timeline", [](DataParallelHandle& h) {
        const StepTimeline& t = h.step->last_timeline();
        py::dict d;
        d["backward_begin"] = t.backward_begin;
        d["backward_end"] = t.backward_end;
        d["step_end"] = t.step_end;
        d["ready"] = t.ready;
        d["taken"] = t.taken;
        d["reduced"] = t.reduced;
        d["ready_at_node"] = t.ready_at_node;
        return d;
      });
  py::class_<SequentialHandle, ModelHandle>(m, "Sequential")
      .def(py::init<>())
      .def("add", [](SequentialHandle& s, std::shared_ptr<Layer> l) { locked(s, [&] { s.seq().add(std::move(l)); }); })
      .def("build", [](SequentialHandle& s, const Shape& shape) { locked(s, [&] { s.seq().build(shape); }); });
}
