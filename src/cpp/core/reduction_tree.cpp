// ReductionTree (cnnx/data_parallel.hpp): the fixed tree the data-parallel step sums its
// micro-batches over, cut into the pieces each process sums alone and the steps that join them.
// Both come from one recursion over the tree, so the fragments and the joining steps cannot
// disagree about its shape.
#include <algorithm>
#include <string>

#include "cnnx/data_parallel.hpp"
#include "cnnx/error.hpp"

namespace cnnx {
namespace {

bool is_power_of_two(std::int64_t v) { return v > 0 && (v & (v - 1)) == 0; }

// The leaves in a node's left child: the largest power of two below n (n >= 2).
std::int64_t left_leaves(std::int64_t n) {
  std::int64_t p = 1;
  while (p * 2 < n) p *= 2;
  return p;
}

}  // namespace

ReductionTree::ReductionTree(std::int64_t leaves, int processes) : leaves_(leaves), processes_(processes) {
  const std::string who = "DataParallel: ";
  // Each process keeps a record per leaf and a buffer per fragment: a bound keeps them small.
  if (leaves < 1 || leaves > kMaxLeaves)
    throw ValueError(who + "expected micro_batches between 1 and " + std::to_string(kMaxLeaves) + ", received " +
                     std::to_string(leaves));
  if (processes < 1 || processes > leaves)
    throw ValueError(who + "expected between 1 and micro_batches=" + std::to_string(leaves) + " processes, received " +
                     std::to_string(processes));
  split(0, leaves);
  by_rank_bits_ = is_power_of_two(leaves) && is_power_of_two(processes);
}

std::int64_t ReductionTree::leaf_begin(int rank) const {
  const std::int64_t q = leaves_ / processes_, extra = leaves_ % processes_;
  return rank * q + std::min<std::int64_t>(rank, extra);
}

std::int64_t ReductionTree::row_begin(int rank, std::int64_t global_batch) const {
  const std::int64_t leaf = leaf_begin(rank), q = global_batch / leaves_, extra = global_batch % leaves_;
  return leaf * q + std::min(leaf, extra);
}

int ReductionTree::owner(std::int64_t leaf) const {
  const std::int64_t q = leaves_ / processes_, extra = leaves_ % processes_;
  const std::int64_t long_part = extra * (q + 1);  // the first `extra` processes own q + 1 leaves
  return static_cast<int>(leaf < long_part ? leaf / (q + 1) : extra + (leaf - long_part) / q);
}

// Adds the fragments of node [first, end) and the steps joining them; returns the slot that ends
// with the node's sum (its leftmost fragment's).
int ReductionTree::split(std::int64_t first, std::int64_t end) {
  if (owner(first) == owner(end - 1)) {
    fragments_.push_back({first, end, owner(first)});
    return static_cast<int>(fragments_.size()) - 1;
  }
  const std::int64_t mid = first + left_leaves(end - first);
  const int left = split(first, mid);
  const int right = split(mid, end);
  combine_.push_back({left, right});
  return left;
}

}  // namespace cnnx
