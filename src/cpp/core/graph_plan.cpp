#include "graph_plan.hpp"

#include <algorithm>

#include "core/layer_access.hpp"
#include "layers/conv2d.hpp"
#include "layers/max_pooling2d.hpp"

namespace cnnx {
namespace {

// The one consumer of node i, or -1 when it has none or several (or is the model output).
int sole_consumer(const GraphPlan& plan, int i) {
  const auto& c = plan.nodes[i].consumers;
  return c.size() == 1 && i != plan.output ? c[0] : -1;
}

// Rule: conv (ReLU or linear) -> max-pool, the conv's output read by the pool alone.
void fuse_conv_pool(GraphPlan& plan, const std::vector<std::shared_ptr<Layer>>& runners) {
  for (int i = 1; i < static_cast<int>(plan.nodes.size()); ++i) {
    const auto* conv = dynamic_cast<const Conv2D*>(runners[i].get());
    if (!conv || (conv->activation() != Activation::relu && conv->activation() != Activation::linear)) continue;
    const int p = sole_consumer(plan, i);
    if (p < 0 || !dynamic_cast<const MaxPooling2D*>(runners[p].get())) continue;
    plan.nodes[i].fused_pool = p;
    plan.nodes[p].fused_conv = i;
  }
}

// Rule: ReLU node -> max-pool (not already fused above): the pool applies the derivative.
void fuse_relu_into_pool(GraphPlan& plan, const std::vector<std::shared_ptr<Layer>>& runners) {
  for (int i = 1; i < static_cast<int>(plan.nodes.size()); ++i) {
    if (plan.nodes[i].fused_pool >= 0 || runners[i]->activation() != Activation::relu) continue;
    const int p = sole_consumer(plan, i);
    if (p < 0 || !dynamic_cast<const MaxPooling2D*>(runners[p].get())) continue;
    plan.nodes[p].relu_in_pool = true;
    plan.nodes[i].grad_is_preactivation = true;
  }
}

// Greedy slot assignment: the smallest free slot that fits, else the largest free one (grown),
// else a new slot.
class SlotPool {
 public:
  explicit SlotPool(std::vector<std::int64_t>& sizes) : sizes_(sizes) {}
  int take(std::int64_t size) {
    int best = -1;
    for (int s : free_)
      if (sizes_[s] >= size && (best < 0 || sizes_[s] < sizes_[best])) best = s;
    if (best < 0)
      for (int s : free_)
        if (best < 0 || sizes_[s] > sizes_[best]) best = s;
    if (best < 0) {
      sizes_.push_back(0);
      best = static_cast<int>(sizes_.size()) - 1;
    } else {
      free_.erase(std::find(free_.begin(), free_.end(), best));
    }
    sizes_[best] = std::max(sizes_[best], size);
    return best;
  }
  void give_back(int slot) { free_.push_back(slot); }

