// Conv2D forward, backward and weight layout side by side.
// Layout: x [n, h, w, cin] -> col [n*oh*ow, kh*kw*cin] (im2col) -> y = col x K + b, with the
// kernel K kept in Keras' (kh, kw, cin, cout) order, which is already the row-major
// [kh*kw*cin, cout] matrix the GEMM wants. y [n*oh*ow, cout] is NHWC with no reshuffle.
// Where the ISA has an indirect micro-kernel (kernels/conv_gemm.hpp), a chunk's forward skips
// the col panel: the kernel reads each window from the zero-padded images (implicit GEMM).
// Backward: [dK; db] = [col, 1]^T x dz (the bias gradient is the GEMM's extra row, see
// Conv2DPlan::col_stride; on the implicit path, a spare row of the weight-gradient kernel's partial
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
// These choices are made once per batch size (and ISA, thread count, fusion, trainability) by
// make_plan, into a Conv2DPlan that also sizes the workspaces; forward and backward follow it.
#include "layers/conv2d.hpp"

#include <algorithm>
#include <cstring>

#include "cnnx/error.hpp"
#include "cnnx/initializers.hpp"
#include "core/parallel_for.hpp"
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

// Backward runs the chunks in fixed groups of consecutive chunks; a group sums its chunks'
// [dK; db] into one partial, in chunk order, and the partials are then summed in group order.
// Groups depend only on the chunk count, never on the thread count, so the gradient has the
// same bits on any number of threads. Up to 4 chunks a group (4x less partial traffic than one
// partial per chunk), but at least 8 groups while there are 8 chunks, to keep threads busy.
std::int64_t chunks_per_group(std::int64_t chunks) { return std::clamp<std::int64_t>(chunks / 8, 1, 4); }
}  // namespace

const char* conv_algorithm_name(ConvAlgorithm a) {
  switch (a) {
    case ConvAlgorithm::im2col_gemm: return "im2col_gemm";
    case ConvAlgorithm::implicit_gemm: return "implicit_gemm";
    case ConvAlgorithm::direct_1x1: return "direct_1x1";
    case ConvAlgorithm::none: break;
  }
  return "none";
}

const char* bias_grad_route_name(BiasGradRoute r) {
  switch (r) {
    case BiasGradRoute::gemm_row: return "gemm_row";
    case BiasGradRoute::weight_grad_row: return "weight_grad_row";
    case BiasGradRoute::column_sums: return "column_sums";
    case BiasGradRoute::none: break;
  }
  return "none";
}

std::int64_t Conv2DPlan::workspace_floats() const {
  const std::int64_t per_thread = checked_add(checked_add(col, pad), checked_add(dzpad, z));
  return checked_add(checked_mul(panel_threads, per_thread),
                     checked_add(checked_add(dw_partial, db_partial), checked_add(packed_kernel, kernel_t)));
}

