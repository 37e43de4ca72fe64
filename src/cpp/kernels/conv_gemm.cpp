// See conv_gemm.hpp.
#include "kernels/conv_gemm.hpp"

#include <algorithm>
#include <vector>

#include "core/parallel_for.hpp"
#include "kernels/gemm_config.hpp"
#include "kernels/gemm_ukernel.hpp"
#include "kernels/im2col.hpp"

namespace cnnx::kernels {

namespace {

// Where output pixel (img, oy, ox)'s window starts in the padded images, in floats: offsets
// rather than pointers, so that a plan built once serves every chunk of a batch wherever its
// padded copy lies.
std::int64_t window_corner(const ConvGeometry& g, const PaddedExtent& p, std::int64_t img, std::int64_t oy,
                           std::int64_t ox) {
  return ((img * p.h + oy * g.sh) * p.w + ox * g.sw) * g.c;
}

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

// The kernel rows [lo, hi) whose taps land inside the image for output row oy. The others read
// only zero padding (the top and bottom rows of a 'same' convolution): skipping them leaves
// every sum unchanged, since they would add exact zeros, and saves their work (a third of the
// row's for a 3x3 kernel, so 2/7 x 1/3 = 9.5% of the article's 7x7 conv3).
struct KernelRows {
  std::int64_t lo, hi;
};
// Whether tap k of the window of output o reads inside the image along one axis.
bool tap_inside(std::int64_t o, std::int64_t k, std::int64_t stride, std::int64_t pad, std::int64_t dilation,
                std::int64_t size) {
  const std::int64_t i = o * stride - pad + k * dilation;
  return i >= 0 && i < size;
}
bool row_tap_inside(const ConvGeometry& g, std::int64_t oy, std::int64_t ky) {
  return tap_inside(oy, ky, g.sh, g.pad_top, g.dh, g.h);
}
bool col_tap_inside(const ConvGeometry& g, std::int64_t ox, std::int64_t kx) {
  return tap_inside(ox, kx, g.sw, g.pad_left, g.dw, g.w);
}

// [0, n) trimmed at both ends to the indices where inside(i) holds (taps inside the image
// form one contiguous range along an axis).
template <class Inside>
KernelRows inside_range(std::int64_t n, Inside inside) {
  KernelRows r{0, n};
  while (r.lo < r.hi && !inside(r.lo)) ++r.lo;
  while (r.hi > r.lo && !inside(r.hi - 1)) --r.hi;
  return r;
}

KernelRows valid_kernel_rows(const ConvGeometry& g, std::int64_t oy) {
  return inside_range(g.kh, [&](std::int64_t ky) { return row_tap_inside(g, oy, ky); });
}

// The forward's tiles: output pixels grouped by their KernelRows (classes of output rows, in
// order of first appearance), 14 at a time within a class, so that every pixel of a tile skips
// the same kernel rows. Within a class pixels keep their natural order; a tile whose 14 pixels
// are consecutive is stored in place, any other goes through the edge buffer.
struct Tile {
  std::int64_t start, count;  // into TileSchedule::pixel / corner
  KernelRows rows;
  bool consecutive;
  unsigned first_col_pad, last_col_pad;  // rows whose first / last kernel column is padding
};
struct TileSchedule {
  std::vector<std::int64_t> pixel;   // natural pixel index (row of z), in tile order
  std::vector<std::int64_t> corner;  // its window corner in the padded images; + MR spare
  std::vector<Tile> tiles;
};

// The weight gradient's windows and pixel runs (build_weight_grad_plan), and the arguments
// they were built for.
struct WeightGradPlan {
  std::int64_t n = -1;
  ConvGeometry g{};
  RowGrid grid{};
  std::vector<std::int64_t> corners;       // window_corner of each pixel
  std::int64_t row_valid_everywhere = -1;  // kernel_row_valid_everywhere(g)
  std::vector<PixelRun> runs;
  std::vector<std::int64_t> first;  // list (block, ky, variant) is runs [first[i], first[i + 1])
  std::int64_t kc_block = 0;
};

// Per-thread scratch of the implicit convolutions, grow-only, reached through one TLS lookup
// per call: in a shared library every access to a thread_local can cost a __tls_get_addr
// call, 1.6% of a conv2 forward + backward when each buffer was its own thread_local.
struct ConvScratch {
  TileSchedule ts;  // the forward's, and the arguments it was built for
  std::int64_t ts_n = -1;
  ConvGeometry ts_g{};
  std::vector<KernelRows> classes;
  std::vector<std::size_t> class_of;
  WeightGradPlan grad_plan;
  std::vector<float> packed, edges;
};
ConvScratch& conv_scratch() {
  thread_local ConvScratch s;
  return s;
}

bool same_geometry(const ConvGeometry& a, const ConvGeometry& b) {
  return a.h == b.h && a.w == b.w && a.c == b.c && a.kh == b.kh && a.kw == b.kw && a.sh == b.sh && a.sw == b.sw &&
         a.dh == b.dh && a.dw == b.dw && a.pad_top == b.pad_top && a.pad_left == b.pad_left && a.oh == b.oh &&
         a.ow == b.ow;
}

// The schedule depends only on its arguments, so a thread rebuilds it only when they change
// (once per layer and batch, and for a short last chunk).
const TileSchedule& tile_schedule(std::int64_t n, const ConvGeometry& g, const PaddedExtent& p, std::int64_t mr) {
  ConvScratch& cs = conv_scratch();
  TileSchedule& ts = cs.ts;
  if (cs.ts_n == n && same_geometry(cs.ts_g, g)) return ts;
  std::vector<KernelRows>& classes = cs.classes;
  std::vector<std::size_t>& class_of = cs.class_of;
  classes.clear();
  class_of.assign(static_cast<std::size_t>(g.oh), 0);
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    const KernelRows r = valid_kernel_rows(g, oy);
    std::size_t k = 0;
    while (k < classes.size() && (classes[k].lo != r.lo || classes[k].hi != r.hi)) ++k;
    if (k == classes.size()) classes.push_back(r);
    class_of[oy] = k;
  }
  ts.pixel.clear(), ts.corner.clear(), ts.tiles.clear();
  for (std::size_t k = 0; k < classes.size(); ++k) {
    const std::int64_t first = static_cast<std::int64_t>(ts.pixel.size());
    for (std::int64_t img = 0; img < n; ++img)
      for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        if (class_of[oy] != k) continue;
        for (std::int64_t ox = 0; ox < g.ow; ++ox) {
          ts.pixel.push_back((img * g.oh + oy) * g.ow + ox);
          ts.corner.push_back(window_corner(g, p, img, oy, ox));
        }
      }
    const std::int64_t last = static_cast<std::int64_t>(ts.pixel.size());
    for (std::int64_t t0 = first; t0 < last; t0 += mr) {
      const std::int64_t count = std::min(mr, last - t0);
      const bool consecutive = count == mr && ts.pixel[t0 + mr - 1] == ts.pixel[t0] + mr - 1;
      unsigned first_pad = 0, last_pad = 0;
      for (std::int64_t i = 0; i < count; ++i) {
        const std::int64_t ox = ts.pixel[t0 + i] % g.ow;
        if (!col_tap_inside(g, ox, 0)) first_pad |= 1u << i;
        if (!col_tap_inside(g, ox, g.kw - 1)) last_pad |= 1u << i;
      }
      ts.tiles.push_back({t0, count, classes[k], consecutive, first_pad, last_pad});
    }
  }
  // A partial tile's missing rows read the next pixels' windows (discarded); past the last
  // pixel, its window again.
  for (std::int64_t i = 0; i < mr; ++i) ts.corner.push_back(ts.corner.back());
  cs.ts_n = n, cs.ts_g = g;
  return ts;
}

}  // namespace

