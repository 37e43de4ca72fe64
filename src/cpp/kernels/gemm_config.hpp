// Block sizes and micro-kernel descriptions for the GEMM (kernels/gemm.cpp), all in one place.
//
// Layout: the driver copies A into panels of MC x KC (MR-row slivers, each stored k-major) and B
// into panels of KC x NC (NR-column slivers, each stored k-major); see gemm_ukernel.hpp.
//
// Why these sizes (Sapphire Rapids: L1d 48 KB, L2 2 MB per core, shared L3):
//   KC  one packed B sliver (KC x NR) must stay in L1 while the kernel sweeps all the A slivers
//       of the panel past it, next to one streaming A sliver (MR x KC).
//   MC  the packed A panel (MC x KC) lives in L2; about half of L2 leaves room for the B and
//       C traffic. MC is a multiple of MR so only the last panel of a matrix has a short sliver.
//   NC  the packed B panel (KC x NC, 6 MB for AVX-512) lives in L2/L3; it is large so that A
//       is packed as few times as possible (once for every N <= NC, i.e. every layer we have).
// Each ISA gets its own numbers because the tile, hence the sliver sizes, differ.
//
// Threading: these are per-thread sizes; each thread owns its A and B panels. The AVX-512
// numbers were tuned with the timing mode of tests/cpp/gemm_check.cpp (KC 256..512 and MC
// 224..672 were all within the machine's run-to-run noise; KC = 384 was best on the conv
// shapes). The driver evens out the K blocks, so KC is an upper bound.
#pragma once

#include <cstdint>

namespace cnnx::kernels {

struct TileEpilogue;

// C(0:mr, 0:nr) = epi(beta * C + Ap * B) over kc, full tile only; see gemm_ukernel.hpp.
using UkernelFn = void (*)(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                           float beta, float* c, std::int64_t ldc, const TileEpilogue* epi);

// The same tile with A read in place from a row-major matrix (A(i, p) = a[i * lda + p]); see
// gemm_ukernel.hpp. nullptr where an ISA has no such kernel (the driver then packs A).
using UkernelRowsFn = void (*)(std::int64_t kc, const float* a, std::int64_t lda, const float* b, std::int64_t b_step,
                               float beta, float* c, std::int64_t ldc, const TileEpilogue* epi);

// A C with fewer rows than one tile, B row-major in place; see gemm_ukernel.hpp. nullptr where
// an ISA has none (the driver then uses an edge tile).
using SmallMFn = void (*)(std::int64_t m, std::int64_t n, std::int64_t kc, const float* a, std::int64_t rs_a,
                          std::int64_t cs_a, const float* b, std::int64_t rs_b, float beta, float* c, std::int64_t ldc,
                          const TileEpilogue* epi);

struct Ukernel {
  int mr;  // rows of C per call (A sliver height)
  int nr;  // columns of C per call (B sliver width)
  int mc;  // rows of A per packed panel, a multiple of mr
  int kc;  // depth of one packed panel
  int nc;  // columns of B per packed panel, a multiple of nr
  UkernelFn fn;
  UkernelRowsFn fn_rows;
  SmallMFn fn_small_m;
};

// Micro-tiles: 14 x 32 (AVX-512, 28 zmm accumulators), 6 x 16 (AVX2, 12 ymm accumulators),
// 4 x 8 (generic, 8 xmm accumulators at SSE2). The reasons sit with each kernel.
inline constexpr int kMrAvx512 = 14, kNrAvx512 = 32;
inline constexpr int kMrAvx2 = 6, kNrAvx2 = 16;
inline constexpr int kMrGeneric = 4, kNrGeneric = 8;

inline constexpr int kMcAvx512 = 14 * 24, kKcAvx512 = 384, kNcAvx512 = 32 * 128;
inline constexpr int kMcAvx2 = 6 * 24, kKcAvx2 = 256, kNcAvx2 = 16 * 256;
inline constexpr int kMcGeneric = 4 * 32, kKcGeneric = 256, kNcGeneric = 8 * 512;

// Largest tile of any kernel: the size of the driver's on-stack edge buffer.
inline constexpr int kMaxMr = 16, kMaxNr = 32;

}  // namespace cnnx::kernels
