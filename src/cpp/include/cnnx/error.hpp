// Errors thrown by the core. The Python bindings map ValueError -> ValueError, TypeError ->
// TypeError, IndexError -> IndexError; C++ users catch cnnx::Error (a std::invalid_argument, so
// code that already handles standard exceptions keeps working). Messages name the layer, the
// expected and the received value: "conv2d: expected input with 3 channels, received 1".
#pragma once

#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "cnnx/export.hpp"

namespace cnnx {

class CNNX_API Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};
class CNNX_API ValueError : public Error {
 public:
  using Error::Error;
};
class CNNX_API TypeError : public Error {
 public:
  using Error::Error;
};
class CNNX_API IndexError : public Error {
 public:
  using Error::Error;
};
// A size that does not fit the core's arithmetic (tensor.hpp: checked_mul, shape_size, the
// per-sample limit). Thrown without a layer name; Layer::build and Sequential::reserve catch
// it and rethrow a ValueError naming the layer. Python sees ValueError either way.
class CNNX_API SizeError : public ValueError {
 public:
  using ValueError::ValueError;
};
// An allocation the system refused, with the byte count in the message. A std::bad_alloc, so
// pybind11 turns it into MemoryError and C++ callers that catch bad_alloc still do.
class CNNX_API AllocationError : public std::bad_alloc {
 public:
  explicit AllocationError(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

// "(28, 28, 1)" -- the Python tuple spelling, since that is what users see.
CNNX_API std::string shape_str(const std::vector<std::int64_t>& dims);
// A per-sample shape with the batch axis in front, as Keras prints it: "(None, 28, 28, 1)".
CNNX_API std::string batch_shape_str(const std::vector<std::int64_t>& sample);

}  // namespace cnnx
