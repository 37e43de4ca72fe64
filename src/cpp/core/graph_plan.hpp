// Planning a model graph: which nodes run fused, which run backward and where each input
// gradient goes, and which buffer holds each activation and gradient. The planner works on the
// nodes' clones (Model's runners) once per build / compile; the step loops only read the plan.
//
// Fusion rules, each applied wherever it matches (a chain or inside a residual block alike):
// - conv + max-pool: a Conv2D (ReLU or linear) whose only consumer is a MaxPooling2D runs both
//   per chunk of images (Conv2D::forward_pooled); the conv's output is never stored.
// - ReLU in the pool's scatter: a ReLU-activated node whose only consumer is a MaxPooling2D
//   gets dL/dz from the pool's backward, which applies the derivative while scattering.
// - softmax or sigmoid + cross-entropy: the output node gets dL/dz = p - y from the loss.
// A rule needs a single consumer because a second consumer's gradient would bypass it.
//
// Buffers, in floats per sample (the model multiplies by its batch size):
// - training keeps every activation backward reads (Layer::backward_reads_inputs / _output)
//   to the end of the step; the others are reused once their last forward consumer has run;
// - inference reuses a slot once the last consumer of its tensor has run (greedy best fit in
//   node order, the output allocated before the inputs are released, so a node never writes
//   over its own input);
// - gradients likewise in reverse node order: a tensor's gradient slot lives from its last
//   consumer's backward to its own. The first consumer (in backward order) writes the input
//   gradient straight into the slot; others write into a scratch buffer then added, in node
//   order, so sums have the same bits on every run.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cnnx/activations.hpp"
#include "cnnx/layer.hpp"

namespace cnnx {

struct PlannedNode {
  std::vector<int> inputs;
  std::vector<int> consumers;  // one entry per input slot of a later node that reads this output
  std::int64_t size = 0;       // floats per sample of the output
  int fused_pool = -1;         // conv: the pool node it computes (this output is never stored)
  int fused_conv = -1;         // pool: the conv node that computes it
  bool relu_in_pool = false;   // pool: applies its producer's ReLU derivative in its scatter
  bool grad_is_preactivation = false;
  bool runs_backward = false;  // a node at or before it computes weight gradients
  // Per input slot: kNoGradient, kDirect (written straight into the input's gradient slot), or
  // k >= 0: written into scratch k, then added to the input's gradient.
  std::vector<int> dx_route;
  int training_slot = -1;
  int inference_slot = -1;
  int gradient_slot = -1;
};

struct GraphPlan {
  static constexpr int kNoGradient = -2, kDirect = -1;
  std::vector<PlannedNode> nodes;
  int output = -1;
  bool fuse_output = false;
  std::vector<std::int64_t> training_slot_size, inference_slot_size, gradient_slot_size;
  int scratch_count = 0;
  std::int64_t scratch_size = 0;
};

// inputs[i]: the input nodes of node i (node 0 is the model input); runners[i]: the layer
// running at node i (nullptr for node 0), built. fusable: the loss's fusable activation, or
// linear when no loss is set.
GraphPlan plan_graph(const std::vector<std::vector<int>>& inputs, const std::vector<std::shared_ptr<Layer>>& runners,
                     std::int64_t input_size, int output, Activation fusable);

// Configures the runners as the plan says (fused pools, gradients handed over as dL/dz).
void apply_fusions(const GraphPlan& plan, const std::vector<std::shared_ptr<Layer>>& runners);

}  // namespace cnnx