// A power of two, so power-of-two batches split into equal chunks for 2, 4, 8... threads.
std::int64_t Conv2D::chunk_images() const {
  std::int64_t ci = 1;
  while (2 * ci * geom_.oh * geom_.ow <= kChunkRows) ci *= 2;
  return ci;
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

// The routes, in order of preference: a 1x1 stride-1 unpadded convolution reads x as its
// column matrix. With several chunks, each chunk on one thread, the kernels read the windows
// straight from the (padded) images where the ISA has an indirect micro-kernel, instead of from
// an im2col panel they would first have to write; dX so only for stride 1 (as the convolution
// of dz, transposed_geometry). A single chunk (batch 1) keeps im2col + the threaded GEMM.
Conv2DPlan Conv2D::make_plan(std::int64_t n) const {
  if (!built()) throw ValueError(where() + ": build the layer before planning it");
  if (n <= 0) throw ValueError(where() + ": expected a batch of at least 1 sample, received " + std::to_string(n));
  const auto& g = geom_;
  const kernels::ConvGeometry tg = transposed_geometry();
  const std::int64_t patch = g.patch(), cout = cfg_.filters;
  Conv2DPlan p;
  p.batch = n;
  p.isa = static_cast<int>(kernels::active_isa());
  p.isa_name = kernels::isa_name(kernels::active_isa());
  p.threads = get_num_threads();
  p.weight_grads = computes_weight_grads();
  p.fused_pool = pool_ != nullptr;
  p.preactivation = output_grad_is_preactivation();
  p.chunk_images = std::min(n, chunk_images());
  p.chunks = (n + p.chunk_images - 1) / p.chunk_images;
  p.chunks_per_group = chunks_per_group(p.chunks);
  p.groups = (p.chunks + p.chunks_per_group - 1) / p.chunks_per_group;
  p.panel_threads = p.chunks > 1 ? p.threads : 1;

  const bool several = p.chunks > 1, identity = g.is_identity();
  const bool implicit = kernels::conv_implicit_supported(g);
  const bool stride1 = g.sh == 1 && g.sw == 1;
  const bool implicit_dx = stride1 && kernels::conv_implicit_supported(tg);
  auto pick = [&](ConvAlgorithm forced, bool can_implicit, const char* what) {
    if (forced == ConvAlgorithm::none) {
      if (identity) return ConvAlgorithm::direct_1x1;
      return several && can_implicit ? ConvAlgorithm::implicit_gemm : ConvAlgorithm::im2col_gemm;
    }
    if ((forced == ConvAlgorithm::direct_1x1 && !identity) || (forced == ConvAlgorithm::implicit_gemm && !can_implicit))
      throw ValueError(where() + ": the forced " + what + " algorithm " + conv_algorithm_name(forced) +
                       " cannot run this geometry with ISA " + p.isa_name);
    return forced;
  };
  p.forward = pick(forced_[0], implicit, "forward");
  p.weight_grad = p.weight_grads ? pick(forced_[1], implicit, "weight-gradient") : ConvAlgorithm::none;
  p.input_grad = pick(forced_[2], implicit_dx, "input-gradient");

  // The bias gradient rides in the weight-gradient GEMM on the im2col path (col_stride) and,
  // mostly, on the implicit path (conv_weight_grad_sums_bias); otherwise it is summed per chunk.
  if (!cfg_.use_bias || !p.weight_grads)
    p.bias_grad = BiasGradRoute::none;
  else if (p.weight_grad == ConvAlgorithm::im2col_gemm)
    p.bias_grad = BiasGradRoute::gemm_row;
  else if (p.weight_grad == ConvAlgorithm::implicit_gemm && kernels::conv_weight_grad_sums_bias(g))
    p.bias_grad = BiasGradRoute::weight_grad_row;
  else
    p.bias_grad = BiasGradRoute::column_sums;
  // Both implicit: dz goes once into the zero-padded copy that the dX convolution reads, the
  // ReLU derivative applied on the way (any other activation's derivative needs its own pass),
  // and the weight gradient reads its rows there too: one pass over dz instead of a derivative
  // pass and a padding pass. The bias gradient must then come from the weight gradient's spare
  // row: dz itself is never formed unpadded.
  const bool relu_or_none = output_grad_is_preactivation() || act_ == Activation::relu || act_ == Activation::linear;
  p.shared_padded_dz = p.weight_grad == ConvAlgorithm::implicit_gemm && p.input_grad == ConvAlgorithm::implicit_gemm &&
                       kernels::conv_weight_grad_reads_padded_dz(cout) && kernels::padded_extent(tg).needed &&
                       relu_or_none &&
                       (p.bias_grad == BiasGradRoute::none || p.bias_grad == BiasGradRoute::weight_grad_row);

  // With a bias, the im2col panel has one column past the patch that holds 1.0 in backward, so
  // the weight-gradient GEMM (col^T dz) yields the bias gradient (the column sums of dz) as one
  // more row of its output. That row fills a slot of the micro-tile that is padding anyway for
  // the article's layers (9, 288 and 576 rows are not multiples of 14), so db costs nothing
  // instead of a separate pass over dz.
  p.col_stride = patch + (cfg_.use_bias ? 1 : 0);
  p.grad_rows = patch + (p.bias_grad == BiasGradRoute::gemm_row ? 1 : 0);

  const std::int64_t pixels = checked_mul(p.chunk_images, checked_mul(g.oh, g.ow));
  auto uses = [&](ConvAlgorithm a) { return p.forward == a || p.weight_grad == a || p.input_grad == a; };
  // The panel also holds dL/dcol in backward, once col has been used (patch <= col_stride).
  if (uses(ConvAlgorithm::im2col_gemm)) p.col = checked_mul(pixels, p.col_stride);
  // The zero-padded copy of a chunk's images: for im2col / col2im, the implicit forward, and
  // (with the over-read of a partial slice) the implicit weight gradient.
  if (uses(ConvAlgorithm::im2col_gemm) || p.forward == ConvAlgorithm::implicit_gemm)
    p.pad = kernels::im2col_scratch_size(g, p.chunk_images);
  if (p.weight_grad == ConvAlgorithm::implicit_gemm)
    p.pad = std::max(p.pad, kernels::conv_weight_grad_scratch_size(g, p.chunk_images));
  if (p.input_grad == ConvAlgorithm::implicit_gemm) p.dzpad = kernels::im2col_scratch_size(tg, p.chunk_images);
  // z: the fused pool's conv output and gradient, or the standalone layer's activation gradient
  if (pool_ || act_ != Activation::linear) p.z = checked_mul(pixels, cout);
  if (p.weight_grads) p.dw_partial = checked_mul(p.groups, checked_mul(p.grad_rows, cout));
  if (p.bias_grad == BiasGradRoute::weight_grad_row || p.bias_grad == BiasGradRoute::column_sums)
    p.db_partial = checked_mul(p.chunks, cout);
  if (p.forward == ConvAlgorithm::implicit_gemm)
    p.packed_kernel = kernels::packed_b_size(kernels::Isa::avx512, patch, cout);
  if (p.input_grad == ConvAlgorithm::implicit_gemm)
    p.packed_kernel = std::max(p.packed_kernel, kernels::packed_b_size(kernels::Isa::avx512, tg.patch(), g.c));
  else
    p.kernel_t = checked_mul(patch, cout);
  return p;
}

const Conv2DPlan& Conv2D::plan_for(std::int64_t n) {
  const Conv2DPlan& p = plan_;
  if (p.batch != n || p.isa != static_cast<int>(kernels::active_isa()) || p.threads != get_num_threads() ||
      p.weight_grads != computes_weight_grads() || p.fused_pool != (pool_ != nullptr) ||
      p.preactivation != output_grad_is_preactivation()) {
    plan_ = make_plan(n);
    ensure_workspace(plan_);  // allocates only when no reserve() covered this plan
  }
  return plan_;
}

// Workspaces only grow: a smaller batch's plan needs no more of any buffer than a larger one's.
void Conv2D::ensure_workspace(const Conv2DPlan& p) {
  const auto threads = static_cast<std::size_t>(p.panel_threads);
  if (col_.size() < threads) {
    col_.resize(threads);
    z_.resize(threads);
    pad_.resize(threads);
    dzpad_.resize(threads);
  }
  for (std::size_t t = 0; t < threads; ++t) {
    if (col_[t].size() < p.col) col_[t].resize(p.col);
    if (pad_[t].size() < p.pad) pad_[t].resize(p.pad);
    if (dzpad_[t].size() < p.dzpad) dzpad_[t].resize(p.dzpad);
    if (z_[t].size() < p.z) z_[t].resize(p.z);
  }
  if (dw_partial_.size() < p.dw_partial) dw_partial_.resize(p.dw_partial);
  if (db_partial_.size() < p.db_partial) db_partial_.resize(p.db_partial);
  if (packed_kernel_.size() < p.packed_kernel) packed_kernel_.resize(p.packed_kernel);
  if (kernel_t_.size() < p.kernel_t) kernel_t_.resize(p.kernel_t);
}

std::int64_t Conv2D::allocated_workspace_floats() const {
  std::int64_t total = dw_partial_.size() + db_partial_.size() + packed_kernel_.size() + kernel_t_.size();
  for (const auto* v : {&col_, &pad_, &dzpad_, &z_})
    for (const Buffer& b : *v) total += b.size();
  return total;
}

// Every smaller batch then runs without allocating: the buffers of a route grow with the batch,
// and the routes differ only between several chunks and one (the last batch of an epoch, a
// single prediction), which may take im2col + the threaded GEMM where several chunks go
// implicit and need no panel.
void Conv2D::reserve(std::int64_t batch) {
  const std::int64_t one_chunk = std::min(batch, chunk_images());
  if (one_chunk < batch) ensure_workspace(make_plan(one_chunk));
  plan_ = make_plan(batch);
  ensure_workspace(plan_);
}

// As ensure_workspace grows the buffers for the two plans of reserve(): thread 0's hold the
// larger need of each, the other threads' (several chunks only) the larger batch's.
std::int64_t Conv2D::workspace_floats(std::int64_t batch) const {
  const Conv2DPlan p = make_plan(batch);
  const std::int64_t one_chunk = std::min(batch, chunk_images());
  if (one_chunk == batch) return p.workspace_floats();
  const Conv2DPlan q = make_plan(one_chunk);
  const std::int64_t first =
      std::max(p.col, q.col) + std::max(p.pad, q.pad) + std::max(p.dzpad, q.dzpad) + std::max(p.z, q.z);
  const std::int64_t others = checked_mul(p.panel_threads - 1, p.col + p.pad + p.dzpad + p.z);
  const std::int64_t shared = std::max(p.dw_partial, q.dw_partial) + std::max(p.db_partial, q.db_partial) +
                              std::max(p.packed_kernel, q.packed_kernel) + std::max(p.kernel_t, q.kernel_t);
  return checked_add(checked_add(first, others), shared);
}

void Conv2D::force_algorithms(ConvAlgorithm forward, ConvAlgorithm weight_grad, ConvAlgorithm input_grad) {
  forced_[0] = forward, forced_[1] = weight_grad, forced_[2] = input_grad;
  plan_ = Conv2DPlan();
}

void Conv2D::set_fused_pool(const kernels::ConvGeometry* pool) {
  if (pool && act_ != Activation::relu && act_ != Activation::linear)
    throw ValueError(where() + ": only a ReLU or linear convolution can be fused with the pooling after it");
  pool_ = pool;
  for (auto& z : z_) z = Buffer();
  plan_ = Conv2DPlan();
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
  const Conv2DPlan& p = plan_for(n);
  const std::int64_t ci = p.chunk_images;
  const std::int64_t pooled_size = pool ? pool->oh * pool->ow * cout : 0;
  const bool par = !p.single_chunk();
  if (p.forward == ConvAlgorithm::implicit_gemm)  // packed once per batch for every chunk
    kernels::pack_kernel_implicit(kernel, patch, cout, packed_kernel_.data(), par);
  parallel_for(p.chunks, par, [&](std::int64_t c) {
    const std::int64_t i0 = c * ci, m = std::min(ci, n - i0);
    const std::size_t t = static_cast<std::size_t>(par ? thread_index() : 0);
    float* z = pool ? z_[t].data() : out + i0 * pix * cout;
    const float* xc = x + i0 * in_size;
    switch (p.forward) {
      case ConvAlgorithm::implicit_gemm:
        kernels::conv_forward_implicit(xc, m, g, packed_kernel_.data(), cout, z, ep, pad_[t].data());
        break;
      case ConvAlgorithm::im2col_gemm:
        kernels::im2col_nhwc(xc, m, g, col_[t].data(), p.col_stride, pad_[t].data());
        kernels::gemm(m * pix, cout, patch, col_[t].data(), p.col_stride, 1, kernel, cout, 1, 0.0f, z, cout, ep);
        break;
      default:  // direct_1x1: the columns are x itself
        kernels::gemm(m * pix, cout, patch, xc, patch, 1, kernel, cout, 1, 0.0f, z, cout, ep);
    }
    if (pool) kernels::max_pool_forward(z, m, *pool, out + i0 * pooled_size, argmax + i0 * pooled_size);
  });
}

// Called by the model only when this layer is not fused; a direct call on a fused layer (tests,
// inspection) gets the plain, unfused gradient.
void Conv2D::backward(const float* x, const float* y, float* dy, float* dx, std::int64_t n) {
  const bool act = !output_grad_is_preactivation() && act_ != Activation::linear;
  run_backward(x, dy, nullptr, nullptr, dx, n, nullptr, act ? y : nullptr);
}

void Conv2D::backward_pooled(const float* x, const float* pooled, const float* dpooled, const std::int32_t* argmax,
                             float* dx, std::int64_t n) {
  if (!pool_) throw ValueError(where() + ": backward_pooled needs a fused pooling layer");
  run_backward(x, dpooled, pooled, argmax, dx, n, pool_);
}

// Per chunk: dz_c (given, or scattered from the pooled gradient into an L2 scratch, with the
// ReLU derivative read off the pooled output), then dK_c = col_c^T dz_c, db_c = column sums of
// dz_c, and dx_c (see the file comment for the routes). Chunks add into their group's partial.
void Conv2D::run_backward(const float* x, const float* dz_all, const float* pooled, const std::int32_t* argmax,
                          float* dx, std::int64_t n, const kernels::ConvGeometry* pool, const float* y) {
  const auto& g = geom_;
  const std::int64_t patch = g.patch(), cout = cfg_.filters, pix = g.oh * g.ow, in_size = g.h * g.w * g.c;
  // A frozen layer (trainable=False) only passes the input gradient on: its plan has no
  // weight-gradient algorithm and no bias route.
  const Conv2DPlan& p = plan_for(n);
  float* dkernel = params()[0].grad.data();
  float* dbias = p.bias_grad != BiasGradRoute::none ? params()[1].grad.data() : nullptr;
  const float* kernel = params()[0].value.data();
  const std::int64_t ci = p.chunk_images, chunks = p.chunks, dw = patch * cout, dwb = p.grad_rows * cout;
  const std::int64_t pooled_size = pool ? pool->oh * pool->ow * cout : 0;
  const bool relu_mask = act_ == Activation::relu;
  const bool par = !p.single_chunk();
  const bool bias_in_gemm = p.bias_grad == BiasGradRoute::gemm_row;
  const bool db_in_dw = p.bias_grad == BiasGradRoute::weight_grad_row;
  const bool shared_dz = dx && p.shared_padded_dz;
  // The implicit dX reads the kernel flipped and its channels swapped, [kh, kw, cout, cin]
  // (transposed_geometry), packed once per batch. The GEMM routes make K^T once per batch,
  // row-major, so each chunk's dX GEMM packs it with plain row copies.
  const kernels::ConvGeometry tg = transposed_geometry();
  if (dx && p.input_grad == ConvAlgorithm::implicit_gemm) {
    kernels::pack_flipped_kernel_implicit(kernel, g, cout, packed_kernel_.data(), par);
  } else if (dx) {
    float* kt = kernel_t_.data();
    for (std::int64_t q = 0; q < patch; ++q)
      for (std::int64_t co = 0; co < cout; ++co) kt[co * patch + q] = kernel[q * cout + co];
  }
  const std::int64_t per_group = p.chunks_per_group;
  parallel_for(p.groups, par, [&](std::int64_t grp) {
    for (std::int64_t c = grp * per_group; c < std::min(chunks, (grp + 1) * per_group); ++c) {
      const std::int64_t i0 = c * ci, m = std::min(ci, n - i0), r = m * pix;
      const std::size_t t = static_cast<std::size_t>(par ? thread_index() : 0);
      const float beta = c == grp * per_group ? 0.0f : 1.0f;  // chunks of a group add up
      float* part = dw_partial_.data() + grp * dwb;
      float* db_chunk = dbias && !bias_in_gemm ? db_partial_.data() + c * cout : nullptr;
      const float* xc = x + i0 * in_size;
      float* dxc = dx ? dx + i0 * in_size : nullptr;
      const float* dz = dz_all + i0 * pix * cout;
      // The fused pool's gradient scattered into the chunk's conv output, ReLU derivative read
      // off the pooled output.
      auto unpool = [&](float* z) {
        kernels::max_pool_backward(dz_all + i0 * pooled_size, argmax + i0 * pooled_size, m, *pool, z,
                                   relu_mask ? pooled + i0 * pooled_size : nullptr);
      };
      if (shared_dz) {
        float* dzp = dzpad_[t].data();
        if (pool) {
          unpool(z_[t].data());
          kernels::pad_nhwc(z_[t].data(), m, tg, dzp);
        } else if (y) {
          kernels::pad_nhwc_where_positive(dz, y + i0 * pix * cout, m, tg, dzp);
        } else {
          kernels::pad_nhwc(dz, m, tg, dzp);
        }
        kernels::conv_weight_grad_implicit(xc, m, g, dzp, kernels::padded_rows(tg), cout, beta, part, db_chunk,
                                           pad_[t].data());
        kernels::conv_forward_implicit_padded(dzp, m, tg, packed_kernel_.data(), g.c, dxc, {});
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
      // [dK; db] for this chunk = [col, 1]^T dz, added to its group's partial.
      switch (p.weight_grad) {
        case ConvAlgorithm::implicit_gemm:
          kernels::conv_weight_grad_implicit(xc, m, g, dz, kernels::dense_rows(g), cout, beta, part,
                                             db_in_dw ? db_chunk : nullptr, pad_[t].data());
          break;
        case ConvAlgorithm::im2col_gemm: {
          float* panel = col_[t].data();
          const std::int64_t ld = p.col_stride;
          kernels::im2col_nhwc(xc, m, g, panel, ld, pad_[t].data());
          if (bias_in_gemm)
            for (std::int64_t i = 0; i < r; ++i) panel[i * ld + patch] = 1.0f;
          kernels::gemm(p.grad_rows, cout, r, panel, 1, ld, dz, cout, 1, beta, part, cout);
          break;
        }
        case ConvAlgorithm::direct_1x1:
          kernels::gemm(p.grad_rows, cout, r, xc, 1, patch, dz, cout, 1, beta, part, cout);
          break;
        case ConvAlgorithm::none: break;
      }
      if (p.bias_grad == BiasGradRoute::column_sums) kernels::column_sums(dz, r, cout, db_chunk);
      if (!dx) continue;
      switch (p.input_grad) {
        case ConvAlgorithm::implicit_gemm:
          kernels::conv_forward_implicit(dz, m, tg, packed_kernel_.data(), g.c, dxc, {}, dzpad_[t].data());
          break;
        case ConvAlgorithm::direct_1x1:
          kernels::gemm(r, patch, cout, dz, cout, 1, kernel_t_.data(), patch, 1, 0.0f, dxc, patch);
          break;
        default: {
          // The im2col panel was last read by the dK GEMM above, so dcol reuses it.
          float* dcol = col_[t].data();
          kernels::gemm(r, patch, cout, dz, cout, 1, kernel_t_.data(), patch, 1, 0.0f, dcol, patch);
          kernels::col2im_nhwc(dcol, m, g, dxc, pad_[t].data());
        }
      }
    }
  });
  // Group partials summed in group order: the same bits whatever the thread count. Blocks of
  // contiguous entries with the group loop outside, so the adds vectorise (an entry-at-a-time
  // loop striding across the partials took 2% of a conv3 forward + backward).
  if (p.weight_grad == ConvAlgorithm::none) return;
  const std::int64_t groups = p.groups;
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

// The public factory (cnnx/layers/conv2d.hpp).
std::shared_ptr<Layer> make_conv2d(std::string name, Conv2DConfig config) {
  return std::make_shared<Conv2D>(std::move(name), std::move(config));
}

}  // namespace cnnx