 private:
  std::vector<std::int64_t>& sizes_;
  std::vector<int> free_;
};

// The node whose forward step writes node i's output (a fused pool is written by its conv).
int producing_step(const GraphPlan& plan, int i) {
  return plan.nodes[i].fused_conv >= 0 ? plan.nodes[i].fused_conv : i;
}

// Training keeps a tensor until the end of backward when backward reads it: as the input of a
// consumer that runs backward and reads its inputs, or as the output of a producer that runs
// backward and reads its output (a fused conv reads its pool's output and its own input). The
// others are given back after their last forward use, like in inference.
void plan_training_slots(GraphPlan& plan, const std::vector<std::shared_ptr<Layer>>& runners) {
  const int count = static_cast<int>(plan.nodes.size());
  std::vector<bool> keep(count, false);
  keep[plan.output] = true;  // the loss reads it after the last step
  for (int i = 1; i < count; ++i) {
    const auto& node = plan.nodes[i];
    if (!node.runs_backward) continue;
    if (node.fused_conv >= 0) {
      keep[i] = true;  // the pooled output gives the ReLU mask
      continue;
    }
    if (node.fused_pool >= 0 || runners[i]->backward_reads_inputs())
      for (int u : node.inputs) keep[u] = true;
    if (node.fused_pool < 0 && runners[i]->backward_reads_output()) keep[i] = true;
  }
  std::vector<int> last_use(count, -1);
  for (int i = 1; i < count; ++i)
    for (int u : plan.nodes[i].inputs) last_use[u] = std::max(last_use[u], producing_step(plan, i));
  SlotPool pool(plan.training_slot_size);
  for (int s = 1; s < count; ++s) {
    auto& node = plan.nodes[s];
    if (node.fused_conv >= 0) continue;  // written at its conv's step
    const int target = node.fused_pool >= 0 ? node.fused_pool : s;
    plan.nodes[target].training_slot = pool.take(plan.nodes[target].size);
    for (int u : node.inputs)
      if (u > 0 && !keep[u] && last_use[u] == s && plan.nodes[u].training_slot >= 0) {
        pool.give_back(plan.nodes[u].training_slot);
        last_use[u] = -1;
      }
  }
}

void plan_inference_slots(GraphPlan& plan) {
  const int count = static_cast<int>(plan.nodes.size());
  std::vector<int> last_use(count, -1);
  for (int i = 1; i < count; ++i)
    for (int u : plan.nodes[i].inputs) last_use[u] = std::max(last_use[u], producing_step(plan, i));
  last_use[plan.output] = count;  // read after the last step
  SlotPool pool(plan.inference_slot_size);
  for (int s = 1; s < count; ++s) {
    auto& node = plan.nodes[s];
    if (node.fused_conv >= 0) continue;  // written at its conv's step
    const int target = node.fused_pool >= 0 ? node.fused_pool : s;
    plan.nodes[target].inference_slot = pool.take(plan.nodes[target].size);
    for (int u : node.inputs)
      if (u > 0 && last_use[u] == s && plan.nodes[u].inference_slot >= 0) {
        pool.give_back(plan.nodes[u].inference_slot);
        last_use[u] = -1;  // an input read twice by this node is given back once
      }
  }
}

void mark_backward(GraphPlan& plan, const std::vector<std::shared_ptr<Layer>>& runners) {
  for (std::size_t i = 1; i < plan.nodes.size(); ++i) {
    auto& node = plan.nodes[i];
    node.runs_backward = runners[i]->computes_weight_grads();
    for (int u : node.inputs) node.runs_backward = node.runs_backward || plan.nodes[u].runs_backward;
  }
}

void plan_gradient_slots(GraphPlan& plan) {
  const int count = static_cast<int>(plan.nodes.size());
  SlotPool pool(plan.gradient_slot_size);
  if (plan.nodes[plan.output].runs_backward)
    plan.nodes[plan.output].gradient_slot = pool.take(plan.nodes[plan.output].size);
  for (int s = count - 1; s >= 1; --s) {
    auto& step = plan.nodes[s];
    if (step.fused_pool >= 0 || !step.runs_backward) continue;               // a fused conv runs at its pool's step
    auto& node = step.fused_conv >= 0 ? plan.nodes[step.fused_conv] : step;  // whose inputs get gradients
    node.dx_route.assign(node.inputs.size(), GraphPlan::kNoGradient);
    int scratch = 0;
    for (std::size_t k = 0; k < node.inputs.size(); ++k) {
      auto& in = plan.nodes[node.inputs[k]];
      if (node.inputs[k] == 0 || !in.runs_backward) continue;
      if (in.gradient_slot < 0) {
        in.gradient_slot = pool.take(in.size);
        node.dx_route[k] = GraphPlan::kDirect;
      } else {
        node.dx_route[k] = scratch++;
        plan.scratch_size = std::max(plan.scratch_size, in.size);
      }
    }
    plan.scratch_count = std::max(plan.scratch_count, scratch);
    pool.give_back(step.gradient_slot);
  }
}

}  // namespace

GraphPlan plan_graph(const std::vector<std::vector<int>>& inputs, const std::vector<std::shared_ptr<Layer>>& runners,
                     std::int64_t input_size, int output, Activation fusable) {
  GraphPlan plan;
  const int count = static_cast<int>(inputs.size());
  plan.output = output;
  plan.nodes.resize(count);
  plan.nodes[0].size = input_size;
  for (int i = 1; i < count; ++i) {
    plan.nodes[i].inputs = inputs[i];
    plan.nodes[i].size = shape_size(runners[i]->output_shape());
    for (int u : inputs[i]) plan.nodes[u].consumers.push_back(i);
  }
  fuse_conv_pool(plan, runners);
  fuse_relu_into_pool(plan, runners);
  plan.fuse_output = fusable != Activation::linear && runners[output]->activation() == fusable;
  if (plan.fuse_output) plan.nodes[output].grad_is_preactivation = true;
  mark_backward(plan, runners);
  plan_training_slots(plan, runners);
  plan_inference_slots(plan);
  plan_gradient_slots(plan);
  return plan;
}

void apply_fusions(const GraphPlan& plan, const std::vector<std::shared_ptr<Layer>>& runners) {
  for (std::size_t i = 1; i < plan.nodes.size(); ++i) {
    const auto& node = plan.nodes[i];
    Layer* layer = runners[i].get();
    detail::LayerAccess::set_output_grad_is_preactivation(*layer, node.grad_is_preactivation);
    if (auto* pool = dynamic_cast<MaxPooling2D*>(layer)) pool->set_fuse_relu_backward(node.relu_in_pool);
    if (auto* conv = dynamic_cast<Conv2D*>(layer)) {
      const auto* pool = node.fused_pool >= 0 ? static_cast<MaxPooling2D*>(runners[node.fused_pool].get()) : nullptr;
      conv->set_fused_pool(pool ? &pool->geometry() : nullptr);
    }
  }
}

}  // namespace cnnx
