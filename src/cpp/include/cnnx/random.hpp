// Seeded random numbers that are identical on every platform and compiler (std:: distributions
// are implementation-defined, so we derive floats ourselves). xoshiro256** seeded by splitmix64.
#pragma once

#include <cstdint>

#include "cnnx/export.hpp"

namespace cnnx {

class CNNX_API Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) { seed_with(seed); }
  void seed_with(std::uint64_t seed);
  std::uint64_t next_u64();
  float uniform();                       // [0, 1), 24 random bits
  double uniform_double();               // [0, 1), 53 random bits
  double normal();                       // standard normal (Box-Muller, no cached second value)
  double truncated_normal();             // standard normal redrawn outside [-2, 2], as Keras does
  std::uint64_t below(std::uint64_t n);  // uniform integer in [0, n), unbiased

 private:
  std::uint64_t s_[4];
};

// The process-wide seed generator, as in keras.utils.set_random_seed: layers draw their own
// Rng seeds from it when they are built, so the same seed gives the same model.
CNNX_API void set_random_seed(std::uint64_t seed);
CNNX_API std::uint64_t next_seed();

}  // namespace cnnx
