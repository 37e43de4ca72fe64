#include "cnnx/random.hpp"

#include <cmath>
#include <mutex>
#include <random>

namespace cnnx {
namespace {

std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

std::mutex g_seed_mutex;
// Unseeded processes start from a random state, like Keras without set_random_seed.
Rng g_seed_rng(std::random_device{}() ^ (static_cast<std::uint64_t>(std::random_device{}()) << 32));

}  // namespace

void Rng::seed_with(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

float Rng::uniform() { return static_cast<float>(next_u64() >> 40) * (1.0f / 16777216.0f); }

double Rng::uniform_double() { return static_cast<double>(next_u64() >> 11) * (1.0 / 9007199254740992.0); }

double Rng::normal() {
  double u1 = uniform_double();
  while (u1 <= 0.0) u1 = uniform_double();
  const double u2 = uniform_double();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

double Rng::truncated_normal() {
  for (;;) {
    const double z = normal();
    if (z >= -2.0 && z <= 2.0) return z;
  }
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n <= 1) return 0;
  const std::uint64_t limit = ~std::uint64_t{0} - (~std::uint64_t{0} % n);
  std::uint64_t x;
  do x = next_u64();
  while (x >= limit);
  return x % n;
}

void set_random_seed(std::uint64_t seed) {
  std::lock_guard<std::mutex> lock(g_seed_mutex);
  g_seed_rng.seed_with(seed);
}

std::uint64_t next_seed() {
  std::lock_guard<std::mutex> lock(g_seed_mutex);
  return g_seed_rng.next_u64();
}

}  // namespace cnnx
