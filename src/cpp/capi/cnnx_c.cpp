// The C API (include/cnnx/cnnx.h) over the C++ core. Every entry point runs its body inside
// guarded(), which turns each exception into a status code and this thread's message, so no
// exception crosses into C. Concurrent predicts on one model each borrow an InferenceContext
// from the model's pool (the core's rule: one context per concurrent call).
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <mutex>
#include <new>
#include <string>
#include <system_error>
#include <vector>

#include "cnnx/cnnx.h"
#include "cnnx/error.hpp"
#include "cnnx/model.hpp"
#include "cnnx/model_file.hpp"
#include "cnnx/version.hpp"

namespace {

// Samples converted from uint8 and run at a time by cnnx_model_predict_u8 (the core's own
// chunk for predict: the context's buffers are sized for it anyway).
constexpr std::int64_t kChunk = 256;

// What one predict call needs to itself.
struct Slot {
  std::unique_ptr<cnnx::InferenceContext> context;
  std::vector<float> floats;  // a chunk of uint8 input as floats
};

thread_local std::string last_error;

// A failure with its status (thrown inside guarded() only).
struct Failure {
  cnnx_status status;
  std::string message;
};

[[noreturn]] void fail(cnnx_status status, const char* who, const std::string& what) {
  throw Failure{status, std::string(who) + ": " + what};
}

template <class T>
void require(const T* p, const char* who, const char* name) {
  if (!p) fail(CNNX_ERROR_INVALID_ARGUMENT, who, std::string("expected a non-NULL ") + name + ", received NULL");
}

// Runs body (returning nothing) and maps whatever it throws. `fallback` is the status of a
// cnnx::Error (the core's bad-input exceptions), which means something else per function.
template <class F>
cnnx_status guarded(const char* who, cnnx_status fallback, F&& body) noexcept {
  try {
    try {
      body();
      last_error.clear();
      return CNNX_OK;
    } catch (const Failure& f) {
      last_error = f.message;
      return f.status;
    } catch (const cnnx::Error& e) {
      last_error = std::string(who) + ": " + e.what();
      return fallback;
    } catch (const std::bad_alloc& e) {
      last_error = std::string(who) + ": out of memory (" + e.what() + ")";
      return CNNX_ERROR_OUT_OF_MEMORY;
    } catch (const std::exception& e) {
      last_error = std::string(who) + ": internal error: " + e.what();
      return CNNX_ERROR_INTERNAL;
    } catch (...) {
      last_error = std::string(who) + ": internal error: an unknown exception";
      return CNNX_ERROR_INTERNAL;
    }
  } catch (...) {
    // Building the message itself ran out of memory: keep what fits.
    try {
      last_error = "out of memory";
    } catch (...) {}
    return CNNX_ERROR_OUT_OF_MEMORY;
  }
}

std::int64_t to_int64(size_t n) { return n > size_t(INT64_MAX) ? INT64_MAX : std::int64_t(n); }

}  // namespace

struct cnnx_model {
  std::unique_ptr<cnnx::Model> model;
  std::mutex mutex;                         // guards idle and slots
  std::vector<std::unique_ptr<Slot>> idle;  // contexts no call is using
  std::size_t slots = 0;                    // contexts made (idle or in use)

  // A slot for one call: an idle one, else a new one, made outside the lock (it clones the
  // layers; make_inference_context may run concurrently). idle always has room for every slot,
  // so give_back cannot fail.
  std::unique_ptr<Slot> take() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!idle.empty()) {
        auto slot = std::move(idle.back());
        idle.pop_back();
        return slot;
      }
      idle.reserve(slots + 1);
      ++slots;
    }
    try {
      auto slot = std::make_unique<Slot>();
      slot->context = model->make_inference_context();
      return slot;
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex);
      --slots;
      throw;
    }
  }
  void give_back(std::unique_ptr<Slot> slot) noexcept {
    std::lock_guard<std::mutex> lock(mutex);
    idle.push_back(std::move(slot));
  }
};

namespace {

// A slot borrowed for the duration of one call, given back however the call ends.
class Borrowed {
 public:
  explicit Borrowed(cnnx_model* m) : m_(m), slot_(m->take()) {}
  ~Borrowed() { m_->give_back(std::move(slot_)); }
  Borrowed(const Borrowed&) = delete;
  Borrowed& operator=(const Borrowed&) = delete;
  Slot* operator->() { return slot_.get(); }

