// AVX-512 GEMM micro-kernel: a 14 x 32 tile of C (contract in gemm_ukernel.hpp).
//
// Why 14 x 32: a row of 32 floats is two zmm registers, so the tile needs 28 accumulators;
// with the two B vectors and the broadcast A value that is 31 of the 32 zmm registers (a 7 x 64
// tile would need 33). Each k step issues 28 independent FMAs
// against 2 vector loads + 14 broadcasts: enough independent chains to cover the 4-cycle FMA
// latency on both FMA ports (8 needed), and few enough loads that the two load ports never
// limit. Rows of C are contiguous, so the tile is written with full 64-byte stores, after the
// epilogue (bias, ReLU) has run on the registers.
//
// Compiled alone with -mavx512f -mfma (CMake sets the flag on this file only); dispatch.cpp
// guarantees it is called only on CPUs (and OSes) with AVX-512F enabled.
#include <immintrin.h>

#include <algorithm>

#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"

namespace cnnx::kernels {
namespace {

constexpr int kMr = kMrAvx512;
static_assert(kNrAvx512 == 32, "the tile is two zmm registers wide");

inline void zero_tile(__m512 (&lo)[kMr], __m512 (&hi)[kMr]) {
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i) lo[i] = hi[i] = _mm512_setzero_ps();
}

// One k step of every kernel below: row i of the tile += a(i) * [b0 b1], for the rows not in
// kSkip (a bit per row, dropped at compile time). The kernels differ only in where a(i), the
// column of A, comes from.
template <unsigned kSkip = 0u, class ColumnOfA>
__attribute__((always_inline)) inline void rank1_update(__m512 (&lo)[kMr], __m512 (&hi)[kMr], ColumnOfA a, __m512 b0,
                                                        __m512 b1) {
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i) {
    if ((kSkip >> i) & 1u) continue;
    const __m512 av = _mm512_set1_ps(a(i));
    lo[i] = _mm512_fmadd_ps(av, b0, lo[i]);
    hi[i] = _mm512_fmadd_ps(av, b1, hi[i]);
  }
}

// beta * C + acc, then the epilogue, then one store per half row.
inline void store_tile(__m512 (&lo)[kMr], __m512 (&hi)[kMr], float beta, float* c, std::int64_t ldc,
                       const TileEpilogue* epi) {
  const __m512 vbeta = _mm512_set1_ps(beta);
  const __m512 zero = _mm512_setzero_ps();
  const bool bias = epi != nullptr && epi->bias != nullptr;
  const bool relu = epi != nullptr && epi->relu;
  const __m512 bias_lo = bias ? _mm512_loadu_ps(epi->bias) : zero;
  const __m512 bias_hi = bias ? _mm512_loadu_ps(epi->bias + 16) : zero;
#pragma GCC unroll 14
  for (int i = 0; i < kMr; ++i, c += ldc) {
    if (beta != 0.0f) {  // beta == 0 must not read C
      lo[i] = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(c), lo[i]);
      hi[i] = _mm512_fmadd_ps(vbeta, _mm512_loadu_ps(c + 16), hi[i]);
    }
    if (bias) {
      lo[i] = _mm512_add_ps(lo[i], bias_lo);
      hi[i] = _mm512_add_ps(hi[i], bias_hi);
    }
    if (relu) {  // max(v, 0) returns the second operand, 0, for a NaN v
      lo[i] = _mm512_max_ps(lo[i], zero);
      hi[i] = _mm512_max_ps(hi[i], zero);
    }
    _mm512_storeu_ps(c, lo[i]);
    _mm512_storeu_ps(c + 16, hi[i]);
  }
}

}  // namespace

void ukernel_avx512(std::int64_t kc, const float* ap, std::int64_t a_step, const float* b, std::int64_t b_step,
                    float beta, float* c, std::int64_t ldc, const TileEpilogue* epi) {
  __m512 lo[kMr], hi[kMr];
  zero_tile(lo, hi);

  for (std::int64_t p = 0; p < kc; ++p, ap += a_step, b += b_step) {
    rank1_update(lo, hi, [ap](int i) { return ap[i]; }, _mm512_loadu_ps(b), _mm512_loadu_ps(b + 16));
  }
  store_tile(lo, hi, beta, c, ldc, epi);
}

void ukernel_avx512_rows(std::int64_t kc, const float* a, std::int64_t lda, const float* b, std::int64_t b_step,
                         float beta, float* c, std::int64_t ldc, const TileEpilogue* epi) {
  __m512 lo[kMr], hi[kMr];
  zero_tile(lo, hi);

  for (std::int64_t p = 0; p < kc; ++p, ++a, b += b_step) {
    rank1_update(lo, hi, [a, lda](int i) { return a[i * lda]; }, _mm512_loadu_ps(b), _mm512_loadu_ps(b + 16));
  }
  store_tile(lo, hi, beta, c, ldc, epi);
}

