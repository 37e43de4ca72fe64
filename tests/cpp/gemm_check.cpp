// Standalone check of the GEMM: every ISA this CPU supports against gemm_ref, plus a timing
// mode. Plain main(); exit status 0 = all checks passed.
//
// Build (from the repo root; the ukernel files need their own ISA flags, nothing else does),
// three commands, each on one line:
//   B=/tmp/cnnx_gemm_check; mkdir -p $B
//   g++ -O3 -std=c++17 -Isrc/cpp/include -Isrc/cpp -mavx512f -mfma
//       -c src/cpp/kernels/gemm_ukernel_avx512.cpp -o $B/ukernel_avx512.o
//   g++ -O3 -std=c++17 -Isrc/cpp/include -Isrc/cpp -mavx2 -mfma
//       -c src/cpp/kernels/gemm_ukernel_avx2.cpp -o $B/ukernel_avx2.o
//   g++ -O3 -std=c++17 -fopenmp -Isrc/cpp/include -Isrc/cpp tests/cpp/gemm_check.cpp
//       src/cpp/kernels/gemm.cpp src/cpp/kernels/gemm_ref.cpp src/cpp/kernels/dispatch.cpp
//       src/cpp/kernels/gemm_ukernel_generic.cpp src/cpp/core/parallel.cpp
//       $B/ukernel_avx512.o $B/ukernel_avx2.o -o $B/gemm_check
// (Drop -fopenmp to check the serial build.)
//
// Run:  $B/gemm_check          correctness (a few seconds)
//       $B/gemm_check --bench [ISA]  GFLOP/s per ISA (or just ISA), 1 and 2 threads, on the
//                                    layer-sized shapes and 1024^3
//
// What is checked, for each supported ISA and 1 and 2 threads:
//   - m, n, k sampled from awkward sizes around the tile sizes (1..300), all four transpose
//     combinations (through strides, with padded leading dimensions), beta = 0 with C full of
//     NaN (C must not be read) and beta = 1; k < MR; the padding around C is never written.
//   - three layer-sized shapes (conv forward, conv weight gradient, dense).
//   - the result with 2 threads is bitwise identical to 1 thread (K is never split).
//   - k = 0, set_isa() errors, isa_name().
// Error bound: |c - ref| <= 1e-5 * sqrt(k) * max(1, |ref|), ref summed in double. Inputs are
// uniform in [-1, 1], so float rounding gives about 1e-7 * sqrt(k) * |terms|; the bound leaves
// two orders of margin while still catching a dropped or doubled product term.
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cnnx/error.hpp"
#include "cnnx/parallel.hpp"
#include "kernels/gemm.hpp"

namespace {

using cnnx::kernels::Isa;
using std::int64_t;

int g_failures = 0;

void fail(const std::string& what) {
  if (++g_failures <= 20) std::printf("FAIL: %s\n", what.c_str());
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512}) {
    if (static_cast<int>(isa) <= static_cast<int>(cnnx::kernels::best_supported_isa())) out.push_back(isa);
  }
  return out;
}

// A logical rows x cols matrix stored row-major or column-major with a padded leading dimension.
struct Operand {
  std::vector<float> data;
  int64_t rs = 0, cs = 0;
};

