// Blocked GEMM driver: C = beta * C + A * B through (rs, cs) strides (contract in gemm.hpp).
//
// Layout: the classic five loops around a micro-kernel (Goto / BLIS). Per (jc, pc) block, B is
// packed into a KC x NC panel of NR-wide slivers (k-major, zero-padded), and per (ic) block each
// thread packs its own MC x KC panel of A into MR-high slivers. The micro-kernel
// (gemm_ukernel.hpp) then reads both panels with unit stride whatever the original strides
// were, which is what lets one routine serve A, A^T, B and B^T. Block and tile sizes come from
// gemm_config.hpp, per ISA. Packing is skipped where it cannot pay: A with contiguous columns
// (or rows, with the row-broadcast kernel) is read in place, and so is a row-major B when a
// thread has only a few tiles of rows (read_b_in_place). A C with fewer rows than one tile
// (batch-1 dense layers) goes to a row-at-a-time kernel instead (small_m_pays). Bias and ReLU
// are applied by the micro-kernel as it stores the last K block's tile.
//
// Threading: one OpenMP parallel region per call, entered only when the problem is worth it
// (m*n*k >= 64^3) and we are not already inside a parallel region. The C matrix is split
// statically and each thread runs all five loops on its part with its own packing buffers:
//   - M split (the usual case): each thread takes a contiguous range of MR-row tiles and packs
//     its own rows of A and the whole B block. This covers conv forward (M = batch * pixels)
//     and the weight gradient (M = kh*kw*cin, N = cout, huge K).
//   - N split (fewer than two MR tiles per thread): each thread packs the whole (small) A block
//     and its own range of B slivers.
// There are no barriers inside the region (see gemm_thread for why). K is never split: every
// C element is summed over the same kc blocks, in the same order, by one thread, so the result
// does not depend on the thread count.
//
// Memory: packing buffers are 64-byte aligned, grow-only and thread_local (OpenMP reuses its
// threads), so steady-state calls allocate nothing.
#include "kernels/gemm.hpp"

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <new>

#include "core/parallel_for.hpp"
#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace cnnx::kernels {
namespace {

using std::int64_t;

// Grow-only 64-byte-aligned float buffer: aligned so the kernels' vector loads never split
// cache lines; grow-only so repeated calls of the same shapes never touch the allocator.
class PackBuffer {
 public:
  PackBuffer() = default;
  PackBuffer(const PackBuffer&) = delete;
  PackBuffer& operator=(const PackBuffer&) = delete;
  ~PackBuffer() { release(); }

  float* get(std::size_t count) {
    if (count > capacity_) {
      release();
      data_ = static_cast<float*>(::operator new(count * sizeof(float), std::align_val_t{64}));
      capacity_ = count;
    }
    return data_;
  }

 private:
  void release() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t{64});
    data_ = nullptr;
    capacity_ = 0;
  }
  float* data_ = nullptr;
  std::size_t capacity_ = 0;
};

thread_local PackBuffer t_pack_a;
thread_local PackBuffer t_pack_b;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A thread whose share of C has at most this many MR-row tiles reads a row-major B in place.
constexpr int64_t kDirectBMaxTiles = 8;

// Packs rows [0, mc) x columns [0, kc) of A (already offset to the block) into MR-high slivers:
// sliver s holds A(s*mr + i, p) at [s*mr*kc + p*mr + i]. Rows past mc are zero so the kernel
// can run full tiles. The source is walked in its own memory order (whole columns, or whole
// rows) so the hardware prefetchers see sequential streams: for the weight gradient A comes
// straight from a DRAM-sized im2col buffer, and sliver-by-sliver reads with a stride of a row
// left the copy waiting on memory for a third of the run time.
// MR is a template parameter so the copies of full slivers compile to fixed-length moves.
template <int MR>
void pack_a_panel(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst) {
  constexpr int mr = MR;
  const int64_t tail = mc % mr;
  if (tail != 0) std::fill(dst + (mc - tail) * kc, dst + (mc - tail + mr) * kc, 0.0f);
  if (rs == 1) {  // columns contiguous: deal each column out to all slivers
    for (int64_t p = 0; p < kc; ++p) {
      const float* col = a + p * cs;
      for (int64_t i0 = 0; i0 < mc; i0 += mr) {
        float* out = dst + i0 * kc + p * mr;
        if (i0 + mr <= mc) {
          for (int i = 0; i < mr; ++i) out[i] = col[i0 + i];
        } else {
          for (int64_t i = 0; i < mc - i0; ++i) out[i] = col[i0 + i];
        }
      }
    }
    return;
  }
  for (int64_t i0 = 0; i0 < mc; i0 += mr) {  // rows contiguous (or general): sliver by sliver
    const int64_t rows = std::min<int64_t>(mr, mc - i0);
    const float* src = a + i0 * rs;
    float* out = dst + i0 * kc;
    if (rows == mr) {
      for (int64_t p = 0; p < kc; ++p)
        for (int i = 0; i < mr; ++i) out[p * mr + i] = src[i * rs + p * cs];
    } else {
      for (int64_t p = 0; p < kc; ++p)
        for (int64_t i = 0; i < rows; ++i) out[p * mr + i] = src[i * rs + p * cs];
    }
  }
}

