// Writes the model files the C API test reads (ctest runs it first, as a fixture):
//   write_test_models DIR  ->  DIR/small.cnnx (tests/cpp/test_models.hpp)
#include <cnnx/model_file.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "test_models.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: write_test_models DIR\n");
    return 2;
  }
  try {
    cnnx::save_model(*cnnx_test::make_small_model(), std::string(argv[1]) + "/small.cnnx");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "write_test_models: %s\n", e.what());
    return 1;
  }
  return 0;
}
