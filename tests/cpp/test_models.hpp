// Small models the C++ and C API tests load from files they write at test time (nothing is read
// from outside the build tree).
#pragma once

#include <cnnx/cnnx.hpp>
#include <memory>

namespace cnnx_test {

// Rescaling(1/255) first, as image models have, so uint8 pixels and their float values give the
// same outputs; then conv + pool + dense to a softmax over three named classes. Input {9, 7, 3}:
// no square image and more than one channel, so a swapped or dropped axis is a wrong shape.
inline std::shared_ptr<cnnx::Sequential> make_small_model() {
  cnnx::set_random_seed(5);
  auto model = std::make_shared<cnnx::Sequential>();
  model->add(cnnx::make_rescaling("rescaling", 1.0f / 255.0f));
  cnnx::Conv2DConfig conv;
  conv.filters = 4;
  conv.padding = "same";
  conv.activation = "relu";
  model->add(cnnx::make_conv2d("conv", conv));
  cnnx::MaxPooling2DConfig pool;
  pool.pool_h = pool.pool_w = 2;
  model->add(cnnx::make_max_pooling2d("pool", pool));
  model->add(cnnx::make_flatten("flatten"));
  cnnx::DenseConfig dense;
  dense.units = 3;
  dense.activation = "softmax";
  model->add(cnnx::make_dense("dense", dense));
  model->build({9, 7, 3});
  model->set_class_names({"circle", "square", "triangle"});
  return model;
}

}  // namespace cnnx_test