bool conv_implicit_supported(const ConvGeometry& g) {
#if defined(__x86_64__) || defined(_M_X64)
  // Kernel rows shorter than 16 floats (a one-channel first layer: 3) make the micro-kernel
  // restart its run loop every few k steps, which costs more than the im2col copy it saves
  // (conv1 forward measured at 75 against 108 GFLOP/s with im2col).
  return active_isa() == Isa::avx512 && g.dw == 1 && g.kw * g.c >= 16;
#else
  (void)g;
  return false;
#endif
}

RowGrid dense_rows(const ConvGeometry& g) { return {g.oh, g.ow, 0, 0}; }
RowGrid padded_rows(const ConvGeometry& g) {
  const PaddedExtent p = padded_extent(g);
  return p.needed ? RowGrid{p.h, p.w, g.pad_top, g.pad_left} : RowGrid{g.h, g.w, 0, 0};
}

bool conv_forward_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* packed_kernel,
                           std::int64_t cout, float* z, const GemmEpilogue& ep, float* scratch) {
  if (!conv_implicit_supported(g)) return false;
  const float* xpad = x;
  if (padded_extent(g).needed) {
    pad_nhwc(x, n, g, scratch);
    xpad = scratch;
  }
  return conv_forward_implicit_padded(xpad, n, g, packed_kernel, cout, z, ep);
}

