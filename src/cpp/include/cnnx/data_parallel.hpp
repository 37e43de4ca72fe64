// Data-parallel training step: one process's share of a global batch, with gradients that have
// the same bits on any power-of-two number of processes.
//
// The global batch of B samples is cut into S micro-batches (S a power of two, fixed by the user,
// independent of the process count P): micro-batch i holds B/S samples, one more for i < B % S.
// Micro-batch i's contribution ("leaf") is its mean gradient scaled by (its samples / B). The step's
// gradient is the sum of the S leaves over one fixed balanced binary tree: ((l0+l1)+(l2+l3))+...
// Process r of P owns the S/P consecutive leaves [r S/P, (r+1) S/P), a whole subtree, which this
// class sums locally; the caller's communicator completes the tree across processes, pairing
// process r with r^1, then r^2, ... (recursive halving / doubling), the upper levels of the same
// tree. Float addition is commutative, so every process ends with the same bits, and the bits do
// not depend on P. The core's own gradient of a micro-batch is already the same on any number of
// threads. Dropout and augmentation noise is seeded per (step, micro-batch, node), so it does
// not depend on which process draws it either.
//
// BatchNormalization normalises with the statistics of its micro-batch (as per-process batch
// statistics do in Horovod or DDP); its moving statistics are averaged over the micro-batches
// through the same tree (each leaf: the moving statistics the micro-batch's forward leaves,
// starting from the step's values), so every process keeps the same ones.
//
// The communicator runs on a thread of its own (the core links no MPI library): the step
// announces buckets (slices of the flat buffer) as their sums become final during the last
// micro-batch's backward, the communicator takes them with next_ready(), reduces them in place
// and hands each back with mark_reduced(); the step waits for all of them, then applies the
// optimizer. Bucket 0 holds the moving statistics (final after the last forward), the others
// the trainable weights' gradients, the last layers first (final first in backward).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "cnnx/export.hpp"
#include "cnnx/model.hpp"

namespace cnnx {

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
  // model: built and compiled. micro_batches: S, a power of two. rank, processes: this process's
  // place; processes a power of two dividing S. bucket_floats: the least floats in a bucket (a
  // bucket closes at a layer boundary once it has that many). seed: the noise seed all
  // processes share. Throws ValueError for any other value.
  DataParallelStep(Model& model, std::int64_t micro_batches, int rank, int processes, std::int64_t bucket_floats,
                   std::uint64_t seed);
  ~DataParallelStep();
  DataParallelStep(const DataParallelStep&) = delete;
  DataParallelStep& operator=(const DataParallelStep&) = delete;

  std::int64_t micro_batches() const { return micro_batches_; }
  std::int64_t leaves_per_process() const { return leaves_; }
  int rank() const { return rank_; }
  int processes() const { return processes_; }
  // The flat buffer the communicator reduces in place: gradient floats then moving statistics.
  float* buffer() { return levels_.back().data(); }
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
  void add_leaf(std::int64_t leaf, std::int64_t begin, std::int64_t end);
  void leaf_from_model(float scale, std::int64_t begin, std::int64_t end);
  void announce_through(std::int64_t bucket, int node);
  double clock() const;

  Model& model_;
  std::int64_t micro_batches_, leaves_;
  int rank_, processes_;
  std::uint64_t seed_;
  std::vector<Param*> grads_;           // trainable params, in buffer order
  std::vector<std::int64_t> grad_at_;   // their offsets in the buffer
  std::vector<Param*> states_;          // moving statistics, after the gradients
  std::vector<std::int64_t> state_at_;  // their offsets
  std::int64_t floats_ = 0, state_begin_ = 0;
  std::vector<std::int64_t> bucket_begin_, bucket_end_;
  std::vector<int> bucket_node_;    // a gradient bucket is final once backward is done with this node
  std::vector<Buffer> levels_;      // levels_[d]: the pending left subtree of height d; back(): the sum
  Buffer leaf_;                     // the current micro-batch's scaled gradient
  std::vector<float> state_start_;  // the moving statistics at the step's start
  std::vector<std::int64_t> rows_;  // index of the local rows when the caller gives none

  std::mutex mutex_;
  std::condition_variable changed_;
  int announced_ = 0, taken_ = 0, reduced_ = 0;
  bool stopped_ = false;
  std::string abort_reason_;
  double step_start_ = 0.0;
  StepTimeline timeline_;
};

}  // namespace cnnx
