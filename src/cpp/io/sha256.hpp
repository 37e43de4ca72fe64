// SHA-256 (FIPS 180-4), private to the core: the model file's checksum (docs/model-format.md).
//
// Written here rather than taken from a library: no package a pip build can get without system
// packages gives a maintained SHA-256 to C++ (OpenSSL is a system library that a wheel build
// must not assume, and PyPI carries no C/C++ header package for it), and the algorithm is about
// 100 lines. It is tested against the FIPS 180-4 / NIST vectors and against Python's hashlib on
// random inputs of many lengths (tests/test_sha256.py).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace cnnx::io {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, std::size_t size);
  void update(const std::string& text) { update(text.data(), text.size()); }
  // The digest; the object is spent afterwards (create a new one to hash again).
  std::array<std::uint8_t, 32> final();
  std::string hex_final();

 private:
  void compress(const std::uint8_t* block);
  std::array<std::uint32_t, 8> state_;
  std::array<std::uint8_t, 64> block_{};
  std::size_t used_ = 0;      // bytes in block_
  std::uint64_t length_ = 0;  // bytes hashed so far (the message length is taken mod 2^64 bits)
};

}  // namespace cnnx::io