// Packs slivers [s0, s1) of the kc x nc block of B into NR-wide slivers: sliver s holds
// B(p, s*nr + j) at [s*nr*kc + p*nr + j]. Columns past nc are zero. Taking a sliver range lets
// the threads split the packing without overlapping writes. As for A, rows of a row-major B
// are read whole, one after the other.
template <int NR>
void pack_b_panel(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, int64_t s0, int64_t s1, float* dst) {
  constexpr int nr = NR;
  if (s0 >= s1) return;
  if (s1 * nr > nc) std::fill(dst + (s1 - 1) * nr * kc, dst + s1 * nr * kc, 0.0f);
  if (cs == 1) {  // rows contiguous
    for (int64_t p = 0; p < kc; ++p) {
      const float* row = b + p * rs;
      for (int64_t s = s0; s < s1; ++s) {
        float* out = dst + s * nr * kc + p * nr;
        if ((s + 1) * nr <= nc) {
          for (int j = 0; j < nr; ++j) out[j] = row[s * nr + j];
        } else {
          for (int64_t j = 0; j < nc - s * nr; ++j) out[j] = row[s * nr + j];
        }
      }
    }
    return;
  }
  for (int64_t s = s0; s < s1; ++s) {  // columns contiguous (or general): sliver by sliver
    const int64_t cols = std::min<int64_t>(nr, nc - s * nr);
    const float* src = b + s * nr * cs;
    float* out = dst + s * nr * kc;
    for (int64_t j = 0; j < cols; ++j)
      for (int64_t p = 0; p < kc; ++p) out[p * nr + j] = src[j * cs + p * rs];
  }
}

// A micro-kernel with the packing routines instantiated for its tile.
struct Kernel {
  Ukernel uk;
  void (*pack_a)(int64_t mc, int64_t kc, const float* a, int64_t rs, int64_t cs, float* dst);
  void (*pack_b)(int64_t kc, int64_t nc, const float* b, int64_t rs, int64_t cs, int64_t s0, int64_t s1, float* dst);
};

const Kernel& kernel_for(Isa isa) {
#if defined(__x86_64__) || defined(_M_X64)  // the AVX kernels are only compiled on x86-64
  static const Kernel kAvx512{
      {kMrAvx512, kNrAvx512, kMcAvx512, kKcAvx512, kNcAvx512, ukernel_avx512, ukernel_avx512_rows, gemm_small_m_avx512},
      pack_a_panel<kMrAvx512>,
      pack_b_panel<kNrAvx512>};
  static const Kernel kAvx2{{kMrAvx2, kNrAvx2, kMcAvx2, kKcAvx2, kNcAvx2, ukernel_avx2, nullptr, nullptr},
                            pack_a_panel<kMrAvx2>,
                            pack_b_panel<kNrAvx2>};
#endif
  static const Kernel kGeneric{
      {kMrGeneric, kNrGeneric, kMcGeneric, kKcGeneric, kNcGeneric, ukernel_generic, nullptr, nullptr},
      pack_a_panel<kMrGeneric>,
      pack_b_panel<kNrGeneric>};
  switch (isa) {
#if defined(__x86_64__) || defined(_M_X64)
    case Isa::avx512: return kAvx512;
    case Isa::avx2: return kAvx2;
#endif
    default: return kGeneric;
  }
}

