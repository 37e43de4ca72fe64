// _core's model-file container functions (private; python/cnnx/saving.py calls them): the
// container's I/O runs without the GIL; numpy arrays are written in place and read ones take
// over the core's buffers (no copies). I/O errors become OSError with the errno and no file
// name: saving.py names the path as the user spelled it; a bad file is ValueError
// "<name>: <problem>" with the name saving.py passes.
#include "cnnx/model_file.hpp"

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <system_error>

#include "bindings/os_errors.hpp"
#include "cnnx/error.hpp"
#include "io/atomic_file.hpp"
#include "io/model_file_io.hpp"
#include "io/sha256.hpp"

namespace py = pybind11;

namespace cnnx {
namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

py::tuple to_python(ModelFileContents&& contents) {
  py::list tensors;
  for (FileTensor& t : contents.tensors) {
    auto* data = new std::vector<float>(std::move(t.data));
    py::capsule owner(data, [](void* p) { delete static_cast<std::vector<float>*>(p); });
    tensors.append(py::make_tuple(t.name, FloatArray(t.shape, data->data(), owner)));
  }
  return py::make_tuple(contents.metadata, tensors);
}

}  // namespace

void bind_model_file(py::module_& m) {
  m.def(
      "read_model_file",
      [](const std::string& path, const std::string& name) {
        return to_python(with_os_errors([&] { return io::read_container_file(path, name); }));
      },
      py::arg("path"), py::arg("name"),
      "(metadata, [(name, float32 array), ...]) of a checked model file; ValueError '<name>: <problem>'");
  m.def(
      "parse_model_file",
      [](const py::buffer& blob, const std::string& name) {
        const py::buffer_info info = blob.request();  // holds the buffer while the GIL is released
        if (info.ndim != 1 || info.itemsize != 1 || (info.size > 0 && info.strides[0] != 1)) {
          throw TypeError("parse_model_file: expected bytes");
        }
        const auto* bytes = static_cast<const std::uint8_t*>(info.ptr);
        return to_python(
            with_os_errors([&] { return io::parse_container(bytes, static_cast<std::size_t>(info.size), name); }));
      },
      py::arg("blob"), py::arg("name"));
  m.def(
      "write_model_file",
      [](const std::string& path, const std::map<std::string, std::string>& metadata, const py::list& tensors) {
        std::vector<std::string> names;
        std::vector<Shape> shapes;
        std::vector<FloatArray> arrays;  // keep the (converted) arrays alive while writing
        names.reserve(tensors.size());
        shapes.reserve(tensors.size());
        arrays.reserve(tensors.size());
        for (const py::handle item : tensors) {
          const auto pair = item.cast<py::tuple>();
          if (pair.size() != 2) throw TypeError("write_model_file: expected (name, array) pairs");
          names.push_back(pair[0].cast<std::string>());
          arrays.push_back(FloatArray::ensure(pair[1]));
          if (!arrays.back()) throw py::error_already_set();
          const FloatArray& a = arrays.back();
          shapes.emplace_back(a.shape(), a.shape() + a.ndim());
        }
        std::vector<io::TensorView> views;
        for (std::size_t i = 0; i < arrays.size(); ++i) views.push_back({&names[i], &shapes[i], arrays[i].data()});
        with_os_errors([&] { io::write_container_file(path, metadata, views); });
      },
      py::arg("path"), py::arg("metadata"), py::arg("tensors"));
  m.def("_model_file_host_tag", &io::host_tag);
  m.def(
      "_sha256",
      [](const py::bytes& data, const std::vector<std::size_t>& pieces) {
        // fed piece by piece (the sizes given, then the rest): the streaming path is what the reader uses
        const std::string text = data;
        io::Sha256 digest;
        std::size_t at = 0;
        for (std::size_t n : pieces) {
          n = std::min(n, text.size() - at);
          digest.update(text.data() + at, n);
          at += n;
        }
        digest.update(text.data() + at, text.size() - at);
        return digest.hex_final();
      },
      py::arg("data"), py::arg("pieces") = std::vector<std::size_t>{});
}

}  // namespace cnnx