bool conv_forward_implicit_padded(const float* xpad, std::int64_t n, const ConvGeometry& g, const float* packed_kernel,
                                  std::int64_t cout, float* z, const GemmEpilogue& ep) {
#if defined(__x86_64__) || defined(_M_X64)
  if (!conv_implicit_supported(g)) return false;
  constexpr int mr = kMrAvx512, nr = kNrAvx512;
  const PaddedExtent p = padded_extent(g);
  const std::int64_t patch = g.patch();
  const std::int64_t seg_len = g.kw * g.c, seg_stride = g.dh * p.w * g.c;
  // The same K blocks as gemm(): equal depth, at most KC. A tile runs the part of each block
  // inside its valid kernel rows, so its sums have the same bits as the full product.
  const std::int64_t kc_block = ceil_div(patch, ceil_div(patch, kKcAvx512));
  const std::int64_t slivers = ceil_div(cout, nr);

  const bool has_ep = ep.bias != nullptr || ep.relu;
  const TileSchedule& ts = tile_schedule(n, g, p, mr);
  const float* rows[mr];
  alignas(64) float edge[mr * nr];
  for (std::int64_t js = 0; js < slivers; ++js) {
    const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
    const TileEpilogue tile_epi{ep.bias ? ep.bias + j0 : nullptr, ep.relu};
    const float* bsliver = packed_kernel + js * patch * nr;
    for (const Tile& tile : ts.tiles) {
      for (int i = 0; i < mr; ++i) rows[i] = xpad + ts.corner[tile.start + i];
      const std::int64_t klo = tile.rows.lo * seg_len, khi = tile.rows.hi * seg_len;
      const IndirectEdgeSkip skip{tile.first_col_pad, tile.last_col_pad, g.c};
      const bool direct = tile.consecutive && cols == nr && klo < khi;
      float* cij = direct ? z + ts.pixel[tile.start] * cout + j0 : edge;
      const std::int64_t ldc = direct ? cout : nr;
      // The epilogue runs in the kernel unless the columns are partial (a bias read past cout).
      const bool epi_in_kernel = has_ep && cols == nr;
      bool first = true;
      for (std::int64_t b0 = klo / kc_block * kc_block; b0 < khi; b0 += kc_block) {
        const std::int64_t k0 = std::max(b0, klo), k1 = std::min(b0 + kc_block, khi);
        const bool last = k1 >= khi;
        ukernel_avx512_indirect(k0, k1 - k0, seg_len, seg_stride, rows, bsliver + k0 * nr, first ? 0.0f : 1.0f, cij,
                                ldc, last && epi_in_kernel ? &tile_epi : nullptr, skip);
        first = false;
      }
      if (first) std::fill(edge, edge + mr * nr, 0.0f);  // every tap in the padding: z = epi(0)
      if (direct) continue;
      const bool epi_here = has_ep && (first || !epi_in_kernel);
      for (std::int64_t i = 0; i < tile.count; ++i) {
        float* zi = z + ts.pixel[tile.start + i] * cout + j0;
        const float* ei = edge + i * nr;
        if (!epi_here) {
          std::copy(ei, ei + cols, zi);
          continue;
        }
        for (std::int64_t j = 0; j < cols; ++j) {
          float v = ei[j];
          if (ep.bias) v += ep.bias[j0 + j];
          if (ep.relu) v = v > 0.0f ? v : 0.0f;
          zi[j] = v;
        }
      }
    }
  }
  return true;
#else
  (void)xpad, (void)n, (void)g, (void)packed_kernel, (void)cout, (void)z, (void)ep;
  return false;
#endif
}

