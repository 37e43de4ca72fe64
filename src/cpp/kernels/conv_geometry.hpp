// Geometry of one 2-D sliding-window op (convolution or pooling) on an NHWC sample.
#pragma once

#include <algorithm>
#include <cstdint>

#include "cnnx/tensor.hpp"

namespace cnnx::kernels {

struct ConvGeometry {
  std::int64_t h, w, c;  // input, one sample
  std::int64_t kh, kw;   // kernel
  std::int64_t sh, sw;   // strides
  std::int64_t dh, dw;   // dilation
  std::int64_t pad_top, pad_left;
  std::int64_t oh, ow;  // output
  std::int64_t patch() const { return kh * kw * c; }
  // True when the column matrix equals the input itself (1x1, stride 1, no padding).
  bool is_identity() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && pad_top == 0 && pad_left == 0 && oh == h && ow == w;
  }
};

// Output length and leading pad along one axis, as TensorFlow/Keras compute them: "same" gives
// ceil(in / s) outputs and puts the odd pad pixel at the end; "valid" gives 0 when the window
// does not fit (callers turn that into an error). Checked: a huge kernel, dilation or stride
// throws SizeError rather than wrapping.
inline void window_axis(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t d, bool same, std::int64_t* out,
                        std::int64_t* pad_before) {
  const std::int64_t span = checked_add(checked_mul(d, k - 1), 1);
  if (same) {
    *out = in / s + (in % s != 0);
    *pad_before = std::max<std::int64_t>(checked_add(checked_mul(*out - 1, s), span) - in, 0) / 2;
  } else {
    *out = in >= span ? (in - span) / s + 1 : 0;
    *pad_before = 0;
  }
}

}  // namespace cnnx::kernels
