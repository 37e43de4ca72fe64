// Shared by the binding files: file I/O in the core runs without the GIL, and its
// std::system_error reaches Python as OSError(errno, strerror), as Python's own open() raises.
#pragma once

#include <pybind11/pybind11.h>

#include <string>
#include <system_error>

namespace cnnx {

template <class F>
auto with_os_errors(F&& fn) -> decltype(fn()) {
  int code = 0;
  std::string text;
  {
    pybind11::gil_scoped_release release;
    try {
      return fn();
    } catch (const std::system_error& e) {
      code = e.code().value();
      text = e.code().message();
    }
  }
  PyErr_SetObject(PyExc_OSError, pybind11::make_tuple(code, text).ptr());
  throw pybind11::error_already_set();
}

}  // namespace cnnx
