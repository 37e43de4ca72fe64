// cnnx::DataParallelStep (cnnx/data_parallel.hpp) with the processes as threads: P models step on
// their shares of each global batch while a communicator thread completes the tree across them,
// bucket by bucket, as python/cnnx/distribute.py does over MPI. The weights must have the same
// bits for every P up to the micro-batch count (powers of two or not), and bad arguments give
// ValueError. Under TSan (.ci/native) this also
// checks the step's handshake with the communicator.
#include <gtest/gtest.h>

#include <cnnx/cnnx.hpp>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

namespace {

constexpr std::int64_t kSamples = 52, kBatch = 13, kMicroBatches = 4;

struct Data {
  std::vector<float> x, y;
};

Data make_data() {
  Data d{std::vector<float>(kSamples * 4), std::vector<float>(kSamples * 3, 0.0f)};
  cnnx::Rng rng(9);
  for (std::int64_t i = 0; i < kSamples; ++i) {
    const std::int64_t c = static_cast<std::int64_t>(rng.below(3));
    for (std::int64_t j = 0; j < 4; ++j) d.x[i * 4 + j] = float(rng.normal() * 0.5 + (j % 3 == c ? 1.5 : 0.0));
    d.y[i * 3 + c] = 1.0f;
  }
  return d;
}

std::unique_ptr<cnnx::Sequential> make_model() {
  cnnx::set_random_seed(4);
  auto model = std::make_unique<cnnx::Sequential>();
  cnnx::DenseConfig hidden;
  hidden.units = 12;
  hidden.activation = "relu";
  model->add(cnnx::make_dense("hidden", hidden));
  cnnx::DenseConfig out;
  out.units = 3;
  out.activation = "softmax";
  model->add(cnnx::make_dense("out", out));
  model->build({4});
  model->compile(cnnx::make_crossentropy(false, false), std::make_shared<cnnx::Adam>(0.02));
  return model;
}

std::vector<float> weights(const cnnx::Model& model) {
  std::vector<float> w;
  for (const auto& layer : model.layers())
    for (const auto& p : layer->params()) w.insert(w.end(), p.value.data(), p.value.data() + p.value.size());
  return w;
}

// The communicator's work for bucket k, as cnnx.distribute does it: every process's fragment
// sums joined by the tree's combine steps, the result written to every process's buffer.
void reduce_bucket(std::vector<std::unique_ptr<cnnx::DataParallelStep>>& steps, int k) {
  const cnnx::ReductionTree& tree = steps[0]->tree();
  const std::int64_t b = steps[0]->bucket_begin(k), e = steps[0]->bucket_end(k);
  std::vector<std::vector<float>> value;
  std::vector<int> taken(steps.size(), 0);
  for (const auto& f : tree.fragments()) {
    const float* sum = steps[f.rank]->fragment(taken[f.rank]++);
    value.emplace_back(sum + b, sum + e);
  }
  for (const auto& [left, right] : tree.combine())
    for (std::int64_t i = 0; i < e - b; ++i) value[left][i] = value[left][i] + value[right][i];
  for (auto& s : steps) std::memcpy(s->buffer() + b, value[0].data(), sizeof(float) * (e - b));
}

// Trains `processes` models on `micro_batches` micro-batches for every global batch of the data
// (4 steps) and returns rank 0's weights; checks that every rank ends with the same bits.
std::vector<float> train(int processes, std::int64_t micro_batches = kMicroBatches) {
  const Data data = make_data();
  std::vector<std::unique_ptr<cnnx::Sequential>> models;
  std::vector<std::unique_ptr<cnnx::DataParallelStep>> steps;
  for (int r = 0; r < processes; ++r) {
    models.push_back(make_model());
    steps.push_back(std::make_unique<cnnx::DataParallelStep>(*models.back(), micro_batches, r, processes, 40, 3));
  }
  std::vector<std::int64_t> order(kSamples);
  for (std::int64_t i = 0; i < kSamples; ++i) order[i] = (i * 17) % kSamples;  // a fixed shuffle
  for (std::int64_t start = 0; start < kSamples; start += kBatch) {
    std::vector<std::thread> ranks;
    for (int r = 0; r < processes; ++r) {
      ranks.emplace_back([&, r] {
        const cnnx::ReductionTree& tree = steps[r]->tree();
        const std::int64_t b = tree.row_begin(r, kBatch), e = tree.row_begin(r + 1, kBatch);
        cnnx::Batch batch;
        batch.x = data.x.data();
        batch.y = data.y.data();
        batch.count = kSamples;
        batch.target_dim = 3;
        batch.index = order.data() + start + b;
        batch.n = e - b;
        steps[r]->run(batch, kBatch, 30.0);
      });
    }
    if (processes > 1) {  // the communicator: bucket by bucket, the upper levels of the tree
      for (int k = 0; k < steps[0]->bucket_count(); ++k) {
        for (auto& s : steps) EXPECT_EQ(s->next_ready(30.0), k);
        reduce_bucket(steps, k);
        for (auto& s : steps) s->mark_reduced(k);
      }
    }
    for (auto& t : ranks) t.join();
  }
  const std::vector<float> w0 = weights(*models[0]);
  for (int r = 1; r < processes; ++r) {
    const std::vector<float> w = weights(*models[r]);
    EXPECT_EQ(std::memcmp(w.data(), w0.data(), sizeof(float) * w0.size()), 0) << "rank " << r;
  }
  return w0;
}

TEST(DataParallelStep, SameBitsOnOneTwoFourProcesses) {
  const std::vector<float> one = train(1), two = train(2), four = train(4);
  ASSERT_EQ(one.size(), two.size());
  EXPECT_EQ(std::memcmp(one.data(), two.data(), sizeof(float) * one.size()), 0);
  EXPECT_EQ(std::memcmp(one.data(), four.data(), sizeof(float) * one.size()), 0);
  EXPECT_NE(one, weights(*make_model()));  // it trained
}

TEST(DataParallelStep, SameBitsOnProcessCountsThatAreNotPowersOfTwo) {
  const std::vector<float> four_one = train(1), four_three = train(3);
  EXPECT_EQ(std::memcmp(four_one.data(), four_three.data(), sizeof(float) * four_one.size()), 0);
  const std::vector<float> six_one = train(1, 6);
  EXPECT_NE(six_one, four_one);  // another tree
  for (int processes : {2, 3, 4, 5, 6}) {
    const std::vector<float> w = train(processes, 6);
    EXPECT_EQ(std::memcmp(six_one.data(), w.data(), sizeof(float) * w.size()), 0) << processes << " processes";
  }
}

TEST(ReductionTree, FragmentsAndCombineStepsFollowTheTree) {
  using Pairs = std::vector<std::pair<int, int>>;
  const cnnx::ReductionTree aligned(8, 4);  // one subtree of 2 leaves each, joined pairwise
  ASSERT_EQ(aligned.fragments().size(), 4u);
  EXPECT_EQ(aligned.fragments()[2].first, 4);
  EXPECT_EQ(aligned.fragments()[2].end, 6);
  EXPECT_EQ(aligned.combine(), (Pairs{{0, 1}, {2, 3}, {0, 2}}));
  EXPECT_TRUE(aligned.pairs_by_rank_bits());
  // 6 leaves: ((l0+l1)+(l2+l3))+(l4+l5); 2 processes own [0,3) and [3,6), cutting (l2+l3).
  const cnnx::ReductionTree six(6, 2);
  ASSERT_EQ(six.fragments().size(), 4u);
  const std::int64_t bounds[4][3] = {{0, 2, 0}, {2, 3, 0}, {3, 4, 1}, {4, 6, 1}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(six.fragments()[i].first, bounds[i][0]);
    EXPECT_EQ(six.fragments()[i].end, bounds[i][1]);
    EXPECT_EQ(six.fragments()[i].rank, bounds[i][2]);
  }
  EXPECT_EQ(six.combine(), (Pairs{{1, 2}, {0, 1}, {0, 3}}));
  EXPECT_FALSE(six.pairs_by_rank_bits());
  const cnnx::ReductionTree uneven(4, 3);  // leaves [0,2), [2,3), [3,4)
  EXPECT_EQ(uneven.leaf_begin(1), 2);
  EXPECT_EQ(uneven.leaf_begin(3), 4);
  EXPECT_EQ(uneven.row_begin(1, 13), 7);  // micro-batches of 4, 3, 3, 3 rows
  EXPECT_EQ(uneven.combine(), (Pairs{{1, 2}, {0, 1}}));
  EXPECT_EQ(cnnx::ReductionTree(7, 1).fragments().size(), 1u);
  EXPECT_THROW(cnnx::ReductionTree(0, 1), cnnx::ValueError);
  EXPECT_THROW(cnnx::ReductionTree(cnnx::ReductionTree::kMaxLeaves + 1, 1), cnnx::ValueError);
  EXPECT_THROW(cnnx::ReductionTree(4, 5), cnnx::ValueError);  // more processes than micro-batches
  EXPECT_THROW(cnnx::ReductionTree(4, 0), cnnx::ValueError);
}

TEST(DataParallelStep, BucketsFollowBackwardOrder) {
  auto model = make_model();
  cnnx::DataParallelStep step(*model, kMicroBatches, 0, 1, 1, 0);
  ASSERT_EQ(step.bucket_count(), 2);  // one bucket per layer: the output layer's first
  EXPECT_EQ(step.bucket_begin(0), 0);
  EXPECT_EQ(step.bucket_end(0), 12 * 3 + 3);
  EXPECT_EQ(step.bucket_end(1), step.buffer_floats());
}

TEST(DataParallelStep, RefusesBadArguments) {
  auto model = make_model();
  EXPECT_THROW(cnnx::DataParallelStep(*model, 0, 0, 1, 64, 0), cnnx::ValueError);  // no micro-batches
  EXPECT_THROW(cnnx::DataParallelStep(*model, 2, 0, 4, 64, 0), cnnx::ValueError);  // P > S
  EXPECT_THROW(cnnx::DataParallelStep(*model, 4, 4, 4, 64, 0), cnnx::ValueError);  // rank out of range
  EXPECT_THROW(cnnx::DataParallelStep(*model, 4, 0, 1, 0, 0), cnnx::ValueError);   // empty buckets
  cnnx::Sequential uncompiled;
  EXPECT_THROW(cnnx::DataParallelStep(uncompiled, 4, 0, 1, 64, 0), cnnx::ValueError);
}

TEST(DataParallelStep, AbortedCommunicatorStopsTheStep) {
  auto model = make_model();
  cnnx::DataParallelStep step(*model, kMicroBatches, 0, 2, 64, 0);
  const Data data = make_data();
  cnnx::Batch batch;
  batch.x = data.x.data();
  batch.y = data.y.data();
  batch.count = kSamples;
  batch.target_dim = 3;
  batch.n = 6;
  step.abort("communicator failed");
  EXPECT_THROW(step.run(batch, 12, 30.0), std::runtime_error);
  cnnx::DataParallelStep waiting(*model, kMicroBatches, 0, 2, 64, 0);
  EXPECT_THROW(waiting.run(batch, 12, 0.05), std::runtime_error);  // nobody reduces: timeout
}

}  // namespace
