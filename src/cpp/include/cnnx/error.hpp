// Errors thrown by the core. The Python bindings map ValueError -> ValueError, TypeError ->
// TypeError, IndexError -> IndexError; C++ users catch cnnx::Error (a std::invalid_argument, so
// code that already handles standard exceptions keeps working). Messages name the layer, the
// expected and the received value: "conv2d: expected input with 3 channels, received 1".
#pragma once

#include <stdexcept>
#include <string>
#include <vector>
#include <cstdint>

namespace cnnx {

class Error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};
class ValueError : public Error {
 public:
  using Error::Error;
};
class TypeError : public Error {
 public:
  using Error::Error;
};
class IndexError : public Error {
 public:
  using Error::Error;
};

// "(28, 28, 1)" -- the Python tuple spelling, since that is what users see.
std::string shape_str(const std::vector<std::int64_t>& dims);
// A per-sample shape with the batch axis in front, as Keras prints it: "(None, 28, 28, 1)".
std::string batch_shape_str(const std::vector<std::int64_t>& sample);

}  // namespace cnnx
