// Options shared by the geometric random image layers (RandomRotation, RandomTranslation,
// RandomZoom). The random image layers act only in training (forward with training = true).
#pragma once

#include <cstdint>
#include <string>

namespace cnnx {

// Keras' fill_mode / interpolation / fill_value of the geometric layers, parsed and validated.
struct AffineOptions {
  std::string fill_mode = "reflect";
  std::string interpolation = "bilinear";
  float fill_value = 0.0f;
  bool has_seed = false;
  std::uint64_t seed = 0;
};

}  // namespace cnnx
