// Conv2D forward, backward and weight layout side by side.
// Layout: x [n, h, w, cin] -> col [n*oh*ow, kh*kw*cin] (im2col) -> y = col x K + b, with the
// kernel K kept in Keras' (kh, kw, cin, cout) order, which is already the row-major
// [kh*kw*cin, cout] matrix the GEMM wants. y [n*oh*ow, cout] is NHWC with no reshuffle.
// Where the ISA has an indirect micro-kernel (kernels/conv_gemm.hpp), a chunk's forward skips
// the col panel: the kernel reads each window from the zero-padded images (implicit GEMM).
// Backward: [dK; db] = [col, 1]^T x dz (the bias gradient is the GEMM's extra row, see
// col_stride; on the implicit path, a spare row of the weight-gradient kernel's partial
// slice). dx: for stride 1, the forward convolution of dz with the kernel flipped and its
// channels swapped (transposed_geometry), as an implicit GEMM; otherwise dcol = dz x K^T and
// dx = col2im(dcol). When dK and dX are both implicit, dz is written once, ReLU derivative
// applied, into the zero-padded copy that dX convolves, and dK reads its rows there. The
// transposes are strides into the same buffers (kernels/gemm.hpp).
// Bias and ReLU are fused into the micro-kernels' tile stores (kernels::GemmEpilogue).
// Threading and workspace: the batch is cut into fixed chunks of images whose im2col panel fits
// in L2 (see chunk_images); threads take whole chunks and run serial kernels on per-thread
// panels (one OpenMP level). Backward recomputes each chunk's im2col rather than keeping a
// whole-batch column matrix. A single chunk (batch 1) instead runs im2col and the threaded
// GEMM. 1x1 stride-1 unpadded convolutions skip im2col and read x directly.
#include "cnnx/layers/conv2d.hpp"

#include <algorithm>
#include <cstring>

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "cnnx/parallel.hpp"
#include "kernels/activations.hpp"
#include "kernels/conv_gemm.hpp"
#include "kernels/gemm.hpp"
#include "kernels/im2col.hpp"
#include "kernels/pool.hpp"
#include "kernels/reduce.hpp"

