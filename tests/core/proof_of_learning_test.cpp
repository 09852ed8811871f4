// Proof of learning: the worker's commitment and checkpoints, the
// challenge, and the verifier against the attacks of section 7 of
// shared/research/proof-of-learning.md that this layer can see (the wire,
// signatures, deadlines and the ledger are tested where they live).
//
// This file: the determinism settings, segments, leaves and batch digests,
// and the worker side (train_with_proof, its checkpoints). The challenges are
// in proof_of_learning_challenge_test.cpp, the verifier in
// proof_of_learning_audit_test.cpp; the fixture in proof_of_learning_testing.h.
#include "cohort/proof_of_learning.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>

#include "proof_of_learning_testing.h"

namespace cohort::pol_testing {

// The cpu-exact settings must be in place before any tensor operation of
// the process, so they are applied once for the whole test binary.
Status g_determinism = Status::internal("use_deterministic_cpu_training() was not called");

namespace {

class DeterministicCpu : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_TRUE(init_crypto().ok());
    g_determinism = use_deterministic_cpu_training();
  }
};
[[maybe_unused]] ::testing::Environment* const kDeterministicCpu =
    ::testing::AddGlobalTestEnvironment(new DeterministicCpu);

// ---- Determinism -------------------------------------------------------------

TEST_F(ProofOfLearningTest, DeterministicSettingsAreInEffect) {
  EXPECT_FALSE(at::globalContext().userEnabledMkldnn());
  EXPECT_TRUE(use_deterministic_cpu_training().ok());  // idempotent
}

// ---- Segments, leaves, batches --------------------------------------------------

TEST_F(ProofOfLearningTest, SegmentArithmetic) {
  EXPECT_EQ(segment_count(12, 4), 3u);
  EXPECT_EQ(segment_count(10, 4), 3u);
  EXPECT_EQ(segment_count(3, 4), 1u);
  EXPECT_EQ(segment_count(0, 4), 0u);
  EXPECT_EQ(segment_count(10, 0), 0u);
  EXPECT_EQ(segment_begin(1, 4), 0u);
  EXPECT_EQ(segment_begin(3, 4), 8u);
  EXPECT_EQ(segment_end(2, 4, 10), 8u);
  EXPECT_EQ(segment_end(3, 4, 10), 10u);  // the last segment is shorter
}

TEST_F(ProofOfLearningTest, LeafHashCoversTheTaskAndEveryField) {
  LeafData leaf{2, 8, Digest{1}, Digest{2}, Digest{3}};
  const Digest base = leaf_hash(kTaskId, leaf);
  EXPECT_EQ(base, leaf_hash(kTaskId, leaf));
  std::set<Digest> seen{base, leaf_hash(kTaskId + 1, leaf)};
  for (int field = 0; field < 5; ++field) {
    LeafData other = leaf;
    if (field == 0) other.index = 3;
    if (field == 1) other.step = 9;
    if (field == 2) other.parameters[31] = 1;
    if (field == 3) other.momentum[31] = 1;
    if (field == 4) other.batches[31] = 1;
    seen.insert(leaf_hash(kTaskId, other));
  }
  EXPECT_EQ(seen.size(), 7u);
}

TEST_F(ProofOfLearningTest, BatchDigestFollowsTheSchedule) {
  const Digest d = batch_digest(96, 8, kSeed, 4, 8);
  EXPECT_EQ(d, batch_digest(96, 8, kSeed, 4, 8));
  EXPECT_NE(d, batch_digest(96, 8, kSeed + 1, 4, 8));
  EXPECT_NE(d, batch_digest(96, 8, kSeed, 4, 7));
  EXPECT_NE(d, batch_digest(96, 8, kSeed, 0, 4));
  EXPECT_NE(d, batch_digest(96, 16, kSeed, 4, 8));
  EXPECT_NE(batch_digest(96, 8, kSeed, 4, 4), Digest{});
}

TEST_F(ProofOfLearningTest, MomentumDigestTreatsZerosAsFresh) {
  const auto model = make_model();
  const Layout& layout = model->layout();
  const at::Tensor zeros = at::zeros({start_.numel()});
  EXPECT_EQ(momentum_digest(layout, at::Tensor()), fresh_momentum_digest());
  EXPECT_EQ(momentum_digest(layout, zeros), fresh_momentum_digest());
  EXPECT_EQ(momentum_digest(layout, start_), digest_of(layout, start_));
  EXPECT_NE(momentum_digest(layout, start_), fresh_momentum_digest());
}

// ---- Worker side -----------------------------------------------------------------

TEST_F(ProofOfLearningTest, TrainWithProofGivesTrainLocallysDeltaAndTheCommitment) {
  auto plain = make_model(), proven = make_model();
  MomentumBuffers plain_momentum, proven_momentum;
  auto local = train_locally(*plain, shard_, task_hyper(), kSeed, &plain_momentum);
  auto proof = train_with_proof(*proven, shard_, task_hyper(), kSeed, kTaskId, exact_params(), dir_, &proven_momentum);
  ASSERT_TRUE(local.ok() && proof.ok()) << proof.status().to_string();
  EXPECT_TRUE(at::equal(local->delta, proof->training.delta));
  EXPECT_EQ(local->metrics.local_loss, proof->training.metrics.local_loss);
  EXPECT_EQ(local->samples_seen, proof->training.samples_seen);
  ASSERT_EQ(plain_momentum.size(), proven_momentum.size());
  EXPECT_TRUE(at::equal(plain_momentum[0], proven_momentum[0]));

  const Commitment& c = proof->commitment;
  EXPECT_EQ(c.total_steps, kSteps);
  EXPECT_EQ(c.segment_steps, kSegmentSteps);
  ASSERT_EQ(c.leaves.size(), kSegments + 1);
  EXPECT_EQ(c.root, commitment_root(kTaskId, c.leaves));
  EXPECT_EQ(c.leaves[0].parameters, digest_of(proven->layout(), start_));
  EXPECT_EQ(c.leaves[0].momentum, fresh_momentum_digest());
  EXPECT_EQ(c.leaves.back().step, kSteps);
  // The same trajectory as the in-memory prover of these tests.
  const Trajectory t = prove();
  EXPECT_EQ(c.root, t.root);
  for (uint32_t j = 0; j <= kSegments; ++j) {
    EXPECT_TRUE(std::filesystem::exists(checkpoint_path(dir_, j))) << j;
    EXPECT_EQ(c.leaves[j], t.leaves[j]) << j;
  }
  EXPECT_FALSE(std::filesystem::exists(checkpoint_path(dir_, kSegments + 1)));
}