Operand make_operand(const std::vector<float>& logical, int64_t rows, int64_t cols, bool transposed) {
  Operand op;
  const int64_t pad = 3;
  if (!transposed) {
    op.rs = cols + pad;
    op.cs = 1;
    op.data.assign(rows * op.rs, 7.0f);
  } else {
    op.rs = 1;
    op.cs = rows + pad;
    op.data.assign(cols * op.cs, 7.0f);
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) op.data[i * op.rs + j * op.cs] = logical[i * cols + j];
  return op;
}

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Checks one shape: every ISA x threads x transposes x beta against one reference per beta.
void check_shape(int64_t m, int64_t n, int64_t k, std::mt19937& rng, bool all_layouts) {
  const std::vector<float> a = random_vector(m * k, rng), b = random_vector(k * n, rng);
  const std::vector<float> c0 = random_vector(m * n, rng);
  const int64_t ldc = n + 5;  // padded so a write past the row shows up
  const float kSentinel = -12345.0f;
  for (float beta : {0.0f, 1.0f}) {
    std::vector<float> ref(m * n);
    if (beta != 0.0f) ref = c0;
    cnnx::kernels::gemm_ref(m, n, k, a.data(), k, 1, b.data(), n, 1, beta, ref.data(), n);
    for (int layout = 0; layout < 4; ++layout) {
      if (!all_layouts && layout != (m + n + k + (beta != 0.0f)) % 4) continue;
      const bool ta = layout & 1, tb = layout & 2;
      const Operand opa = make_operand(a, m, k, ta), opb = make_operand(b, k, n, tb);
      for (Isa isa : supported_isas()) {
        cnnx::kernels::set_isa(isa);
        std::vector<float> first;
        for (int threads : {1, 2}) {
          cnnx::set_num_threads(threads);
          std::vector<float> c(m * ldc, kSentinel);
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j)
              c[i * ldc + j] = beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : c0[i * n + j];
          cnnx::kernels::gemm(m, n, k, opa.data.data(), opa.rs, opa.cs, opb.data.data(), opb.rs, opb.cs, beta, c.data(),
                              ldc);
          char where[160];
          std::snprintf(where, sizeof where,
                        "%s threads=%d m=%lld n=%lld k=%lld ta=%d tb=%d "
                        "beta=%g",
                        cnnx::kernels::isa_name(isa), threads, (long long)m, (long long)n, (long long)k, ta, tb, beta);
          double worst = 0.0;
          bool pad_ok = true;
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < ldc; ++j) {
              const float got = c[i * ldc + j];
              if (j >= n) {
                pad_ok = pad_ok && got == kSentinel;
                continue;
              }
              const double want = ref[i * n + j];
              const double err = std::fabs(got - want) / std::max(1.0, std::fabs(want));
              worst = std::isnan(got) ? INFINITY : std::max(worst, err);
            }
          }
          if (!(worst <= 1e-5 * std::sqrt(static_cast<double>(k))))
            fail(std::string(where) + " rel error " + std::to_string(worst));
          if (!pad_ok) fail(std::string(where) + " wrote outside C");
          if (threads == 1) {
            first = c;
          } else if (std::memcmp(first.data(), c.data(), c.size() * sizeof(float)) != 0) {
            fail(std::string(where) + " differs from the 1-thread result");
          }
        }
      }
    }
  }
}

void check_misc() {
  // k == 0: C = beta * C, beta == 0 writes zeros over NaN.
  float c[4] = {NAN, NAN, 2.0f, 2.0f};
  cnnx::kernels::gemm(1, 2, 0, nullptr, 0, 1, nullptr, 2, 1, 0.0f, c, 2);
  cnnx::kernels::gemm(1, 2, 0, nullptr, 0, 1, nullptr, 2, 1, 0.5f, c + 2, 2);
  if (c[0] != 0.0f || c[1] != 0.0f || c[2] != 1.0f || c[3] != 1.0f) fail("k == 0");
  // m == 0 / n == 0 touch nothing.
  cnnx::kernels::gemm(0, 2, 3, nullptr, 3, 1, nullptr, 2, 1, 0.0f, nullptr, 2);

  if (std::string(cnnx::kernels::isa_name(Isa::avx512)) != "avx512") fail("isa_name");
  const Isa best = cnnx::kernels::best_supported_isa();
  if (best != Isa::avx512) {
    bool threw = false;
    try {
      cnnx::kernels::set_isa(Isa::avx512);
    } catch (const cnnx::ValueError& e) {
      threw = true;
      std::printf("set_isa(avx512) on this CPU: %s\n", e.what());
    }
    if (!threw) fail("set_isa above the CPU's ISA did not throw");
  }
  cnnx::kernels::set_isa(best);
  if (cnnx::kernels::active_isa() != best) fail("set_isa/active_isa");
}