// C(0:rows, 0:cols) = beta * C + tile, for edge tiles computed into a local buffer.
void merge_edge(int64_t rows, int64_t cols, const float* tile, int nr, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < rows; ++i, c += ldc, tile += nr) {
    for (int64_t j = 0; j < cols; ++j) c[j] = beta == 0.0f ? tile[j] : beta * c[j] + tile[j];
  }
}

// The epilogue on a finished rows x cols tile of C (columns j0.. of the whole matrix).
void apply_epilogue(const GemmEpilogue& ep, int64_t rows, int64_t cols, int64_t j0, float* c, int64_t ldc) {
  const float* bias = ep.bias ? ep.bias + j0 : nullptr;
  for (int64_t i = 0; i < rows; ++i, c += ldc) {
    if (bias)
      for (int64_t j = 0; j < cols; ++j) c[j] += bias[j];
    if (ep.relu)
      for (int64_t j = 0; j < cols; ++j) c[j] = c[j] > 0.0f ? c[j] : 0.0f;
  }
}

struct Problem {
  int64_t m, n, k;
  const float* a;
  int64_t rs_a, cs_a;
  const float* b;
  int64_t rs_b, cs_b;
  float beta;
  float* c;
  int64_t ldc;
  GemmEpilogue ep;
  bool has_ep;
};

// Whether the row-at-a-time kernel (kSmallMCols columns per pass, about kSmallMCycles cycles
// per k step, bound by its loads and FMA latency) beats one padded edge tile per NR columns
// (MR * NR / 32 FMAs per k step at two 16-wide FMAs a cycle). It wins by 14x for the one row of
// a batch-1 dense layer, and loses for the 9-row weight gradient of a one-channel convolution.
bool small_m_pays(int64_t m, int64_t n, const Ukernel& uk) {
  constexpr int64_t kSmallMCols = 128, kSmallMCycles = 4;
  if (m >= uk.mr) return false;
  const int64_t small = m * ceil_div(n, kSmallMCols) * kSmallMCycles;
  const int64_t tiled = ceil_div(n, uk.nr) * (int64_t(uk.mr) * uk.nr / 32);
  return small < tiled;
}

// Whether this thread reads B straight from the caller's rows instead of packing it. Packing
// copies the B block once (read + write) so that the kernel streams it contiguously; that pays
// only when each B sliver is then reused by many A slivers. A thread with few rows of C (batch-1
// inference: a dense layer has one row, a conv layer a few dozen) would spend longer packing B
// than multiplying with it, so it reads B in place when B's rows are contiguous.
bool read_b_in_place(const Problem& pr, int mr, int64_t rows) { return pr.cs_b == 1 && rows <= kDirectBMaxTiles * mr; }