namespace cnnx {

Conv2D::Conv2D(std::string name, Conv2DConfig config) : Layer(std::move(name)), cfg_(std::move(config)) {
  auto pair = [](std::int64_t a, std::int64_t b) { return "(" + std::to_string(a) + ", " + std::to_string(b) + ")"; };
  if (cfg_.filters <= 0)
    throw ValueError(where() +
                     ": expected filters to be a positive integer, received filters=" + std::to_string(cfg_.filters));
  if (cfg_.kernel_h <= 0 || cfg_.kernel_w <= 0)
    throw ValueError(where() +
                     ": expected positive kernel_size, received kernel_size=" + pair(cfg_.kernel_h, cfg_.kernel_w));
  if (cfg_.stride_h <= 0 || cfg_.stride_w <= 0)
    throw ValueError(where() + ": expected positive strides, received strides=" + pair(cfg_.stride_h, cfg_.stride_w));
  if (cfg_.dilation_h <= 0 || cfg_.dilation_w <= 0)
    throw ValueError(where() + ": expected positive dilation_rate, received dilation_rate=" +
                     pair(cfg_.dilation_h, cfg_.dilation_w));
  if ((cfg_.stride_h > 1 || cfg_.stride_w > 1) && (cfg_.dilation_h > 1 || cfg_.dilation_w > 1))
    throw ValueError(where() +
                     ": strides > 1 cannot be combined with dilation_rate > 1 (as in Keras), received strides=" +
                     pair(cfg_.stride_h, cfg_.stride_w) + ", dilation_rate=" + pair(cfg_.dilation_h, cfg_.dilation_w));
  if (cfg_.padding != "valid" && cfg_.padding != "same")
    throw ValueError(where() + ": expected padding 'valid' or 'same', received padding='" + cfg_.padding + "'");
  act_ = parse_activation(cfg_.activation, where());
  check_initializer(cfg_.kernel_initializer, where());
  check_initializer(cfg_.bias_initializer, where());
}

Shape Conv2D::do_build(const Shape& in, Rng& rng) {
  if (in.size() != 3)
    throw ValueError(where() + ": expected input of rank 4 (batch, height, width, channels), received shape " +
                     batch_shape_str(in));
  auto& g = geom_;
  g.h = in[0];
  g.w = in[1];
  g.c = in[2];
  g.kh = cfg_.kernel_h;
  g.kw = cfg_.kernel_w;
  g.sh = cfg_.stride_h;
  g.sw = cfg_.stride_w;
  g.dh = cfg_.dilation_h;
  g.dw = cfg_.dilation_w;
  const bool same = cfg_.padding == "same";
  kernels::window_axis(g.h, g.kh, g.sh, g.dh, same, &g.oh, &g.pad_top);
  kernels::window_axis(g.w, g.kw, g.sw, g.dw, same, &g.ow, &g.pad_left);
  if (g.oh <= 0 || g.ow <= 0)
    throw ValueError(where() + ": input " + shape_str({-1, g.h, g.w, g.c}) + " is smaller than the kernel " +
                     shape_str({g.kh, g.kw}) + " with padding='valid'; expected height >= " +
                     std::to_string(g.dh * (g.kh - 1) + 1) + " and width >= " + std::to_string(g.dw * (g.kw - 1) + 1));
  check_sample_size({g.oh, g.ow, cfg_.filters}, "the output shape");  // before the kernel is allocated
  Param& kernel = add_param("kernel", {g.kh, g.kw, g.c, cfg_.filters});
  // One image's workspaces (reserve() multiplies them by at most kChunkRows images, checked):
  // sized here so that a geometry whose padded image or column panel overflows fails at build.
  try {
    (void)checked_mul(checked_mul(g.oh, g.ow), checked_add(g.patch(), 1));
    (void)kernels::conv_weight_grad_scratch_size(g, 1);
    (void)kernels::im2col_scratch_size(transposed_geometry(), 1);
  } catch (const SizeError& e) {
    throw SizeError("the workspace for kernel_size=" + shape_str({g.kh, g.kw}) + ", dilation_rate=" +
                    shape_str({g.dh, g.dw}) + " on input " + batch_shape_str(in) + " is too large: " + e.what());
  }
  const double fan_in = double(g.kh * g.kw * g.c), fan_out = double(g.kh * g.kw * cfg_.filters);
  initialize(kernel.value, cfg_.kernel_initializer, fan_in, fan_out, rng);
  if (cfg_.use_bias) {
    Param& bias = add_param("bias", {cfg_.filters});
    initialize(bias.value, cfg_.bias_initializer, fan_in, fan_out, rng);
  }
  return {g.oh, g.ow, cfg_.filters};
}

// Images per chunk: about kChunkRows output pixels, so that a chunk's im2col panel
// (rows x kh*kw*cin floats, e.g. 588 x 288 for the article's conv2) and its gradient stay in
// L2 instead of streaming a whole-batch column matrix (14 MB for that layer) through DRAM
// twice. It depends only on the layer's geometry, never on the thread count, so the weight
// gradient (summed chunk by chunk in chunk order) is identical on any number of threads.
namespace {
constexpr std::int64_t kChunkRows = 512;
}

// A power of two, so power-of-two batches split into equal chunks for 2, 4, 8... threads.
std::int64_t Conv2D::chunk_images() const {
  std::int64_t ci = 1;
  while (2 * ci * geom_.oh * geom_.ow <= kChunkRows) ci *= 2;
  return ci;
}

void Conv2D::ensure_workspace(std::int64_t n) {
  const auto& g = geom_;
  const std::int64_t ci = std::min(n, chunk_images());
  const std::int64_t chunks = (n + ci - 1) / ci;
  const std::size_t threads = chunks > 1 ? static_cast<std::size_t>(get_num_threads()) : 1;
  if (col_.size() < threads) {
    col_.resize(threads);
    z_.resize(threads);
    pad_.resize(threads);
    dzpad_.resize(threads);
  }
  const std::int64_t pixels = checked_mul(ci, checked_mul(g.oh, g.ow));
  const std::int64_t panel = g.is_identity() ? 0 : checked_mul(pixels, col_stride());
  const std::int64_t pad_size =
      std::max(kernels::im2col_scratch_size(g, ci), kernels::conv_weight_grad_scratch_size(g, ci));
  const std::int64_t dzpad_size = g.sh == 1 && g.sw == 1 ? kernels::im2col_scratch_size(transposed_geometry(), ci) : 0;
  // z: the fused pool's conv output and gradient, or the standalone layer's activation gradient
  const std::int64_t z_size = pool_ || act_ != Activation::linear ? checked_mul(pixels, cfg_.filters) : 0;
  for (std::size_t t = 0; t < threads; ++t) {
    if (col_[t].size() < panel) col_[t].resize(panel);
    if (pad_[t].size() < pad_size) pad_[t].resize(pad_size);
    if (dzpad_[t].size() < dzpad_size) dzpad_[t].resize(dzpad_size);
    if (z_[t].size() < z_size) z_[t].resize(z_size);
  }
  const std::int64_t dw_size = checked_mul(chunk_groups(chunks), checked_mul(grad_rows(), cfg_.filters));
  if (dw_partial_.size() < dw_size) dw_partial_.resize(dw_size);
  const std::int64_t db_size = checked_mul(chunks, cfg_.filters);
  if (cfg_.use_bias && db_partial_.size() < db_size) db_partial_.resize(db_size);
}

// The im2col panel's row stride: with a bias, one column past the patch holds 1.0 in backward,
// so the weight-gradient GEMM (col^T dz) yields the bias gradient (the column sums of dz) as one
// more row of its output. That row fills a slot of the micro-tile that is padding anyway for
// the article's layers (9, 288 and 576 rows are not multiples of 14), so db costs nothing
// instead of a separate pass over dz.
std::int64_t Conv2D::col_stride() const { return geom_.patch() + (cfg_.use_bias ? 1 : 0); }

// Rows of the weight-gradient GEMM's output: the kernel's patch rows, plus the bias row when
// the bias comes out of the GEMM (not for 1x1 convolutions that read x in place).
std::int64_t Conv2D::grad_rows() const { return geom_.patch() + (cfg_.use_bias && !geom_.is_identity() ? 1 : 0); }

// Backward runs the chunks in fixed groups of consecutive chunks; a group sums its chunks'
// [dK; db] into one partial, in chunk order, and the partials are then summed in group order.
// Groups depend only on the chunk count, never on the thread count, so the gradient has the
// same bits on any number of threads. Up to 4 chunks a group (4x less partial traffic than one
// partial per chunk), but at least 8 groups while there are 8 chunks, to keep threads busy.
std::int64_t Conv2D::chunks_per_group(std::int64_t chunks) { return std::clamp<std::int64_t>(chunks / 8, 1, 4); }
std::int64_t Conv2D::chunk_groups(std::int64_t chunks) {
  const std::int64_t per = chunks_per_group(chunks);
  return (chunks + per - 1) / per;
}

// The geometry of dX as a forward convolution of dz (stride 1 only): dz is the input (oh x ow,
// cout channels), padded so that every tap reaching a pixel of x is summed, with the same
// kernel size and dilation; the output is x's shape.
kernels::ConvGeometry Conv2D::transposed_geometry() const {
  const auto& g = geom_;
  kernels::ConvGeometry t = g;
  t.h = g.oh, t.w = g.ow, t.c = cfg_.filters;
  t.pad_top = checked_mul(g.kh - 1, g.dh) - g.pad_top;
  t.pad_left = checked_mul(g.kw - 1, g.dw) - g.pad_left;
  t.oh = g.h, t.ow = g.w;
  return t;
}

void Conv2D::reserve(std::int64_t batch) { ensure_workspace(batch); }

void Conv2D::set_fused_pool(const kernels::ConvGeometry* pool) {
  if (pool && act_ != Activation::relu && act_ != Activation::linear)
    throw ValueError(where() + ": only a ReLU or linear convolution can be fused with the pooling after it");
  pool_ = pool;
  for (auto& z : z_) z = Buffer();
}

void Conv2D::forward(const float* x, float* y, std::int64_t n, bool training) {
  (void)training;                          // nothing is kept: backward recomputes each chunk's im2col in cache
  run_forward(x, n, y, nullptr, nullptr);  // also usable alone when the model fuses this layer
  if (act_ != Activation::relu) kernels::activation_forward(act_, y, n * geom_.oh * geom_.ow, cfg_.filters);
}

void Conv2D::forward_pooled(const float* x, std::int64_t n, float* pooled, std::int32_t* argmax) {
  if (!pool_) throw ValueError(where() + ": forward_pooled needs a fused pooling layer");
  run_forward(x, n, pooled, argmax, pool_);
}

// One chunk: one thread, serial kernels, the panel in L2. One chunk only (batch 1): the
// threads go to im2col and the GEMM instead.
void Conv2D::run_forward(const float* x, std::int64_t n, float* out, std::int32_t* argmax,
                         const kernels::ConvGeometry* pool) {
  const auto& g = geom_;
  const std::int64_t patch = g.patch(), cout = cfg_.filters, pix = g.oh * g.ow, in_size = g.h * g.w * g.c;
  kernels::GemmEpilogue ep;  // bias and ReLU applied to each tile as it is finished, in L1
  ep.bias = cfg_.use_bias ? params()[1].value.data() : nullptr;
  ep.relu = act_ == Activation::relu;
  const float* kernel = params()[0].value.data();
  ensure_workspace(n);
  const std::int64_t ci = std::min(n, chunk_images()), chunks = (n + ci - 1) / ci;
  const std::int64_t pooled_size = pool ? pool->oh * pool->ow * cout : 0;
  const bool par = chunks > 1;
  const bool implicit = chunks > 1 && !g.is_identity() && kernels::conv_implicit_supported(g);
  if (implicit) {  // packed once per batch for the implicit GEMM of every chunk
    packed_kernel_.resize(kernels::packed_b_size(kernels::Isa::avx512, patch, cout));
    kernels::pack_kernel_implicit(kernel, patch, cout, packed_kernel_.data(), par);
  }
  parallel_for(chunks, par, [&](std::int64_t c) {
    const std::int64_t i0 = c * ci, m = std::min(ci, n - i0);
    const std::size_t t = static_cast<std::size_t>(chunks > 1 ? thread_index() : 0);
    float* z = pool ? z_[t].data() : out + i0 * pix * cout;
    const float* col = x + i0 * in_size;  // a 1x1 stride-1 convolution's columns are x itself
    std::int64_t ld = patch;
    if (!g.is_identity()) {
      // One of several chunks, on one thread: the kernel reads the windows straight from the
      // (padded) images where the ISA allows, instead of from an im2col panel it would first
      // have to write. A single chunk keeps im2col + the threaded GEMM.
      if (implicit) {
        kernels::conv_forward_implicit(x + i0 * in_size, m, g, packed_kernel_.data(), cout, z, ep, pad_[t].data());
        if (pool) kernels::max_pool_forward(z, m, *pool, out + i0 * pooled_size, argmax + i0 * pooled_size);
        return;
      }
      ld = col_stride();
      kernels::im2col_nhwc(x + i0 * in_size, m, g, col_[t].data(), ld, pad_[t].data());
      col = col_[t].data();
    }
    kernels::gemm(m * pix, cout, patch, col, ld, 1, kernel, cout, 1, 0.0f, z, cout, ep);
    if (pool) kernels::max_pool_forward(z, m, *pool, out + i0 * pooled_size, argmax + i0 * pooled_size);
  });
}

// Called by the model only when this layer is not fused; a direct call on a fused layer (tests,
// inspection) gets the plain, unfused gradient.
void Conv2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  const bool act = !dy_is_preactivation_ && act_ != Activation::linear;
  run_backward(x, dy, nullptr, nullptr, dx, n, nullptr, act ? y : nullptr);
}

