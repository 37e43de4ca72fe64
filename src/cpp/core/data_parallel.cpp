// The data-parallel step (cnnx/data_parallel.hpp): micro-batches run one after another on this
// process, each with the model's own (thread-count independent) forward and backward; their
// scaled gradients are merged into each fragment's tree as they come, like a binary counter:
// leaf j of a fragment joins the pending subtrees of heights 0, 1, ... while bit d of j is set,
// and the fragment's last leaf also folds in the higher pending ones (ReductionTree's shape). The
// last leaf's merges run bucket by bucket inside its backward, so the communicator can start on
// a bucket while earlier layers are still computing.
#include "cnnx/data_parallel.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <stdexcept>

#include "cnnx/error.hpp"
#include "graph_plan.hpp"

namespace cnnx {
namespace {

// splitmix64 finaliser over the step, micro-batch and node: independent streams per draw site.
std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

}  // namespace

DataParallelStep::DataParallelStep(Model& model, std::int64_t micro_batches, int rank, int processes,
                                   std::int64_t bucket_floats, std::uint64_t seed)
    : model_(model), tree_(micro_batches, processes), rank_(rank), seed_(seed) {
  const std::string who = "DataParallel: ";
  model.require_built("training it across processes");
  if (!model.compiled()) throw ValueError(who + "call compile() before training the model");
  if (rank < 0 || rank >= processes)
    throw ValueError(who + "expected rank in [0, " + std::to_string(processes) + "), received " + std::to_string(rank));
  if (bucket_floats < 1)
    throw ValueError(who + "expected bucket_floats >= 1, received " + std::to_string(bucket_floats));
  first_leaf_ = tree_.leaf_begin(rank);
  leaves_ = tree_.leaf_begin(rank + 1) - first_leaf_;

  // Gradients in backward order (the last nodes first); a layer used at several nodes has its
  // gradient summed only at the end of backward, so its params go last, with node 0.
  const Model& m = model;
  struct Entry {
    Param* param;
    int node;
  };
  std::vector<Entry> entries;
  std::vector<const Layer*> seen;
  for (int i = 1; i < m.node_count(); ++i) {
    Layer* runner = m.runners_[i].get();
    const Layer* user = m.nodes_[i].layer.get();
    const bool first = std::find(seen.begin(), seen.end(), user) == seen.end();
    if (!first) continue;
    seen.push_back(user);
    const bool shared =
        std::any_of(m.shared_uses_.begin(), m.shared_uses_.end(), [&](const auto& s) { return s.second == i; });
    for (auto& p : runner->params()) {
      if (std::find(m.trainable_.begin(), m.trainable_.end(), &p) != m.trainable_.end())
        entries.push_back({&p, shared ? 0 : i});
      else if (!p.trainable && runner->updates_state_in_training())
        states_.push_back(&p);
    }
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.node > b.node; });

  // Buckets close at a layer (node) boundary once they hold bucket_floats.
  std::int64_t at = 0;
  int open_node = -1;
  for (const Entry& e : entries) {
    const bool new_node = e.node != open_node;
    if (bucket_begin_.empty() || (new_node && at - bucket_begin_.back() >= bucket_floats)) {
      if (!bucket_begin_.empty()) bucket_end_.push_back(at);
      bucket_begin_.push_back(at);
      bucket_node_.push_back(e.node);
    }
    bucket_node_.back() = e.node;  // the lowest node so far: the bucket is final once it is done
    open_node = e.node;
    grads_.push_back(e.param);
    grad_at_.push_back(at);
    at = checked_add(at, e.param->grad.size());
  }
  if (!bucket_begin_.empty()) bucket_end_.push_back(at);
  state_begin_ = at;
  for (Param* p : states_) {
    state_at_.push_back(at);
    at = checked_add(at, p->value.size());
  }
  floats_ = at;
  if (!states_.empty()) {  // bucket 0: final right after the last micro-batch's forward
    bucket_begin_.insert(bucket_begin_.begin(), state_begin_);
    bucket_end_.insert(bucket_end_.begin(), floats_);
    bucket_node_.insert(bucket_node_.begin(), -1);
  }

  // A fragment's leaf j (not its last) is stored at the height of j's trailing one bits.
  int heights = 0;
  for (const ReductionTree::Fragment& f : tree_.fragments()) {
    if (f.rank != rank) continue;
    const int index = static_cast<int>(fragment_sums_.size());
    fragment_sums_.emplace_back();
    fragment_sums_.back().resize(std::max<std::int64_t>(floats_, 1));
    for (std::int64_t j = 0; j < f.end - f.first; ++j) {
      const bool last = f.first + j + 1 == f.end;
      leaf_place_.push_back({index, j, last});
      int d = 0;
      while ((j >> d) & 1) ++d;
      if (!last) heights = std::max(heights, d + 1);
    }
  }
  levels_.resize(heights);
  for (auto& level : levels_) level.resize(std::max<std::int64_t>(floats_, 1));
  leaf_.resize(std::max<std::int64_t>(floats_, 1));
  state_start_.resize(floats_ - state_begin_);
}