// Runs this thread's share of the five loops; with nthreads == 1 it is the whole GEMM.
// Each thread packs into its own buffers, so the threads never wait for each other: on a
// shared 2-core machine a spinning barrier whose partner thread has been descheduled costs a
// whole scheduler time slice, and with one barrier per KC block that made 2-thread runs 50x
// slower than 1-thread runs whenever another process was busy. The price is that with an M
// split every thread packs the whole B block (KC x NC), small next to its own A rows.
// Returns false if a packing buffer could not be allocated (exceptions must not leave an
// OpenMP region).
bool gemm_thread(const Problem& pr, const Kernel& kern, int tid, int nthreads) {
  const Ukernel& uk = kern.uk;
  const int mr = uk.mr, nr = uk.nr;
  const int64_t m_tiles = ceil_div(pr.m, mr);
  const bool split_m = m_tiles >= 2 * nthreads;
  // This thread's rows of C (M split) or all of them (N split).
  const int64_t row0 = split_m ? m_tiles * tid / nthreads * mr : 0;
  const int64_t row1 = split_m ? std::min(pr.m, m_tiles * (tid + 1) / nthreads * mr) : pr.m;
  if (row0 >= row1) return true;
  float* ap = nullptr;
  float* bp = nullptr;
  try {
    ap = t_pack_a.get(static_cast<std::size_t>(uk.mc) * uk.kc);
    bp = t_pack_b.get(static_cast<std::size_t>(uk.kc) * uk.nc);
  } catch (const std::bad_alloc&) {
    return false;
  }
  alignas(64) float edge[kMaxMr * kMaxNr];
  // K blocks of equal depth (<= KC): K = 288 with KC = 256 would otherwise run a 32-deep block
  // whose C loads and stores cost as much as its FMAs.
  const int64_t kc_block = ceil_div(pr.k, ceil_div(pr.k, uk.kc));
  const bool direct_b = read_b_in_place(pr, mr, row1 - row0);

  for (int64_t jc = 0; jc < pr.n; jc += uk.nc) {  // 5th loop around the micro-kernel
    const int64_t nc = std::min<int64_t>(uk.nc, pr.n - jc);
    const int64_t slivers = ceil_div(nc, nr);
    // The B slivers (jr range) this thread packs and computes.
    const int64_t js0 = split_m ? 0 : slivers * tid / nthreads;
    const int64_t js1 = split_m ? slivers : slivers * (tid + 1) / nthreads;
    if (js0 >= js1) continue;
    for (int64_t pc = 0; pc < pr.k; pc += kc_block) {  // 4th loop around the micro-kernel
      const int64_t kc = std::min<int64_t>(kc_block, pr.k - pc);
      const float beta = pc == 0 ? pr.beta : 1.0f;  // later k blocks accumulate onto C
      const bool last_k = pc + kc >= pr.k;
      // B with contiguous rows is read in place when packing would not pay for itself (see
      // read_b_in_place); only a ragged last sliver is packed (zero-padded) then.
      const float* b_block = pr.b + pc * pr.rs_b + jc * pr.cs_b;
      if (!direct_b) {
        kern.pack_b(kc, nc, b_block, pr.rs_b, pr.cs_b, js0, js1, bp);
      } else if (js1 * nr > nc) {
        kern.pack_b(kc, nc, b_block, pr.rs_b, pr.cs_b, js1 - 1, js1, bp);
      }

      for (int64_t ic = row0; ic < row1; ic += uk.mc) {  // 3rd loop around the micro-kernel
        const int64_t mc = std::min<int64_t>(uk.mc, row1 - ic);
        // A with contiguous columns (rs_a == 1) is read in place by full slivers; only the
        // ragged last sliver is packed (zero-padded). Otherwise the whole block is packed.
        const bool direct_a = pr.rs_a == 1 && pr.cs_a >= mr;
        // A with contiguous rows (cs_a == 1): full slivers are broadcast from the rows in place
        // when the ISA has a kernel for it.
        const bool rows_a = !direct_a && pr.cs_a == 1 && uk.fn_rows != nullptr;
        if (rows_a) {
          if (mc % mr != 0) {
            const int64_t last = mc - mc % mr;
            kern.pack_a(mc - last, kc, pr.a + (ic + last) * pr.rs_a + pc, pr.rs_a, 1, ap + last * kc);
          }
        } else if (!direct_a) {
          kern.pack_a(mc, kc, pr.a + ic * pr.rs_a + pc * pr.cs_a, pr.rs_a, pr.cs_a, ap);
        } else if (mc % mr != 0) {
          const int64_t last = mc - mc % mr;
          kern.pack_a(mc - last, kc, pr.a + (ic + last) * pr.rs_a + pc * pr.cs_a, pr.rs_a, pr.cs_a, ap + last * kc);
        }

        for (int64_t js = js0; js < js1; ++js) {  // 2nd loop around the micro-kernel
          const int64_t jr = js * nr;
          const int64_t cols = std::min<int64_t>(nr, nc - jr);
          const bool b_in_place = direct_b && cols == nr;
          const float* bsliver = b_in_place ? b_block + jr : bp + js * nr * kc;
          const int64_t b_step = b_in_place ? pr.rs_b : nr;
          // The epilogue rides on the kernel's store for full tiles of the last K block.
          const TileEpilogue tile_epi{pr.ep.bias ? pr.ep.bias + jc + jr : nullptr, pr.ep.relu};
          const TileEpilogue* epi = last_k && pr.has_ep ? &tile_epi : nullptr;
          for (int64_t ir = 0; ir < mc; ir += mr) {  // 1st loop around the micro-kernel
            const int64_t rows = std::min<int64_t>(mr, mc - ir);
            const bool in_place = direct_a && rows == mr;
            const float* asliver = in_place ? pr.a + (ic + ir) + pc * pr.cs_a : ap + ir * kc;
            const int64_t a_step = in_place ? pr.cs_a : mr;
            float* cij = pr.c + (ic + ir) * pr.ldc + jc + jr;
            const bool full = rows == mr && cols == nr;
            if (rows_a && rows == mr) {
              const float* arows = pr.a + (ic + ir) * pr.rs_a + pc;
              if (full) {
                uk.fn_rows(kc, arows, pr.rs_a, bsliver, b_step, beta, cij, pr.ldc, epi);
                continue;
              }
              uk.fn_rows(kc, arows, pr.rs_a, bsliver, b_step, 0.0f, edge, nr, nullptr);
            } else if (full) {
              uk.fn(kc, asliver, a_step, bsliver, b_step, beta, cij, pr.ldc, epi);
              continue;
            } else {
              uk.fn(kc, asliver, a_step, bsliver, b_step, 0.0f, edge, nr, nullptr);
            }
            merge_edge(rows, cols, edge, nr, beta, cij, pr.ldc);
            if (epi) apply_epilogue(pr.ep, rows, cols, jc + jr, cij, pr.ldc);
          }
        }
      }
    }
  }
  return true;
}