void Conv2D::backward_pooled(const float* x, const float* pooled, const float* dpooled, const std::int32_t* argmax,
                             float* dx, std::int64_t n) {
  if (!pool_) throw ValueError(where() + ": backward_pooled needs a fused pooling layer");
  run_backward(x, dpooled, pooled, argmax, dx, n, pool_);
}

// Per chunk: dz_c (given, or scattered from the pooled gradient into an L2 scratch, with the
// ReLU derivative read off the pooled output), then dK_c = col_c^T dz_c, db_c = column sums of
// dz_c, and dx_c (see the file comment for the two ways). Chunks add into their group's partial.
void Conv2D::run_backward(const float* x, const float* dz_all, const float* pooled, const std::int32_t* argmax,
                          float* dx, std::int64_t n, const kernels::ConvGeometry* pool, const float* y) {
  const auto& g = geom_;
  const std::int64_t patch = g.patch(), cout = cfg_.filters, pix = g.oh * g.ow, in_size = g.h * g.w * g.c;
  float* dkernel = params()[0].grad.data();
  // A frozen layer (trainable=False) only passes the input gradient on.
  const bool dweights = computes_weight_grads();
  float* dbias = cfg_.use_bias && dweights ? params()[1].grad.data() : nullptr;
  const float* kernel = params()[0].value.data();
  ensure_workspace(n);
  const std::int64_t ci = std::min(n, chunk_images()), chunks = (n + ci - 1) / ci;
  const std::int64_t dw = patch * cout, rows_dk = grad_rows(), dwb = rows_dk * cout;
  const std::int64_t pooled_size = pool ? pool->oh * pool->ow * cout : 0;
  const bool relu_mask = act_ == Activation::relu;
  const bool par = chunks > 1;
  // With several chunks and stride 1, dX is the forward convolution of dz with the kernel
  // flipped and its channels swapped, [kh, kw, cout, cin] (transposed_geometry), run as an
  // implicit GEMM where the ISA allows: no dcol panel and no col2im scatter. Otherwise K^T is
  // made once per batch, row-major, so each chunk's dX GEMM packs it with plain row copies.
  const kernels::ConvGeometry tg = transposed_geometry();
  const bool dx_implicit =
      dx && chunks > 1 && g.sh == 1 && g.sw == 1 && !g.is_identity() && kernels::conv_implicit_supported(tg);
  if (dx_implicit) {
    packed_kernel_.resize(kernels::packed_b_size(kernels::Isa::avx512, tg.patch(), g.c));
    kernels::pack_flipped_kernel_implicit(kernel, g, cout, packed_kernel_.data(), par);
  } else if (dx) {
    kernel_t_.resize(dw);
    float* kt = kernel_t_.data();
    for (std::int64_t p = 0; p < patch; ++p)
      for (std::int64_t co = 0; co < cout; ++co) kt[co * patch + p] = kernel[p * cout + co];
  }
  // Several chunks: the weight gradient reads the windows from the padded images directly too.
  const bool dw_implicit = dweights && chunks > 1 && !g.is_identity() && kernels::conv_implicit_supported(g);
  // The bias gradient rides in the weight-gradient GEMM on the im2col path (col_stride) and,
  // mostly, on the implicit path (conv_weight_grad_sums_bias); otherwise it is summed per chunk
  // into db_partial_.
  const bool bias_in_gemm = dbias && rows_dk > patch && !dw_implicit;
  const bool db_in_dw = dbias && dw_implicit && kernels::conv_weight_grad_sums_bias(g);
  // Both implicit: dz goes once into the zero-padded copy that the dX convolution reads, the
  // ReLU derivative applied on the way, and the weight gradient reads its rows there too (one
  // pass over dz instead of a derivative pass and a padding pass).
  // (The bias gradient must then come from the weight gradient's spare row: dz itself is
  // never formed unpadded.)
  const bool dz_padded = dweights && dx_implicit && dw_implicit && kernels::conv_weight_grad_reads_padded_dz(cout) &&
                         kernels::padded_extent(tg).needed && (!y || act_ == Activation::relu) && (!dbias || db_in_dw);
  const std::int64_t per_group = chunks_per_group(chunks), groups = chunk_groups(chunks);
  parallel_for(groups, par, [&](std::int64_t grp) {
    for (std::int64_t c = grp * per_group; c < std::min(chunks, (grp + 1) * per_group); ++c) {
      const std::int64_t i0 = c * ci, m = std::min(ci, n - i0), r = m * pix;
      const std::size_t t = static_cast<std::size_t>(chunks > 1 ? thread_index() : 0);
      const float beta = c == grp * per_group ? 0.0f : 1.0f;  // chunks of a group add up
      float* part = dw_partial_.data() + grp * dwb;
      float* db_chunk = dbias ? db_partial_.data() + c * cout : nullptr;
      const float* dz = dz_all + i0 * pix * cout;
      // The fused pool's gradient scattered into the chunk's conv output, ReLU derivative read
      // off the pooled output.
      auto unpool = [&](float* z) {
        kernels::max_pool_backward(dz_all + i0 * pooled_size, argmax + i0 * pooled_size, m, *pool, z,
                                   relu_mask ? pooled + i0 * pooled_size : nullptr);
      };
      if (dz_padded) {
        float* dzp = dzpad_[t].data();
        if (pool) {
          unpool(z_[t].data());
          kernels::pad_nhwc(z_[t].data(), m, tg, dzp);
        } else if (y) {
          kernels::pad_nhwc_where_positive(dz, y + i0 * pix * cout, m, tg, dzp);
        } else {
          kernels::pad_nhwc(dz, m, tg, dzp);
        }
        kernels::conv_weight_grad_implicit(x + i0 * in_size, m, g, dzp, kernels::padded_rows(tg), cout, beta, part,
                                           db_chunk, pad_[t].data());
        kernels::conv_forward_implicit_padded(dzp, m, tg, packed_kernel_.data(), g.c, dx + i0 * in_size, {});
        continue;
      }
      if (y) {
        // The activation's derivative into the L2 scratch rather than back into dy: dy is read
        // once from memory and never written back (a third of a standalone layer's traffic).
        float* z = z_[t].data();
        kernels::activation_backward_to(act_, y + i0 * pix * cout, dz, z, r, cout);
        dz = z;
      }
      if (pool) {
        unpool(z_[t].data());
        dz = z_[t].data();
      }
      if (dw_implicit)
        kernels::conv_weight_grad_implicit(x + i0 * in_size, m, g, dz, kernels::dense_rows(g), cout, beta, part,
                                           db_in_dw ? db_chunk : nullptr, pad_[t].data());
      const float* col = x + i0 * in_size;
      std::int64_t ld = patch;
      if (dweights && !dw_implicit && !g.is_identity()) {
        ld = col_stride();
        float* panel = col_[t].data();
        kernels::im2col_nhwc(x + i0 * in_size, m, g, panel, ld, pad_[t].data());
        if (bias_in_gemm)
          for (std::int64_t i = 0; i < r; ++i) panel[i * ld + patch] = 1.0f;
        col = panel;
      }
      // [dK; db] for this chunk = [col, 1]^T dz, added to its group's partial.
      if (dweights && !dw_implicit) kernels::gemm(rows_dk, cout, r, col, 1, ld, dz, cout, 1, beta, part, cout);
      if (dbias && !bias_in_gemm && !db_in_dw) kernels::column_sums(dz, r, cout, db_chunk);
      if (!dx) continue;
      if (dx_implicit) {
        kernels::conv_forward_implicit(dz, m, tg, packed_kernel_.data(), g.c, dx + i0 * in_size, {}, dzpad_[t].data());
        continue;
      }
      if (g.is_identity()) {
        kernels::gemm(r, patch, cout, dz, cout, 1, kernel_t_.data(), patch, 1, 0.0f, dx + i0 * in_size, patch);
      } else {
        // The im2col panel was last read by the dK GEMM above, so dcol reuses it.
        float* dcol = col_[t].data();
        kernels::gemm(r, patch, cout, dz, cout, 1, kernel_t_.data(), patch, 1, 0.0f, dcol, patch);
        kernels::col2im_nhwc(dcol, m, g, dx + i0 * in_size, pad_[t].data());
      }
    }
  });
  // Group partials summed in group order: the same bits whatever the thread count. Blocks of
  // contiguous entries with the group loop outside, so the adds vectorise (an entry-at-a-time
  // loop striding across the partials took 2% of a conv3 forward + backward).
  if (!dweights) return;
  const float* part = dw_partial_.data();
  const std::int64_t summed = bias_in_gemm ? dwb : dw, block = 1024;
  parallel_for_blocks(summed, block, par && summed * groups >= (1 << 14), [&](std::int64_t j0, std::int64_t len) {
    float sums[block];
    for (std::int64_t j = 0; j < len; ++j) sums[j] = part[j0 + j];
    for (std::int64_t q = 1; q < groups; ++q) {
      const float* pq = part + q * dwb + j0;
      for (std::int64_t j = 0; j < len; ++j) sums[j] += pq[j];
    }
    const std::int64_t in_kernel = std::clamp<std::int64_t>(dw - j0, 0, len);  // the rest is db
    std::copy(sums, sums + in_kernel, dkernel + j0);
    if (in_kernel < len) std::copy(sums + in_kernel, sums + len, dbias + (j0 + in_kernel - dw));
  });
  if (dbias && !bias_in_gemm) kernels::column_sums(db_partial_.data(), chunks, cout, dbias);
}

}  // namespace cnnx
