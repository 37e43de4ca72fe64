// The GEMM micro-kernel contract, shared by the three ISA-specific kernels.
//
// A micro-kernel computes one MR x NR tile of C:
//   C(i, j) = epi(beta * C(i, j) + sum_{p < kc} Ap[p * MR + i] * B[p * b_step + j])
// for i < MR, j < NR, with C(i, j) = c[i * ldc + j].
//   Ap  A sliver: kc groups of MR values, group p = column p of the sliver (A(i0.., p)), group
//       p starting at Ap + p * a_step. Packed panels have a_step = MR; an A whose columns are
//       already contiguous (the weight gradient's im2col^T) is read in place with a_step = its
//       column stride, skipping the packing copy.
//   B   B sliver: kc rows of NR values, row p = B(p, j0..j0+NR) starting at B + p * b_step.
//       Packed slivers have b_step = NR and are 64-byte aligned; a row-major B is read in place
//       with b_step = its row stride (no alignment promised, so kernels use unaligned loads,
//       which cost nothing extra on aligned data).
//   epi the optional tile epilogue below, applied in registers just before the store, so the
//       finished tile is written once instead of stored, reloaded and stored again.
// Packed operands are zero-padded past the matrix edge by the packing routines, so a kernel
// never needs a remainder path. The sum over p runs in increasing p order in every kernel, so
// results do not depend on which kernel tile is used for a given element beyond the usual
// fused-multiply-add rounding.
//
// beta == 0 must not read C (it may hold NaN): kernels store the sum without loading C.
//
// Edges: kernels handle only full tiles. For a partial tile (fewer than MR rows or NR columns of
// C left) the driver calls the kernel with beta = 0 and no epilogue into a local MR x NR buffer,
// merges the valid corner into C and applies the epilogue there itself. This keeps every kernel
// a single ~30-line loop; the cost is one small copy per edge tile, which is noise next to the
// kc-long loop.
//
// kc >= 1 always (the driver handles k == 0 itself).
#pragma once

#include <cstdint>

namespace cnnx::kernels {

// What happens to a finished tile before it is stored (the last K block of C only):
// v = v + bias[j] (when bias is not null), then v = max(v, 0) (when relu). max(NaN, 0) is 0,
// as in the scalar `v > 0 ? v : 0` it replaces.
struct TileEpilogue {
  const float* bias;  // NR values for this tile's columns, or nullptr
  bool relu;
};

// 14 x 32; compiled with -mavx512f -mfma; call only when the CPU has AVX-512F.
void ukernel_avx512(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                    float beta, float* c, std::int64_t ldc, const TileEpilogue* epi);
// 14 x 32 with A row-major in place: row i of the sliver is a + i * lda, read one float per
// k step and broadcast, so an im2col panel needs no transposing pack. The 14 row streams are
// sequential, which the L1 prefetcher follows.
void ukernel_avx512_rows(std::int64_t kc, const float* a, std::int64_t lda, const float* b, std::int64_t b_step,
                         float beta, float* c, std::int64_t ldc, const TileEpilogue* epi);
// C(0:m, 0:n) = epi(beta * C + A * B) over kc for m < 14 rows, B row-major read in place
// (B(p, j) = b[p * rs_b + j]), any n; A(i, p) = a[i * rs_a + p * cs_a]. The epilogue's bias
// covers all n columns. Each element is summed in p order from zero, as in the tile kernels,
// so a row gets the same bits whichever path computed it.
void gemm_small_m_avx512(std::int64_t m, std::int64_t n, std::int64_t kc, const float* a, std::int64_t rs_a,
                         std::int64_t cs_a, const float* b, std::int64_t rs_b, float beta, float* c, std::int64_t ldc,
                         const TileEpilogue* epi);
// 14 x 32 with A gathered through 14 row pointers in runs of contiguous floats (an implicit
// GEMM for convolutions; contract beside the definition). Packed B only.
// Rows (a bit each) of an indirect tile whose first (last) edge_len floats of every segment
// read only zero padding and may be skipped; kernels honour the patterns they are compiled for
// and compute the others in full (the sums are the same either way).
struct IndirectEdgeSkip {
  unsigned first = 0, last = 0;
  std::int64_t edge_len = 0;
};
void ukernel_avx512_indirect(std::int64_t k0, std::int64_t kc, std::int64_t seg_len, std::int64_t seg_stride,
                             const float* const* rows, const float* bp, float beta, float* c, std::int64_t ldc,
                             const TileEpilogue* epi, const IndirectEdgeSkip& skip);
// Pixels [begin, begin + count) of a K range that runs over pixels, whose rows of B are
// [b_row, b_row + count) (b_row == begin for a B with one row per pixel).
struct PixelRun {
  std::int64_t begin, count, b_row;
};
// 14 x 32 with column p of A gathered from a + a_offsets[p] and its B row at
// b + b_row * b_step, summed over the pixels p of the runs (an implicit weight-gradient GEMM for convolutions;
// contract beside the definition). No epilogue; ones_row: row 13 of C sums the rows of B.
void ukernel_avx512_gather(const PixelRun* runs, std::int64_t nruns, const float* a, const std::int64_t* a_offsets,
                           const float* b, std::int64_t b_step, float beta, float* c, std::int64_t ldc, bool ones_row);
// 6 x 16; compiled with -mavx2 -mfma; call only when the CPU has AVX2 and FMA.
void ukernel_avx2(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                  float beta, float* c, std::int64_t ldc, const TileEpilogue* epi);
// 4 x 8; portable C++.
void ukernel_generic(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                     float beta, float* c, std::int64_t ldc, const TileEpilogue* epi);

}  // namespace cnnx::kernels