int run_checks() {
  std::printf("best ISA: %s, active at start: %s\n", cnnx::kernels::isa_name(cnnx::kernels::best_supported_isa()),
              cnnx::kernels::isa_name(cnnx::kernels::active_isa()));
  std::mt19937 rng(1234);
  const int64_t sizes[] = {1, 2, 3, 7, 13, 14, 15, 17, 31, 33, 64, 97, 257, 300};
  const int count = sizeof sizes / sizeof sizes[0];
  int shapes = 0;
  // Every (m, n) pair with two k values: one below the largest MR (14), one sampled.
  for (int im = 0; im < count; ++im) {
    for (int in = 0; in < count; ++in) {
      const int64_t m = sizes[im], n = sizes[in];
      const int64_t k_small = sizes[(im + in) % 5];  // 1, 2, 3, 7 or 13
      const int64_t k_any = sizes[rng() % count];
      const bool all_layouts = (im + 2 * in) % 3 == 0;  // a third of the pairs get all four
      check_shape(m, n, k_small, rng, all_layouts);
      check_shape(m, n, k_any, rng, all_layouts);
      shapes += 2;
    }
  }
  // Layer-sized: conv forward, conv weight gradient, dense; K past one KC block.
  check_shape(12544, 64, 288, rng, false);
  check_shape(288, 64, 12544, rng, false);
  check_shape(64, 100, 1152, rng, true);
  shapes += 3;
  check_misc();
  std::printf("%d shapes checked, %d failure(s)\n", shapes, g_failures);
  return g_failures == 0 ? 0 : 1;
}

// ---- timing mode ------------------------------------------------------------------------------

struct BenchShape {
  const char* name;
  int64_t m, n, k;
  bool ta;  // A stored transposed (weight gradient reads im2col^T)
};

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// only_isa: run just this ISA (nullptr = every supported one).
int run_bench(const char* only_isa) {
  const BenchShape shapes[] = {
      {"conv fwd   12544x64x288 ", 12544, 64, 288, false},
      {"conv dW    288x64x12544 ", 288, 64, 12544, true},
      {"dense      64x100x1152  ", 64, 100, 1152, false},
      {"square     1024^3       ", 1024, 1024, 1024, false},
  };
  std::mt19937 rng(42);
  for (const BenchShape& s : shapes) {
    const std::vector<float> a = random_vector(s.m * s.k, rng), b = random_vector(s.k * s.n, rng);
    std::vector<float> c(s.m * s.n);
    const int64_t rs_a = s.ta ? 1 : s.k, cs_a = s.ta ? s.m : 1;
    const double flops = 2.0 * s.m * s.n * s.k;
    std::printf("%s", s.name);
    for (Isa isa : supported_isas()) {
      if (only_isa != nullptr && std::strcmp(only_isa, cnnx::kernels::isa_name(isa)) != 0) continue;
      cnnx::kernels::set_isa(isa);
      for (int threads : {1, 2}) {
        cnnx::set_num_threads(threads);
        double best = 1e30;
        const double start = seconds_now();
        for (int rep = 0; rep < 200 && (rep < 3 || seconds_now() - start < 0.4); ++rep) {
          const double t0 = seconds_now();
          cnnx::kernels::gemm(s.m, s.n, s.k, a.data(), rs_a, cs_a, b.data(), s.n, 1, 0.0f, c.data(), s.n);
          best = std::min(best, seconds_now() - t0);
        }
        std::printf("  %s/%dt %6.1f", cnnx::kernels::isa_name(isa), threads, flops / best * 1e-9);
      }
    }
    std::printf("   GFLOP/s\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--bench") == 0) return run_bench(argc > 2 ? argv[2] : nullptr);
  return run_checks();
}