void pack_kernel_implicit(const float* kernel, std::int64_t patch, std::int64_t cout, float* dst, bool parallel) {
  constexpr std::int64_t nr = kNrAvx512;
  parallel_for(ceil_div(cout, nr), parallel, [&](std::int64_t js) {
    const std::int64_t j0 = js * nr;
    pack_b(Isa::avx512, patch, std::min(nr, cout - j0), kernel + j0, cout, 1, dst + j0 * patch);
  });
}

// Sliver js, rows (tap', co) of the flipped kernel: for one tap' they are the cout x 32 block
// B(co, ci) = kernel[(kh*kw-1-tap', ci, co)], packed by pack_b as a one-sliver B whose columns
// (ci) are contiguous (rs = 1, cs = cout).
void pack_flipped_kernel_implicit(const float* kernel, const ConvGeometry& g, std::int64_t cout, float* dst,
                                  bool parallel) {
  constexpr std::int64_t nr = kNrAvx512;
  const std::int64_t taps = g.kh * g.kw, cin = g.c, slivers = ceil_div(cin, nr), k = taps * cout;
  parallel_for(slivers * taps, parallel, [&](std::int64_t item) {
    const std::int64_t js = item / taps, tap = item % taps, j0 = js * nr;
    const float* block = kernel + (taps - 1 - tap) * cin * cout + j0 * cout;
    pack_b(Isa::avx512, cout, std::min(nr, cin - j0), block, 1, cout, dst + js * nr * k + tap * cout * nr);
  });
}

std::int64_t conv_weight_grad_scratch_size(const ConvGeometry& g, std::int64_t n) {
  const PaddedExtent p = padded_extent(g);
  return checked_add(shape_size({n, p.h, p.w, g.c}), kMrAvx512);  // + a partial slice's over-read past the last window
}

namespace {
// A kernel row that no output pixel skips (valid_kernel_rows), or -1: the one whose partial
// slice can sum the bias gradient over every pixel.
std::int64_t kernel_row_valid_everywhere(const ConvGeometry& g) {
  for (std::int64_t ky = 0; ky < g.kh; ++ky) {
    bool everywhere = true;
    for (std::int64_t oy = 0; oy < g.oh && everywhere; ++oy) {
      const KernelRows r = valid_kernel_rows(g, oy);
      everywhere = r.lo <= ky && ky < r.hi;
    }
    if (everywhere) return ky;
  }
  return -1;
}
}  // namespace

bool conv_weight_grad_reads_padded_dz(std::int64_t cout) { return cout % kNrAvx512 == 0; }

bool conv_weight_grad_sums_bias(const ConvGeometry& g) {
  return g.kw * g.c % kMrAvx512 != 0 && kernel_row_valid_everywhere(g) >= 0;
}