// Fewer rows than a tile (a batch-1 dense layer is one row of C): one row at a time against
// up to 128 columns of B read in place (8 zmm accumulators, masked at the right edge), instead
// of a 14-row tile that would be 13/14 padding. Per k step that is one broadcast, 8 loads and
// 8 independent FMAs, so the loads, not the FMA latency, set the pace, as they must for a
// product that touches each B element once.
void gemm_small_m_avx512(std::int64_t m, std::int64_t n, std::int64_t kc, const float* a, std::int64_t rs_a,
                         std::int64_t cs_a, const float* b, std::int64_t rs_b, float beta, float* c, std::int64_t ldc,
                         const TileEpilogue* epi) {
  constexpr int kVecs = 8, kCols = 16 * kVecs;
  const bool bias = epi != nullptr && epi->bias != nullptr;
  const bool relu = epi != nullptr && epi->relu;
  const __m512 vbeta = _mm512_set1_ps(beta);
  const __m512 zero = _mm512_setzero_ps();
  for (std::int64_t j0 = 0; j0 < n; j0 += kCols) {
    __mmask16 mask[kVecs];
#pragma GCC unroll 8
    for (int v = 0; v < kVecs; ++v) {
      const std::int64_t left = n - j0 - 16 * v;  // columns of this vector inside the matrix
      mask[v] = left >= 16 ? __mmask16(0xFFFF) : left <= 0 ? __mmask16(0) : __mmask16((1u << left) - 1u);
    }
    for (std::int64_t i = 0; i < m; ++i) {
      __m512 acc[kVecs];
#pragma GCC unroll 8
      for (int v = 0; v < kVecs; ++v) acc[v] = zero;
      const float* ai = a + i * rs_a;
      const float* bp = b + j0;
      for (std::int64_t p = 0; p < kc; ++p, bp += rs_b) {
        const __m512 av = _mm512_set1_ps(ai[p * cs_a]);
#pragma GCC unroll 8
        for (int v = 0; v < kVecs; ++v)
          acc[v] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(mask[v], bp + 16 * v), acc[v]);
      }
      float* ci = c + i * ldc + j0;
#pragma GCC unroll 8
      for (int v = 0; v < kVecs; ++v) {
        if (beta != 0.0f) acc[v] = _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask[v], ci + 16 * v), acc[v]);
        if (bias) acc[v] = _mm512_add_ps(acc[v], _mm512_maskz_loadu_ps(mask[v], epi->bias + j0 + 16 * v));
        if (relu) acc[v] = _mm512_max_ps(acc[v], zero);
        _mm512_mask_storeu_ps(ci + 16 * v, mask[v], acc[v]);
      }
    }
  }
}

// 14 x 32 with row i of A gathered through a pointer: A(i, p) = rows[i][offset(p)] for p in
// [k0, k0 + kc), where p runs over segments of seg_len contiguous floats, segment s starting
// seg_stride floats after segment s - 1 (offset(p) = (p / seg_len) * seg_stride + p % seg_len).
// For a convolution, rows[i] is output pixel i's window corner in a zero-padded image and a
// segment is one kernel row (kw * c contiguous floats): an implicit GEMM, no im2col panel.
// The 14 pointers do not all fit in general-purpose registers; GCC keeps the rest on the stack,
// which costs a few percent against ukernel_avx512_rows in L1 but saves writing the panel.
// Packed B (b_step = 32) only.
//
// Edge skipping: rows in kFirst (kLast), a bit per row, skip the first (last) edge_len floats
// of every segment -- the kernel column that falls in the left (right) zero padding of a
// 'same' convolution -- so those FMAs, which would add exact zeros, are not issued. The sets
// are template arguments so that the unrolled row loop drops them at compile time.
namespace {

template <unsigned kSkip>
inline void indirect_steps(__m512 (&lo)[kMr], __m512 (&hi)[kMr], const float* const* rows, std::int64_t off,
                           std::int64_t count, const float*& bp) {
#pragma GCC unroll 2
  for (std::int64_t p = 0; p < count; ++p, bp += 32) {
    rank1_update<kSkip>(
        lo, hi, [rows, k = off + p](int i) { return rows[i][k]; }, _mm512_loadu_ps(bp), _mm512_loadu_ps(bp + 16));
  }
}

template <unsigned kFirst, unsigned kLast>
void indirect_tile(std::int64_t k0, std::int64_t kc, std::int64_t seg_len, std::int64_t seg_stride,
                   std::int64_t edge_len, const float* const* rows, const float* bp, float beta, float* c,
                   std::int64_t ldc, const TileEpilogue* epi) {
  __m512 lo[kMr], hi[kMr];
  zero_tile(lo, hi);
  std::int64_t seg = k0 / seg_len, q = k0 % seg_len, left = kc;
  while (left > 0) {
    const std::int64_t end = std::min(seg_len, q + left), off = seg * seg_stride;
    left -= end - q;
    if (kFirst == 0 && kLast == 0) {
      indirect_steps<0>(lo, hi, rows, off + q, end - q, bp);
    } else {  // [0, edge_len) skips kFirst, [seg_len - edge_len, seg_len) skips kLast
      const std::int64_t mid = std::max(q, std::min(end, edge_len));
      const std::int64_t tail = std::max(mid, std::max(q, seg_len - edge_len));
      indirect_steps<kFirst>(lo, hi, rows, off + q, mid - q, bp);
      indirect_steps<0>(lo, hi, rows, off + mid, std::min(end, tail) - mid, bp);
      if (end > tail) indirect_steps<kLast>(lo, hi, rows, off + tail, end - tail, bp);
    }
    q = 0, ++seg;
  }
  store_tile(lo, hi, beta, c, ldc, epi);
}

}  // namespace