DataParallelStep::~DataParallelStep() { model_.after_backward_step_ = nullptr; }

double DataParallelStep::clock() const {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count() - step_start_;
}

// leaf_[begin, end) = scale * (the model's gradients, with their penalties) or scale * (the
// moving statistics the forward left) over the params in that range.
void DataParallelStep::leaf_from_model(float scale, std::int64_t begin, std::int64_t end) {
  float* leaf = leaf_.data();
  for (std::size_t k = 0; k < grads_.size(); ++k) {
    if (grad_at_[k] < begin || grad_at_[k] >= end) continue;
    Param& p = *grads_[k];
    Model::add_regularization_gradient(p);
    const float* g = p.grad.data();
    float* out = leaf + grad_at_[k];
    for (std::int64_t i = 0; i < p.grad.size(); ++i) out[i] = scale * g[i];
  }
  for (std::size_t k = 0; k < states_.size(); ++k) {
    if (state_at_[k] < begin || state_at_[k] >= end) continue;
    const float* v = states_[k]->value.data();
    float* out = leaf + state_at_[k];
    for (std::int64_t i = 0; i < states_[k]->value.size(); ++i) out[i] = scale * v[i];
  }
}

// This process's leaf j joins its fragment's tree over [begin, end): as the fragment's leaf t, it
// is the right sibling of the pending subtree of height d for each low set bit d of t; the
// fragment's last leaf is then the right sibling of every higher pending subtree too.
void DataParallelStep::add_leaf(std::int64_t j, std::int64_t begin, std::int64_t end) {
  const LeafPlace& place = leaf_place_[j];
  const std::int64_t t = place.index;
  float* v = leaf_.data();
  int d = 0;
  for (; (t >> d) & 1; ++d) {
    const float* left = levels_[d].data();
    for (std::int64_t i = begin; i < end; ++i) v[i] = left[i] + v[i];
  }
  if (!place.last) {
    std::memcpy(levels_[d].data() + begin, v + begin, sizeof(float) * (end - begin));
    return;
  }
  for (++d; (t >> d) != 0; ++d) {
    if (!((t >> d) & 1)) continue;
    const float* left = levels_[d].data();
    for (std::int64_t i = begin; i < end; ++i) v[i] = left[i] + v[i];
  }
  std::memcpy(fragment_sums_[place.fragment].data() + begin, v + begin, sizeof(float) * (end - begin));
}

void DataParallelStep::announce_through(std::int64_t bucket, int node) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (; announced_ <= bucket; ++announced_) {
    timeline_.ready[announced_] = clock();
    timeline_.ready_at_node[announced_] = node;
  }
  changed_.notify_all();
}

