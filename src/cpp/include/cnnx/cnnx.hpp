// Umbrella header for C++ users of the cnnx core.
#pragma once

#include "cnnx/activations.hpp"
#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "cnnx/layer.hpp"
#include "cnnx/layers/conv2d.hpp"
#include "cnnx/layers/dense.hpp"
#include "cnnx/layers/flatten.hpp"
#include "cnnx/layers/max_pooling2d.hpp"
#include "cnnx/losses.hpp"
#include "cnnx/optimizers.hpp"
#include "cnnx/parallel.hpp"
#include "cnnx/random.hpp"
#include "cnnx/sequential.hpp"
#include "cnnx/tensor.hpp"
