// The GEMM micro-kernel contract, shared by the three ISA-specific kernels.
//
// A micro-kernel computes one MR x NR tile of C:
//   C(i, j) = beta * C(i, j) + sum_{p < kc} Ap[p * MR + i] * Bp[p * NR + j]
// for i < MR, j < NR, with C(i, j) = c[i * ldc + j].
//   Ap  A sliver: kc groups of MR values, group p = column p of the sliver (A(i0.., p)), group
//       p starting at Ap + p * a_step. Packed panels have a_step = MR; an A whose columns are
//       already contiguous (the weight gradient's im2col^T) is read in place with a_step = its
//       column stride, skipping the packing copy.
//   Bp  packed B sliver: kc groups of NR values, group p = row p of the sliver (B(p, j0..)).
// Both are 64-byte aligned and zero-padded past the matrix edge by the packing routines, so a
// kernel never needs a remainder path for the packed operands. The sum over p runs in
// increasing p order in every kernel, so results do not depend on which kernel tile is used for
// a given element beyond the usual fused-multiply-add rounding.
//
// beta == 0 must not read C (it may hold NaN): kernels store the sum without loading C.
//
// Edges: kernels handle only full tiles. For a partial tile (fewer than MR rows or NR columns of
// C left) the driver calls the kernel with beta = 0 into a local MR x NR buffer and merges the
// valid corner into C itself. This keeps every kernel a single ~30-line loop; the cost is one
// small copy per edge tile, which is noise next to the kc-long loop.
//
// kc >= 1 always (the driver handles k == 0 itself).
#pragma once

#include <cstdint>

namespace cnnx::kernels {

// 14 x 32; compiled with -mavx512f -mfma; call only when the CPU has AVX-512F.
void ukernel_avx512(std::int64_t kc, const float* ap, std::int64_t a_step, const float* bp, float beta, float* c,
                    std::int64_t ldc);
// 14 x 32 with A row-major in place: row i of the sliver is a + i * lda, read one float per
// k step and broadcast, so an im2col panel needs no transposing pack. The 14 row streams are
// sequential, which the L1 prefetcher follows.
void ukernel_avx512_rows(std::int64_t kc, const float* a, std::int64_t lda, const float* bp, float beta, float* c,
                         std::int64_t ldc);
// 6 x 16; compiled with -mavx2 -mfma; call only when the CPU has AVX2 and FMA.
void ukernel_avx2(std::int64_t kc, const float* ap, std::int64_t a_step, const float* bp, float beta, float* c,
                  std::int64_t ldc);
// 4 x 8; portable C++.
void ukernel_generic(std::int64_t kc, const float* ap, std::int64_t a_step, const float* bp, float beta, float* c,
                     std::int64_t ldc);

}  // namespace cnnx::kernels
