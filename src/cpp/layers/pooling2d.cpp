// Shared validation and geometry of the 2-D window poolings (see pooling2d.hpp).
#include "layers/pooling2d.hpp"

#include "cnnx/error.hpp"

namespace cnnx {

void normalize_pooling_config(Pooling2DConfig& c, const std::string& where) {
  if (!c.stride_h) c.stride_h = c.pool_h;
  if (!c.stride_w) c.stride_w = c.pool_w;
  auto pair = [](std::int64_t a, std::int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  if (c.pool_h <= 0 || c.pool_w <= 0)
    throw ValueError(where + ": expected positive pool_size, received pool_size=" + pair(c.pool_h, c.pool_w));
  if (*c.stride_h <= 0 || *c.stride_w <= 0)
    throw ValueError(where + ": expected positive strides, received strides=" + pair(*c.stride_h, *c.stride_w));
  if (c.padding != "valid" && c.padding != "same")
    throw ValueError(where + ": expected padding 'valid' or 'same', received padding='" + c.padding + "'");
}

kernels::ConvGeometry pooling_geometry(const Pooling2DConfig& c, const Shape& in, const std::string& where) {
  if (in.size() != 3)
    throw ValueError(where + ": expected input of rank 4 (batch, height, width, channels), received shape " +
                     batch_shape_str(in));
  kernels::ConvGeometry g{in[0], in[1], in[2], c.pool_h, c.pool_w, *c.stride_h, *c.stride_w, 1, 1, 0, 0, 0, 0};
  const bool same = c.padding == "same";
  try {
    kernels::window_axis(g.h, g.kh, g.sh, 1, same, &g.oh, &g.pad_top);
    kernels::window_axis(g.w, g.kw, g.sw, 1, same, &g.ow, &g.pad_left);
  } catch (const SizeError& e) {
    throw ValueError(where + ": pool_size=" + shape_str({g.kh, g.kw}) + " with strides=" + shape_str({g.sh, g.sw}) +
                     " is too large for size arithmetic (" + e.what() + ")");
  }
  if (g.oh <= 0 || g.ow <= 0)
    throw ValueError(where + ": input " + shape_str({-1, g.h, g.w, g.c}) + " is smaller than pool_size (" +
                     std::to_string(g.kh) + ", " + std::to_string(g.kw) + ") with padding='valid'");
  if (shape_size(in) > INT32_MAX)
    throw ValueError(where + ": input sample too large for pooling indices, received shape " + shape_str(in));
  return g;
}

}  // namespace cnnx
