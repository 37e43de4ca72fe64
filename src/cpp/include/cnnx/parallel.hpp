// Thread control for the whole core. cnnx uses OpenMP at one level only: a kernel that is
// already inside a parallel region runs serially. Without OpenMP everything runs on one thread.
#pragma once

namespace cnnx {

// Number of threads the next kernels will use (>= 1). Defaults to OpenMP's default.
int get_num_threads();
// n >= 1; throws cnnx::ValueError otherwise.
void set_num_threads(int n);
// True when called from inside an OpenMP parallel region (kernels then stay serial).
bool in_parallel_region();
// While alive, kernels called from this thread run serially (in_parallel_region() is true).
// Used for single images: waking a sleeping OpenMP worker costs tens of microseconds, more
// than splitting a one-image convolution saves (measured: 0.24 ms serial, 0.56 ms on 2 threads).
class SerialScope {
 public:
  explicit SerialScope(bool active);
  ~SerialScope();
  SerialScope(const SerialScope&) = delete;
  SerialScope& operator=(const SerialScope&) = delete;

 private:
  bool active_;
};

// Index of the calling thread inside a parallel region (0 outside one or without OpenMP).
int thread_index();

}  // namespace cnnx