void ukernel_avx512_indirect(std::int64_t k0, std::int64_t kc, std::int64_t seg_len, std::int64_t seg_stride,
                             const float* const* rows, const float* bp, float beta, float* c, std::int64_t ldc,
                             const TileEpilogue* epi, const IndirectEdgeSkip& skip) {
  // The two patterns of tiles that hold whole output rows: 14-pixel rows (rows 0 and 13 at
  // the edges) and 7-pixel rows (0, 7 and 6, 13), as in the article's 14x14 and 7x7 layers.
  const std::int64_t e = skip.edge_len;
  if (e > 0 && 2 * e <= seg_len) {
    if (skip.first == 0x0001u && skip.last == 0x2000u)
      return indirect_tile<0x0001u, 0x2000u>(k0, kc, seg_len, seg_stride, e, rows, bp, beta, c, ldc, epi);
    if (skip.first == 0x0081u && skip.last == 0x2040u)
      return indirect_tile<0x0081u, 0x2040u>(k0, kc, seg_len, seg_stride, e, rows, bp, beta, c, ldc, epi);
  }
  indirect_tile<0u, 0u>(k0, kc, seg_len, seg_stride, 0, rows, bp, beta, c, ldc, epi);
}

// 14 x 32 with column p of A at a + a_offsets[p] (14 contiguous floats) and its row of B at
// b + b_row * b_step (packed, 32, or in place), for p over the given runs of pixels; no epilogue.
// The weight gradient of a convolution without an im2col panel: A = col^T, and column p
// (pixel p) of a 14-row slice of the patch is 14 neighbouring floats of that pixel's window in
// the zero-padded images (offsets, not pointers, so one plan serves every chunk of a batch).
// Runs leave out the pixels whose window row is all padding.
// kOnesRow: row 13 of A is 1.0 instead, so row 13 of C sums B's rows (a bias gradient) in a
// slot that a partial slice would spend on values it discards; an add replaces its FMA.
namespace {
template <bool kOnesRow>
void gather_tile(const PixelRun* runs, std::int64_t nruns, const float* a, const std::int64_t* a_offsets,
                 const float* b, std::int64_t b_step, float beta, float* c, std::int64_t ldc) {
  __m512 lo[kMr], hi[kMr];
  zero_tile(lo, hi);
  for (std::int64_t r = 0; r < nruns; ++r) {
    const std::int64_t* offs = a_offsets + runs[r].begin;
    const float* bp = b + runs[r].b_row * b_step;
    for (std::int64_t p = 0; p < runs[r].count; ++p, bp += b_step) {
      const float* ap = a + offs[p];
      // Opaque to the optimiser: otherwise GCC hoists the 14 addresses into registers, spills
      // four of them and reloads them on every k step.
      __asm__("" : "+r"(ap));
      const __m512 b0 = _mm512_loadu_ps(bp);
      const __m512 b1 = _mm512_loadu_ps(bp + 16);
      rank1_update<kOnesRow ? 1u << (kMr - 1) : 0u>(lo, hi, [ap](int i) { return ap[i]; }, b0, b1);
      if (kOnesRow) {
        lo[kMr - 1] = _mm512_add_ps(lo[kMr - 1], b0);
        hi[kMr - 1] = _mm512_add_ps(hi[kMr - 1], b1);
      }
    }
  }
  store_tile(lo, hi, beta, c, ldc, nullptr);
}
}  // namespace

void ukernel_avx512_gather(const PixelRun* runs, std::int64_t nruns, const float* a, const std::int64_t* a_offsets,
                           const float* b, std::int64_t b_step, float beta, float* c, std::int64_t ldc, bool ones_row) {
  if (ones_row)
    gather_tile<true>(runs, nruns, a, a_offsets, b, b_step, beta, c, ldc);
  else
    gather_tile<false>(runs, nruns, a, a_offsets, b, b_step, beta, c, ldc);
}

}  // namespace cnnx::kernels
