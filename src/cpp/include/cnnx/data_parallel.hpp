// Data-parallel training step: one process's share of a global batch, with gradients that have
// the same bits on any number of processes up to the micro-batch count.
//
// The global batch of B samples is cut into S micro-batches (fixed by the user, independent of
// the process count P): micro-batch i holds B/S samples, one more for i < B % S. Micro-batch i's
// contribution ("leaf") is its mean gradient scaled by (its samples / B). The step's gradient is
// the sum of the S leaves over one fixed binary tree (ReductionTree): ((l0+l1)+(l2+l3))+... Process
// r of P owns a run of consecutive leaves; the largest subtrees inside that run ("fragments": one
// when S and P are powers of two, a few otherwise) are summed here, and the caller's communicator
// completes the upper levels of the same tree from every process's fragments. Float addition is
// commutative, so every process ends with the same bits, and the bits do not depend on P. The
// core's own gradient of a micro-batch is already the same on any number of threads. Dropout and
// augmentation noise is seeded per (step, micro-batch, node), so it does not depend on which
// process draws it either.
//
// BatchNormalization normalises with the statistics of its micro-batch (as per-process batch
// statistics do in Horovod or DDP); its moving statistics are averaged over the micro-batches
// through the same tree (each leaf: the moving statistics the micro-batch's forward leaves,
// starting from the step's values), so every process keeps the same ones.
//
// The communicator runs on a thread of its own (the core links no MPI library): the step
// announces buckets (slices of the flat buffers) as their sums become final during the last
// micro-batch's backward, the communicator takes them with next_ready(), reduces them into
// fragment 0's buffer and hands each back with mark_reduced(); the step waits for all of them,
// then applies the optimizer. Bucket 0 holds the moving statistics (final after the last
// forward), the others the trainable weights' gradients, the last layers first (final first in
// backward).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "cnnx/export.hpp"
#include "cnnx/model.hpp"

namespace cnnx {

// The fixed summation tree over S leaves and how P processes share it. A node over n > 1 leaves
// splits after its first 2^k leaves, 2^k the largest power of two below n: the balanced tree when
// S is a power of two, and the tree a binary counter folds to (DataParallelStep sums a fragment
// that way). Process r owns leaves [leaf_begin(r), leaf_begin(r + 1)): S / P each, the first
// S % P one more.
class CNNX_API ReductionTree {
 public:
  struct Fragment {
    std::int64_t first, end;  // leaves [first, end)
    int rank;                 // the process that sums it
  };
  static constexpr std::int64_t kMaxLeaves = 65536;
  // Throws ValueError unless 1 <= leaves <= kMaxLeaves and 1 <= processes <= leaves.
  ReductionTree(std::int64_t leaves, int processes);

  std::int64_t leaves() const { return leaves_; }
  int processes() const { return processes_; }
  std::int64_t leaf_begin(int rank) const;
  // Rows [row_begin(r, B), row_begin(r + 1, B)) of a global batch of B are process r's.
  std::int64_t row_begin(int rank, std::int64_t global_batch) const;
  // The largest subtrees inside one process's leaves, left to right (so by rank).
  const std::vector<Fragment>& fragments() const { return fragments_; }
  // The upper levels: for each (a, b) in order, value[a] = value[a] + value[b], where value[i]
  // starts as fragments()[i]'s sum; the root ends in value[0].
  const std::vector<std::pair<int, int>>& combine() const { return combine_; }
  // Every process owns one fragment and the upper levels pair process r with r^1, then r^2, ...
  // (S and P powers of two): recursive halving / doubling computes them.
  bool pairs_by_rank_bits() const { return by_rank_bits_; }

 private:
  int owner(std::int64_t leaf) const;
  int split(std::int64_t first, std::int64_t end);

  std::int64_t leaves_;
  int processes_;
  bool by_rank_bits_ = false;
  std::vector<Fragment> fragments_;
  std::vector<std::pair<int, int>> combine_;
};

// When each bucket of the last step was announced, taken by the communicator and handed back,
// in seconds since the step began; for the overlap measurement (benchmarks/distributed.py).
struct StepTimeline {
  double backward_begin = 0.0, backward_end = 0.0;  // the last micro-batch's backward
  double step_end = 0.0;                            // after the optimizer update
  std::vector<double> ready, taken, reduced;        // per bucket
  // Per bucket: backward had finished every node from this one on when the bucket was
  // announced (0: at the end of backward, -1: before it, the moving statistics).
  std::vector<int> ready_at_node;
};

class CNNX_API DataParallelStep {
 public:
  // model: built and compiled. micro_batches: S >= 1. rank, processes: this process's place,
  // 1 <= processes <= S. bucket_floats: the least floats in a bucket (a
  // bucket closes at a layer boundary once it has that many). seed: the noise seed all
  // processes share. Throws ValueError for any other value.
  DataParallelStep(Model& model, std::int64_t micro_batches, int rank, int processes, std::int64_t bucket_floats,
                   std::uint64_t seed);
  ~DataParallelStep();
  DataParallelStep(const DataParallelStep&) = delete;
  DataParallelStep& operator=(const DataParallelStep&) = delete;