StepResult DataParallelStep::run(const Batch& local, std::int64_t global_batch, double timeout_seconds,
                                 float* outputs) {
  const std::string who = "DataParallel: ";
  if (global_batch < local.n || local.n < 0)
    throw ValueError(who + "expected a global batch of at least the local " + std::to_string(local.n) +
                     " samples, received " + std::to_string(global_batch));
  if (global_batch <= 0) throw ValueError(who + "expected a global batch of at least 1 sample, received 0");
  const int buckets = bucket_count();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!abort_reason_.empty()) throw std::runtime_error(abort_reason_);
    step_start_ = 0.0;
    step_start_ = clock();
    announced_ = taken_ = reduced_ = 0;
    timeline_ = StepTimeline{};
    timeline_.ready.assign(buckets, 0.0);
    timeline_.taken.assign(buckets, 0.0);
    timeline_.reduced.assign(buckets, 0.0);
    timeline_.ready_at_node.assign(buckets, 0);
  }
  const std::int64_t q = local.n / leaves_, extra = local.n % leaves_;
  const std::int64_t* index = local.index;
  if (!index) {
    rows_.resize(local.n);
    for (std::int64_t i = 0; i < local.n; ++i) rows_[i] = i;
    index = rows_.data();
  }
  if (local.n > 0) model_.reserve(q + (extra > 0));
  for (std::int64_t k = 0; k < static_cast<std::int64_t>(states_.size()); ++k)
    std::memcpy(state_start_.data() + (state_at_[k] - state_begin_), states_[k]->value.data(),
                sizeof(float) * states_[k]->value.size());
  const PlannedNode& out = model_.plan_->nodes[model_.output_];
  const std::uint64_t step = static_cast<std::uint64_t>(model_.optimizer_->iterations);
  const int first_grad_bucket = states_.empty() ? 0 : 1;

  StepResult total;
  std::int64_t offset = 0;
  for (std::int64_t j = 0; j < leaves_; ++j) {
    const std::int64_t m = q + (j < extra), leaf = first_leaf_ + j;
    const bool last = j + 1 == leaves_;
    const float scale = static_cast<float>(static_cast<double>(m) / static_cast<double>(global_batch));
    for (std::int64_t k = 0; k < static_cast<std::int64_t>(states_.size()); ++k)
      std::memcpy(states_[k]->value.data(), state_start_.data() + (state_at_[k] - state_begin_),
                  sizeof(float) * states_[k]->value.size());
    if (m == 0) {  // fewer samples than micro-batches: an empty leaf adds zeros
      std::fill(leaf_.data(), leaf_.data() + floats_, 0.0f);
      add_leaf(j, 0, floats_);
      if (last) announce_through(buckets - 1, 0);
      continue;
    }
    Batch sub = local;
    sub.index = index + offset;
    sub.n = m;
    model_.check_batch(sub);
    for (int i = 1; i < model_.node_count(); ++i)
      model_.runners_[i]->reseed_noise(mix(mix(mix(seed_, step), static_cast<std::uint64_t>(leaf)), i));
    const float* x = model_.gather(sub);
    model_.forward(x, m, true);
    StepResult r = model_.score(sub, out.runs_backward ? model_.gradients_[out.gradient_slot].data() : nullptr);
    total.loss += r.loss * static_cast<double>(m);
    total.correct += r.correct;
    total.rows += r.rows;
    total.top_k_correct += r.top_k_correct;
    if (outputs) {
      const std::int64_t os = model_.output_size();
      std::memcpy(outputs + offset * os, model_.last_step_output(), sizeof(float) * m * os);
    }
    offset += m;
    leaf_from_model(scale, state_begin_, floats_);
    add_leaf(j, state_begin_, floats_);
    if (!last) {
      model_.backward(x, m);
      leaf_from_model(scale, 0, state_begin_);
      add_leaf(j, 0, state_begin_);
      continue;
    }
    if (!states_.empty()) announce_through(0, -1);
    int next = first_grad_bucket;  // the first bucket not yet announced
    model_.after_backward_step_ = [&](int s) {
      while (next < buckets && bucket_node_[next] >= s) {
        leaf_from_model(scale, bucket_begin_[next], bucket_end_[next]);
        add_leaf(j, bucket_begin_[next], bucket_end_[next]);
        announce_through(next++, s);
      }
    };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      timeline_.backward_begin = clock();
    }
    try {
      model_.backward(x, m);
    } catch (...) {
      model_.after_backward_step_ = nullptr;
      throw;
    }
    model_.after_backward_step_ = nullptr;
    timeline_.backward_end = clock();
  }
  total.loss += model_.apply_regularization(false) * static_cast<double>(local.n);

  if (tree_.processes() > 1) {  // the communicator reduces the buckets in place
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
    while (reduced_ < buckets && abort_reason_.empty()) {
      if (changed_.wait_until(lock, deadline) == std::cv_status::timeout && reduced_ < buckets)
        throw std::runtime_error(who + "the gradients were not summed across the " + std::to_string(tree_.processes()) +
                                 " processes within " + std::to_string(timeout_seconds) + " s (bucket " +
                                 std::to_string(reduced_) + " of " + std::to_string(buckets) +
                                 "); another process stopped or is stuck");
    }
    if (!abort_reason_.empty()) throw std::runtime_error(abort_reason_);
  }
  const float* sum = buffer();
  for (std::size_t k = 0; k < grads_.size(); ++k)
    std::memcpy(grads_[k]->grad.data(), sum + grad_at_[k], sizeof(float) * grads_[k]->grad.size());
  for (std::size_t k = 0; k < states_.size(); ++k)
    std::memcpy(states_[k]->value.data(), sum + state_at_[k], sizeof(float) * states_[k]->value.size());
  model_.optimizer_->apply(model_.trainable_);
  timeline_.step_end = clock();
  return total;
}

int DataParallelStep::next_ready(double timeout_seconds) {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (taken_ >= announced_ && !stopped_ && abort_reason_.empty())
    if (changed_.wait_until(lock, deadline) == std::cv_status::timeout) return -2;
  if (stopped_ || !abort_reason_.empty()) return -1;
  timeline_.taken[taken_] = clock();
  return taken_++;
}

void DataParallelStep::mark_reduced(int bucket) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (bucket != reduced_ || bucket >= taken_)
    throw ValueError("DataParallel: expected bucket " + std::to_string(reduced_) + " back, received " +
                     std::to_string(bucket));
  timeline_.reduced[reduced_++] = clock();
  changed_.notify_all();
}

void DataParallelStep::stop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopped_ = true;
  changed_.notify_all();
}

void DataParallelStep::abort(const std::string& why) {
  std::lock_guard<std::mutex> lock(mutex_);
  abort_reason_ = why.empty() ? "DataParallel: aborted" : why;
  changed_.notify_all();
}

}  // namespace cnnx