 private:
  cnnx_model* m_;
  std::unique_ptr<Slot> slot_;
};

const cnnx::Model& model_of(const cnnx_model* m, const char* who) {
  require(m, who, "model");
  return *m->model;
}

cnnx_status open_with(const char* who, cnnx_model** out, const std::function<std::unique_ptr<cnnx::Model>()>& load) {
  if (out) *out = nullptr;
  return guarded(who, CNNX_ERROR_FILE, [&] {
    require(out, who, "model pointer");
    auto m = std::make_unique<cnnx_model>();
    try {
      m->model = load();
    } catch (const std::system_error& e) {  // std::ios_base::failure too: a read that failed
      fail(CNNX_ERROR_FILE, who, e.what());
    }
    if (!m->model->built()) fail(CNNX_ERROR_FILE, who, "the model file describes a model that was not built");
    *out = m.release();
  });
}

// rank then dims of a shape, for the four shape queries.
cnnx_status write_rank(const cnnx_model* model, size_t* rank, const char* who, bool output) {
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const cnnx::Model& m = model_of(model, who);
    require(rank, who, "rank pointer");
    *rank = (output ? m.output_shape() : m.input_shape()).size();
  });
}

cnnx_status write_dims(const cnnx_model* model, int64_t* dims, size_t capacity, const char* who, bool output) {
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const cnnx::Model& m = model_of(model, who);
    require(dims, who, "dims pointer");
    const cnnx::Shape& s = output ? m.output_shape() : m.input_shape();
    if (capacity < s.size())
      fail(CNNX_ERROR_INVALID_ARGUMENT, who,
           "expected room for " + std::to_string(s.size()) + " dims, received capacity " + std::to_string(capacity));
    for (size_t i = 0; i < s.size(); ++i) dims[i] = s[i];
  });
}

cnnx_status write_size(const cnnx_model* model, size_t* size, const char* who, bool output) {
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const cnnx::Model& m = model_of(model, who);
    require(size, who, "size pointer");
    *size = size_t(output ? m.output_size() : m.input_size());
  });
}

// The batch shape as a cnnx::Shape, after the argument checks shared by both predicts; returns
// n after the model's own shape and output-size check (CNNX_ERROR_SHAPE on failure).
std::int64_t check_predict(const cnnx_model* model, const void* input, const int64_t* shape, size_t rank,
                           const float* output, size_t output_capacity, const char* who) {
  const cnnx::Model& m = model_of(model, who);
  require(shape, who, "shape");
  if (rank > 64)
    fail(CNNX_ERROR_SHAPE, who,
         "expected a shape of rank " + std::to_string(m.input_shape().size() + 1) + ", received rank " +
             std::to_string(rank));
  const cnnx::Shape dims(shape, shape + rank);
  std::int64_t n = 0;
  try {
    n = m.check_predict_shapes(dims, to_int64(output_capacity), who);
  } catch (const cnnx::Error& e) {
    throw Failure{CNNX_ERROR_SHAPE, e.what()};
  }
  if (n > 0) {
    require(input, who, "input");
    require(output, who, "output");
  }
  return n;
}

}  // namespace