namespace {
// Pixels per K block of the weight gradient (see conv_weight_grad_implicit).
constexpr std::int64_t kDwPixelBlock = 128;

// Per K block of pixels, kernel row ky and variant v, the runs of the block's pixels whose
// window row is inside the image: the output rows at the top (bottom) of each image skip the
// first (last) kernel rows. A slice inside one kernel column kx also skips the output columns
// whose tap kx is in the padding (variant kx; variant kw for slices across columns). Short
// runs cost next to nothing: runs of 6 pixels ran at the speed of one run of 98 in L1. A run
// also keeps dz's rows consecutive, so in a padded dz it ends with the output row.
void build_weight_grad_plan(std::int64_t n, const ConvGeometry& g, const RowGrid& grid, WeightGradPlan& plan) {
  const std::int64_t r = n * g.oh * g.ow, variants = g.kw + 1;
  const PaddedExtent p = padded_extent(g);
  plan.corners.clear();
  for (std::int64_t img = 0; img < n; ++img)
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t ox = 0; ox < g.ow; ++ox) plan.corners.push_back(window_corner(g, p, img, oy, ox));
  plan.row_valid_everywhere = kernel_row_valid_everywhere(g);
  plan.kc_block = ceil_div(r, ceil_div(r, kDwPixelBlock));
  std::vector<char> row_valid(static_cast<std::size_t>(g.kh * g.oh), 0);  // [ky * oh + oy]
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    const KernelRows kr = valid_kernel_rows(g, oy);
    for (std::int64_t ky = kr.lo; ky < kr.hi; ++ky) row_valid[ky * g.oh + oy] = 1;
  }
  std::vector<KernelRows> col_range(static_cast<std::size_t>(variants),
                                    KernelRows{0, g.ow});  // columns whose tap kx is inside
  for (std::int64_t kx = 0; kx < g.kw; ++kx)
    col_range[kx] = inside_range(g.ow, [&](std::int64_t ox) { return col_tap_inside(g, ox, kx); });
  plan.runs.clear();
  plan.first.clear();
  for (std::int64_t k0 = 0; k0 < r; k0 += plan.kc_block) {
    const std::int64_t k1 = std::min(k0 + plan.kc_block, r);
    for (std::int64_t ky = 0; ky < g.kh; ++ky)
      for (std::int64_t v = 0; v < variants; ++v) {
        const std::size_t first = plan.runs.size();
        plan.first.push_back(static_cast<std::int64_t>(first));
        for (std::int64_t q = k0; q < k1;) {  // q: a pixel; its output row starts at `start`
          const std::int64_t row = q / g.ow, start = row * g.ow, end = std::min(k1, start + g.ow);
          const std::int64_t lo = std::max(q, start + col_range[v].lo), hi = std::min(end, start + col_range[v].hi);
          q = end;
          if (!row_valid[ky * g.oh + row % g.oh] || lo >= hi) continue;
          const std::int64_t b_row = ((row / g.oh) * grid.h + row % g.oh + grid.top) * grid.w + lo - start + grid.left;
          PixelRun* last = plan.runs.size() > first ? &plan.runs.back() : nullptr;
          if (last && last->begin + last->count == lo && last->b_row + last->count == b_row)
            last->count += hi - lo;
          else
            plan.runs.push_back({lo, hi - lo, b_row});
        }
      }
  }
  plan.first.push_back(static_cast<std::int64_t>(plan.runs.size()));
  plan.n = n, plan.g = g, plan.grid = grid;
}
}  // namespace

