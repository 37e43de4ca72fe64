// Private GEMM interface used by every layer of cnnx.
//
// Layout: all matrices are float32. Operands are addressed through a row stride and a column
// stride, so one routine serves A, A^T, B and B^T without copying:
//   A(i, p) = a[i * rs_a + p * cs_a]    (i < m, p < k)
//   B(p, j) = b[p * rs_b + j * cs_b]    (p < k, j < n)
//   C(i, j) = c[i * ldc + j]            (row-major, contiguous rows)
// and the routine computes C = beta * C + A * B. beta == 0 never reads C (so C may hold NaN).
//
// Threading: gemm() parallelises internally with OpenMP (one level). Called from inside an
// OpenMP parallel region it runs on the calling thread only. The result does not depend on the
// thread count: each C element is summed in the same k order whatever the partition.
#pragma once

#include <cstdint>

namespace cnnx::kernels {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

// The instruction set chosen once at load: CPUID, capped by the CNNX_ISA environment variable
// (avx512|avx2|generic). set_isa() can lower it (tests); asking for more than the CPU has throws.
Isa active_isa();
void set_isa(Isa isa);
const char* isa_name(Isa isa);
Isa best_supported_isa();

void gemm(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rs_a, std::int64_t cs_a,
          const float* b, std::int64_t rs_b, std::int64_t cs_b, float beta, float* c, std::int64_t ldc);

// What to do to each element of C once its sum is complete, while the tile is still in L1:
// C(i, j) = act(C(i, j) + bias[j]). Saves the separate bias and activation passes over a
// conv output that is several MB (larger than L2) per batch.
struct GemmEpilogue {
  const float* bias = nullptr;  // per column of C, or nullptr
  bool relu = false;
};

void gemm(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rs_a, std::int64_t cs_a,
          const float* b, std::int64_t rs_b, std::int64_t cs_b, float beta, float* c, std::int64_t ldc,
          const GemmEpilogue& epilogue);

// B (k x n, B(p, j) = b[p * rs_b + j * cs_b]) packed as the micro-kernels of `isa` read it:
// NR-wide slivers of all k rows, k-major, zero past n (gemm_ukernel.hpp), packed_b_size floats.
// The same packing routine gemm() uses per block, for callers that pack once for many calls.
std::int64_t packed_b_size(Isa isa, std::int64_t k, std::int64_t n);
void pack_b(Isa isa, std::int64_t k, std::int64_t n, const float* b, std::int64_t rs_b, std::int64_t cs_b, float* dst);

// Naive triple loop with the same contract, kept for tests.
void gemm_ref(std::int64_t m, std::int64_t n, std::int64_t k, const float* a, std::int64_t rs_a, std::int64_t cs_a,
              const float* b, std::int64_t rs_b, std::int64_t cs_b, float beta, float* c, std::int64_t ldc);

}  // namespace cnnx::kernels