  std::int64_t micro_batches() const { return tree_.leaves(); }
  std::int64_t leaves_per_process() const { return leaves_; }
  int rank() const { return rank_; }
  int processes() const { return tree_.processes(); }
  const ReductionTree& tree() const { return tree_; }
  // This process's fragments' sums (tree().fragments() of this rank, in order), each a flat
  // buffer of gradient floats then moving statistics. The communicator writes the whole tree's
  // sum into fragment 0's buffer (buffer()), which the step then applies.
  int fragment_count() const { return static_cast<int>(fragment_sums_.size()); }
  float* fragment(int i) { return fragment_sums_.at(i).data(); }
  float* buffer() { return fragment_sums_.front().data(); }
  std::int64_t buffer_floats() const { return floats_; }
  int bucket_count() const { return static_cast<int>(bucket_begin_.size()); }
  std::int64_t bucket_begin(int k) const { return bucket_begin_.at(k); }
  std::int64_t bucket_end(int k) const { return bucket_end_.at(k); }

  // One training step on this process's rows of the global batch: `local` holds them (local.n
  // rows, in micro-batch order), global_batch is B. Returns the local sums: loss * samples
  // (StepResult::loss holds the sample-weighted sum, not the mean), correct and rows counts.
  // With several processes, blocks until the communicator has reduced every bucket; a bucket
  // not handed back within timeout_seconds throws RuntimeError (another process stopped).
  // outputs: nullptr, or room for local.n * output_size floats that receive the model's outputs
  // of the local rows (for metrics computed outside the core).
  StepResult run(const Batch& local, std::int64_t global_batch, double timeout_seconds, float* outputs = nullptr);

  // -- the communicator's side (another thread) --
  // The next bucket to reduce, waiting for it; -1 once stop() or abort() was called, -2 after
  // timeout_seconds without one.
  int next_ready(double timeout_seconds);
  void mark_reduced(int bucket);
  // Ends next_ready() waits (fit is over).
  void stop();
  // Makes a waiting or later run() throw RuntimeError with `why` (the communicator failed).
  void abort(const std::string& why);

  const StepTimeline& last_timeline() const { return timeline_; }

 private:
  void add_leaf(std::int64_t j, std::int64_t begin, std::int64_t end);
  void leaf_from_model(float scale, std::int64_t begin, std::int64_t end);
  void announce_through(std::int64_t bucket, int node);
  double clock() const;

  Model& model_;
  ReductionTree tree_;
  std::int64_t first_leaf_ = 0, leaves_ = 0;
  int rank_;
  std::uint64_t seed_;
  std::vector<Param*> grads_;           // trainable params, in buffer order
  std::vector<std::int64_t> grad_at_;   // their offsets in the buffer
  std::vector<Param*> states_;          // moving statistics, after the gradients
  std::vector<std::int64_t> state_at_;  // their offsets
  std::int64_t floats_ = 0, state_begin_ = 0;
  std::vector<std::int64_t> bucket_begin_, bucket_end_;
  std::vector<int> bucket_node_;       // a gradient bucket is final once backward is done with this node
  std::vector<Buffer> levels_;         // levels_[d]: the pending left subtree of height d
  std::vector<Buffer> fragment_sums_;  // one per fragment of this process
  struct LeafPlace {
    int fragment;
    std::int64_t index;  // within the fragment
    bool last;           // of the fragment
  };
  std::vector<LeafPlace> leaf_place_;  // per local leaf
  Buffer leaf_;                        // the current micro-batch's scaled gradient
  std::vector<float> state_start_;     // the moving statistics at the step's start
  std::vector<std::int64_t> rows_;     // index of the local rows when the caller gives none

  std::mutex mutex_;
  std::condition_variable changed_;
  int announced_ = 0, taken_ = 0, reduced_ = 0;
  bool stopped_ = false;
  std::string abort_reason_;
  double step_start_ = 0.0;
  StepTimeline timeline_;
};

}  // namespace cnnx