TEST_F(ProofOfLearningTest, OpenedSegmentsComeBackFromTheCheckpointsAndVerify) {
  auto model = make_model();
  auto proof = train_with_proof(*model, shard_, task_hyper(), kSeed, kTaskId, exact_params(), dir_);
  ASSERT_TRUE(proof.ok()) << proof.status().to_string();
  AuditContext c = context(prove());
  c.root = proof->commitment.root;
  c.submitted_delta = proof->training.delta;
  for (uint32_t j = 1; j <= kSegments; ++j) {
    auto opened = open_segment(proof->commitment, kTaskId, dir_, j);
    ASSERT_TRUE(opened.ok()) << opened.status().to_string();
    EXPECT_EQ(opened->before_state.step, segment_begin(j, kSegmentSteps));
    const SegmentVerdict verdict = verify(c, *opened);
    EXPECT_TRUE(verdict.passed) << "segment " << j << ": " << verdict.reason;
    EXPECT_EQ(verdict.relative_error, 0.0);
    EXPECT_GT(verdict.seconds, 0.0);
  }
  EXPECT_EQ(open_segment(proof->commitment, kTaskId, dir_, 0).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(open_segment(proof->commitment, kTaskId, dir_, kSegments + 1).status().code(),
            Status::Code::kInvalidArgument);
  // Files of another task's commitment are refused.
  EXPECT_EQ(open_segment(proof->commitment, kTaskId + 1, dir_, 1).status().code(), Status::Code::kCorruption);
}

TEST_F(ProofOfLearningTest, DamagedAndMissingCheckpointsAreReported) {
  auto model = make_model();
  auto proof = train_with_proof(*model, shard_, task_hyper(), kSeed, kTaskId, exact_params(), dir_);
  ASSERT_TRUE(proof.ok());
  {
    std::fstream file(checkpoint_path(dir_, 1), std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(200);
    file.put('\x7f');
  }
  auto damaged = open_segment(proof->commitment, kTaskId, dir_, 2);
  EXPECT_EQ(damaged.status().code(), Status::Code::kCorruption);
  EXPECT_NE(damaged.status().message().find("checksum"), std::string::npos) << damaged.status().to_string();
  std::filesystem::resize_file(checkpoint_path(dir_, 3), 100);
  EXPECT_EQ(open_segment(proof->commitment, kTaskId, dir_, 3).status().code(), Status::Code::kCorruption);
  std::filesystem::remove(checkpoint_path(dir_, 0));
  EXPECT_EQ(open_segment(proof->commitment, kTaskId, dir_, 1).status().code(), Status::Code::kNotFound);

  const TrainingState state{start_, at::Tensor(), 5};
  ASSERT_TRUE(write_training_state(dir_ / "plain.bin", state, Digest{7}).ok());
  auto back = read_training_state(dir_ / "plain.bin");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(at::equal(back->state.parameters, start_));
  EXPECT_FALSE(back->state.momentum.defined());
  EXPECT_EQ(back->state.step, 5u);
  EXPECT_EQ(back->leaf, Digest{7});
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().extension(), ".bin") << "temporary file left behind: " << entry.path();
  }
}

TEST_F(ProofOfLearningTest, CheckpointDirectoriesArePrunedAndRemoved) {
  for (uint64_t id = 1; id <= 5; ++id) {
    const auto task = task_checkpoint_dir(dir_, id);
    std::filesystem::create_directories(task);
    std::ofstream(task / "state-0.bin") << "x";
    std::filesystem::last_write_time(task, std::filesystem::file_time_type::clock::now() +
                                               std::chrono::seconds(static_cast<int64_t>(id)));
  }
  std::filesystem::create_directories(dir_ / "keep-me");
  auto removed = prune_task_checkpoints(dir_, 2);
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 3u);
  EXPECT_TRUE(std::filesystem::exists(task_checkpoint_dir(dir_, 5)));
  EXPECT_TRUE(std::filesystem::exists(task_checkpoint_dir(dir_, 4)));
  EXPECT_FALSE(std::filesystem::exists(task_checkpoint_dir(dir_, 3)));
  EXPECT_TRUE(std::filesystem::exists(dir_ / "keep-me"));
  EXPECT_EQ(*prune_task_checkpoints(dir_, 2), 0u);
  EXPECT_TRUE(remove_task_checkpoints(task_checkpoint_dir(dir_, 5)).ok());
  EXPECT_FALSE(std::filesystem::exists(task_checkpoint_dir(dir_, 5)));
  EXPECT_TRUE(remove_task_checkpoints(task_checkpoint_dir(dir_, 5)).ok());  // already gone
  EXPECT_EQ(*prune_task_checkpoints(dir_ / "absent", 1), 0u);
}

}  // namespace
}  // namespace cohort::pol_testing
