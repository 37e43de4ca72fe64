#include "cnnx/initializers.hpp"

#include <cmath>

#include "cnnx/error.hpp"

namespace cnnx {
namespace {

// Keras draws VarianceScaling "truncated_normal" with this correction so that the truncated
// distribution keeps the requested variance (stddev of N(0,1) cut at +-2).
constexpr double kTruncatedStddev = 0.87962566103423978;

struct Spec {
  const char* name;
  double scale;  // variance scale
  int mode;      // 0 fan_in, 1 fan_avg
  bool uniform;
};

const Spec kSpecs[] = {
    {"glorot_uniform", 1.0, 1, true}, {"glorot_normal", 1.0, 1, false}, {"he_uniform", 2.0, 0, true},
    {"he_normal", 2.0, 0, false},     {"lecun_uniform", 1.0, 0, true},  {"lecun_normal", 1.0, 0, false},
};

}  // namespace

void check_initializer(const std::string& name, const std::string& where) {
  if (name == "zeros" || name == "ones") return;
  for (const auto& s : kSpecs)
    if (name == s.name) return;
  throw ValueError(where + ": unknown initializer '" + name +
                   "'; expected one of zeros, ones, glorot_uniform, glorot_normal, he_uniform, "
                   "he_normal, lecun_uniform, lecun_normal");
}

void initialize(Tensor& t, const std::string& name, double fan_in, double fan_out, Rng& rng) {
  float* p = t.data();
  const std::int64_t n = t.size();
  if (name == "zeros" || name == "ones") {
    const float v = name == "ones" ? 1.0f : 0.0f;
    for (std::int64_t i = 0; i < n; ++i) p[i] = v;
    return;
  }
  for (const auto& s : kSpecs) {
    if (name != s.name) continue;
    const double fan = s.mode == 0 ? fan_in : 0.5 * (fan_in + fan_out);
    const double variance = s.scale / std::max(1.0, fan);
    if (s.uniform) {
      const double limit = std::sqrt(3.0 * variance);
      for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>((2.0 * rng.uniform_double() - 1.0) * limit);
    } else {
      const double stddev = std::sqrt(variance) / kTruncatedStddev;
      for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(rng.truncated_normal() * stddev);
    }
    return;
  }
  check_initializer(name, "initialize");
}

}  // namespace cnnx
