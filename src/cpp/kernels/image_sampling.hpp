// How the geometric image layers sample their input (kernels/image.hpp): Keras' fill modes and
// interpolations, parsed from their Keras spellings.
#pragma once

#include <string>

namespace cnnx::kernels {

enum class FillMode { reflect, wrap, constant, nearest };
enum class Interpolation { bilinear, nearest };

struct AffineSpec {
  FillMode fill_mode = FillMode::reflect;
  Interpolation interpolation = Interpolation::bilinear;
  float fill_value = 0.0f;
};

// ValueError naming `where` for anything else than "reflect" / "wrap" / "constant" / "nearest",
// resp. "bilinear" / "nearest".
FillMode parse_fill_mode(const std::string& value, const std::string& where);
Interpolation parse_interpolation(const std::string& value, const std::string& where);

}  // namespace cnnx::kernels