// k == 0: the product is empty, C = beta * C (and beta == 0 writes zeros without reading).
void scale_c(int64_t m, int64_t n, float beta, float* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i, c += ldc) {
    for (int64_t j = 0; j < n; ++j) c[j] = beta == 0.0f ? 0.0f : beta * c[j];
  }
}

}  // namespace

int64_t packed_b_size(Isa isa, int64_t k, int64_t n) {
  const int nr = kernel_for(isa).uk.nr;
  return ceil_div(n, nr) * nr * k;
}

void pack_b(Isa isa, int64_t k, int64_t n, const float* b, int64_t rs_b, int64_t cs_b, float* dst) {
  const Kernel& kern = kernel_for(isa);
  kern.pack_b(k, n, b, rs_b, cs_b, 0, ceil_div(n, kern.uk.nr), dst);
}

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, int64_t cs_a, const float* b, int64_t rs_b,
          int64_t cs_b, float beta, float* c, int64_t ldc) {
  gemm(m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, beta, c, ldc, GemmEpilogue{});
}

void gemm(int64_t m, int64_t n, int64_t k, const float* a, int64_t rs_a, int64_t cs_a, const float* b, int64_t rs_b,
          int64_t cs_b, float beta, float* c, int64_t ldc, const GemmEpilogue& ep) {
  if (m <= 0 || n <= 0) return;
  const bool has_ep = ep.bias != nullptr || ep.relu;
  if (k <= 0) {
    scale_c(m, n, beta, c, ldc);
    if (has_ep) apply_epilogue(ep, m, n, 0, c, ldc);
    return;
  }
  const Kernel& kern = kernel_for(active_isa());
  if (kern.uk.fn_small_m != nullptr && cs_b == 1 && small_m_pays(m, n, kern.uk)) {
    // Too few rows to fill a tile (batch-1 dense layers): one serial pass over B, read in
    // place, with the same K blocks (hence the same sums) as the tiled path.
    const int64_t kc_block = ceil_div(k, ceil_div(k, kern.uk.kc));
    const TileEpilogue epi{ep.bias, ep.relu};
    for (int64_t pc = 0; pc < k; pc += kc_block) {
      const int64_t kc = std::min<int64_t>(kc_block, k - pc);
      kern.uk.fn_small_m(m, n, kc, a + pc * cs_a, rs_a, cs_a, b + pc * rs_b, rs_b, pc == 0 ? beta : 1.0f, c, ldc,
                         has_ep && pc + kc >= k ? &epi : nullptr);
    }
    return;
  }
  const Problem pr{m, n, k, a, rs_a, cs_a, b, rs_b, cs_b, beta, c, ldc, ep, has_ep};
  int nthreads = 1;
  if (!in_parallel_region() && static_cast<double>(m) * n * k >= 64.0 * 64.0 * 64.0) {
    nthreads = get_num_threads();
  }
  bool ok = true;
#ifdef _OPENMP
  if (nthreads > 1) {
    std::atomic<bool> all_ok{true};
#pragma omp parallel num_threads(nthreads)
    if (!gemm_thread(pr, kern, omp_get_thread_num(), omp_get_num_threads())) all_ok = false;
    ok = all_ok;
  } else {
    ok = gemm_thread(pr, kern, 0, 1);
  }
#else
  (void)nthreads;
  ok = gemm_thread(pr, kern, 0, 1);
#endif
  if (!ok) throw std::bad_alloc();
}

}  // namespace cnnx::kernels