bool conv_weight_grad_implicit(const float* x, std::int64_t n, const ConvGeometry& g, const float* dz,
                               const RowGrid& dz_rows, std::int64_t cout, float beta, float* dk, float* db,
                               float* scratch) {
#if defined(__x86_64__) || defined(_M_X64)
  if (!conv_implicit_supported(g)) return false;
  constexpr int mr = kMrAvx512, nr = kNrAvx512;
  // The B operand (K runs over pixels): dz read in place, 32 columns of a row per k step, when
  // its rows hold whole slivers; otherwise packed into zero-padded NR-wide slivers, pixel-major
  // (an in-place partial sliver would read past the end of dz). Packing cost 2% of a conv2
  // forward + weight gradient (perf, 1 thread).
  const bool in_place = conv_weight_grad_reads_padded_dz(cout);
  if (!in_place && !(dz_rows == dense_rows(g))) return false;  // packing reads dz as dense rows
  const PaddedExtent p = padded_extent(g);
  // Always the scratch copy, even without padding: a partial 14-row slice reads up to 13
  // floats past its kernel row, which for the last window of x itself would leave the array.
  pad_nhwc(x, n, g, scratch);
  std::fill(scratch + n * p.h * p.w * g.c, scratch + conv_weight_grad_scratch_size(g, n), 0.0f);
  const float* xpad = scratch;
  const std::int64_t r = n * g.oh * g.ow, seg_len = g.kw * g.c, seg_stride = g.dh * p.w * g.c;
  ConvScratch& cs = conv_scratch();
  // The windows' corners and the pixel runs depend only on these arguments: built once per
  // layer and batch size (rebuilding them every chunk took 2% of a conv2 forward + backward).
  WeightGradPlan& plan = cs.grad_plan;
  if (plan.n != n || !same_geometry(plan.g, g) || !(plan.grid == dz_rows)) build_weight_grad_plan(n, g, dz_rows, plan);
  const std::int64_t* corners = plan.corners.data();
  std::vector<float>& packed = cs.packed;
  if (!in_place) {
    if (packed.size() < static_cast<std::size_t>(packed_b_size(Isa::avx512, r, cout)))
      packed.resize(packed_b_size(Isa::avx512, r, cout));
    pack_b(Isa::avx512, r, cout, dz, cout, 1, packed.data());
  }
  const std::int64_t b_step = in_place ? cout : nr;
  // Short K blocks, pixel blocks outermost: one block's B slivers and the window rows its
  // pixels read (about 12 + 18 KB for the article's conv2) stay in L1 while all the 14-row
  // slices of dK go past them. With the blocks of gemm() (196 pixels) each slice re-read its
  // windows from L2, and this GEMM ran at 55% of peak against 75% for the forward one.
  const std::int64_t kc_block = plan.kc_block, variants = g.kw + 1;
  const std::int64_t slices = ceil_div(seg_len, mr), slivers = ceil_div(cout, nr);
  const std::int64_t db_row = db != nullptr ? plan.row_valid_everywhere : -1;
  const float* b_base = in_place ? dz : packed.data();
  // Partial tiles (the last slice of a kernel row, the last columns) sum in their own buffer
  // across the pixel blocks, then merge: writing 14 rows would run into the next kernel row's.
  std::vector<float>& edges = cs.edges;
  if (edges.size() < static_cast<std::size_t>(slivers * g.kh * slices * mr * nr))
    edges.resize(slivers * g.kh * slices * mr * nr);
  for (std::int64_t k0 = 0, blk = 0; k0 < r; k0 += kc_block, ++blk) {
    for (std::int64_t js = 0; js < slivers; ++js) {
      const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
      const float* bsliver = b_base + (in_place ? j0 : j0 * r);
      // Rows of dK in slices of 14 that never cross a kernel row (ky), so that each slice's
      // 14 values for one pixel are contiguous in the padded image.
      for (std::int64_t ky = 0; ky < g.kh; ++ky) {
        for (std::int64_t sl = 0; sl < slices; ++sl) {
          const std::int64_t i0 = sl * mr, rows = std::min<std::int64_t>(mr, seg_len - i0);
          const std::int64_t off = ky * seg_stride + i0;
          // One kernel row's partial slice also sums dz into its spare last row (db), over
          // every pixel of the block: its runs then cover all output columns.
          const bool ones = ky == db_row && rows < mr;
          const std::int64_t kx = i0 / g.c == (i0 + rows - 1) / g.c && !ones ? i0 / g.c : g.kw;
          const std::int64_t list = (blk * g.kh + ky) * variants + kx;
          const PixelRun* rk = plan.runs.data() + plan.first[list];
          const std::int64_t nruns = plan.first[list + 1] - plan.first[list];
          if (rows == mr && cols == nr) {
            float* cij = dk + (ky * seg_len + i0) * cout + j0;
            ukernel_avx512_gather(rk, nruns, xpad + off, corners, bsliver, b_step, k0 == 0 ? beta : 1.0f, cij, cout,
                                  false);
          } else {
            float* e = edges.data() + ((js * g.kh + ky) * slices + sl) * mr * nr;
            ukernel_avx512_gather(rk, nruns, xpad + off, corners, bsliver, b_step, k0 == 0 ? 0.0f : 1.0f, e, nr, ones);
          }
        }
      }
    }
  }
  for (std::int64_t js = 0; js < slivers; ++js) {  // merge the partial tiles
    const std::int64_t j0 = js * nr, cols = std::min<std::int64_t>(nr, cout - j0);
    for (std::int64_t ky = 0; ky < g.kh; ++ky)
      for (std::int64_t sl = 0; sl < slices; ++sl) {
        const std::int64_t i0 = sl * mr, rows = std::min<std::int64_t>(mr, seg_len - i0);
        if (rows == mr && cols == nr) continue;
        const float* e = edges.data() + ((js * g.kh + ky) * slices + sl) * mr * nr;
        float* cij = dk + (ky * seg_len + i0) * cout + j0;
        for (std::int64_t i = 0; i < rows; ++i)
          for (std::int64_t j = 0; j < cols; ++j)
            cij[i * cout + j] = beta == 0.0f ? e[i * nr + j] : cij[i * cout + j] + e[i * nr + j];
        if (ky == db_row && rows < mr)
          for (std::int64_t j = 0; j < cols; ++j) db[j0 + j] = e[(mr - 1) * nr + j];
      }
  }
  return true;
#else
  (void)x, (void)n, (void)g, (void)dz, (void)dz_rows, (void)cout, (void)beta, (void)dk, (void)db, (void)scratch;
  return false;
#endif
}

}  // namespace cnnx::kernels