extern "C" {

const char* cnnx_version(void) { return CNNX_VERSION; }

cnnx_status cnnx_last_error(const char** message) {
  if (!message) return CNNX_ERROR_INVALID_ARGUMENT;  // the message is left as it is
  *message = last_error.c_str();
  return CNNX_OK;
}

cnnx_status cnnx_model_open(const char* path, cnnx_model** model) {
  const char* who = "cnnx_model_open";
  return open_with(who, model, [&] {
    require(path, who, "path");
    // The core's reader reports a missing file too; checking here gives the system's reason.
    errno = 0;
    std::ifstream probe(path, std::ios::binary);
    if (!probe) {
      const int err = errno;
      fail(CNNX_ERROR_FILE, who,
           std::string("cannot open '") + path + "': " + (err ? std::strerror(err) : "unreadable"));
    }
    probe.close();
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      fail(CNNX_ERROR_FILE, who, std::string("cannot read '") + path + "': it is a directory");
    cnnx::LoadOptions options;
    options.compile = false;
    return cnnx::load_model(path, options);
  });
}

cnnx_status cnnx_model_open_memory(const void* data, size_t size, const char* name, cnnx_model** model) {
  const char* who = "cnnx_model_open_memory";
  return open_with(who, model, [&] {
    if (size > 0) require(data, who, "data");
    cnnx::LoadOptions options;
    options.compile = false;
    static const std::uint8_t empty = 0;
    return cnnx::load_model_from_memory(size ? static_cast<const std::uint8_t*>(data) : &empty, size,
                                        name ? name : "<memory>", options);
  });
}

cnnx_status cnnx_model_free(cnnx_model* model) {
  return guarded("cnnx_model_free", CNNX_ERROR_INTERNAL, [&] { delete model; });
}

cnnx_status cnnx_model_input_rank(const cnnx_model* model, size_t* rank) {
  return write_rank(model, rank, "cnnx_model_input_rank", false);
}
cnnx_status cnnx_model_input_dims(const cnnx_model* model, int64_t* dims, size_t capacity) {
  return write_dims(model, dims, capacity, "cnnx_model_input_dims", false);
}
cnnx_status cnnx_model_input_size(const cnnx_model* model, size_t* size) {
  return write_size(model, size, "cnnx_model_input_size", false);
}
cnnx_status cnnx_model_output_rank(const cnnx_model* model, size_t* rank) {
  return write_rank(model, rank, "cnnx_model_output_rank", true);
}
cnnx_status cnnx_model_output_dims(const cnnx_model* model, int64_t* dims, size_t capacity) {
  return write_dims(model, dims, capacity, "cnnx_model_output_dims", true);
}
cnnx_status cnnx_model_output_size(const cnnx_model* model, size_t* size) {
  return write_size(model, size, "cnnx_model_output_size", true);
}

cnnx_status cnnx_model_class_count(const cnnx_model* model, size_t* count) {
  const char* who = "cnnx_model_class_count";
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const cnnx::Model& m = model_of(model, who);
    require(count, who, "count pointer");
    *count = m.class_names().size();
  });
}

cnnx_status cnnx_model_class_name(const cnnx_model* model, size_t index, const char** name) {
  const char* who = "cnnx_model_class_name";
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const cnnx::Model& m = model_of(model, who);
    require(name, who, "name pointer");
    const auto& names = m.class_names();
    if (index >= names.size())
      fail(CNNX_ERROR_INVALID_ARGUMENT, who,
           "expected an index in [0, " + std::to_string(names.size()) + "), received " + std::to_string(index));
    *name = names[index].c_str();
  });
}

cnnx_status cnnx_model_predict_f32(cnnx_model* model, const float* input, const int64_t* shape, size_t rank,
                                   float* output, size_t output_capacity) {
  const char* who = "cnnx_model_predict_f32";
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const std::int64_t n = check_predict(model, input, shape, rank, output, output_capacity, who);
    if (n == 0) return;
    Borrowed slot(model);
    model->model->predict(*slot->context, input, n, output, kChunk);
  });
}

cnnx_status cnnx_model_predict_u8(cnnx_model* model, const uint8_t* input, const int64_t* shape, size_t rank,
                                  float* output, size_t output_capacity) {
  const char* who = "cnnx_model_predict_u8";
  return guarded(who, CNNX_ERROR_INTERNAL, [&] {
    const std::int64_t n = check_predict(model, input, shape, rank, output, output_capacity, who);
    if (n == 0) return;
    const cnnx::Model& m = *model->model;
    const std::int64_t in = m.input_size(), out = m.output_size();
    Borrowed slot(model);
    slot->floats.resize(size_t(std::min(n, kChunk) * in));
    for (std::int64_t start = 0; start < n; start += kChunk) {
      const std::int64_t rows = std::min(kChunk, n - start);
      const uint8_t* src = input + start * in;
      for (std::int64_t i = 0; i < rows * in; ++i) slot->floats[size_t(i)] = float(src[i]);
      m.predict(*slot->context, slot->floats.data(), rows, output + start * out, kChunk);
    }
  });
}

}  // extern "C"
