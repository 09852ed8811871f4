// Proof of learning: the worker's commitment and checkpoints, the
// challenge, and the verifier against the attacks of section 7 of
// shared/research/proof-of-learning.md that this layer can see (the wire,
// signatures, deadlines and the ledger are tested where they live).
//
// A small "mlp" (and "cnn" for the thread-count check) on a 96-sample
// synthetic shard, batches of 8, segments of 4 steps, 12 steps: 3 segments.
#include "cohort/proof_of_learning.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "../synthetic_task.h"
#include "cohort/merkle.h"

namespace cohort {
namespace {

// The cpu-exact settings must be in place before any tensor operation of
// the process, so they are applied once for the whole test binary.
Status g_determinism = Status::internal("use_deterministic_cpu_training() was not called");

class DeterministicCpu : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_TRUE(init_crypto().ok());
    g_determinism = use_deterministic_cpu_training();
  }
};
[[maybe_unused]] ::testing::Environment* const kDeterministicCpu =
    ::testing::AddGlobalTestEnvironment(new DeterministicCpu);

constexpr uint64_t kTaskId = 4242;
constexpr uint64_t kSeed = 17;
constexpr uint32_t kSteps = 12;
constexpr uint32_t kSegmentSteps = 4;
constexpr uint32_t kSegments = 3;

Hyperparameters task_hyper() { return synthetic_hyper(kSteps); }

ProofParams exact_params() { return ProofParams{kSegmentSteps, DeterminismProfile::kCpuExact, 0.0}; }

std::unique_ptr<Model> make_model(const std::string& name = "mlp", uint64_t seed = 3) {
  return std::move(Model::create(name, seed)).value();
}

// Sets the intra-op thread count for a scope.
class Threads {
 public:
  explicit Threads(int n) : saved_(at::get_num_threads()) { at::set_num_threads(n); }
  ~Threads() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

// A trajectory as a (possibly cheating) worker commits it, kept in memory.
struct Trajectory {
  std::vector<TrainingState> states;  // after each segment; [0] = start
  std::vector<LeafData> leaves;
  Digest root{};
  at::Tensor delta;  // what the worker submits
};

// How a worker deviates from the task. The defaults are an honest worker.
struct Conduct {
  std::optional<Hyperparameters> hyper{};      // trains with these instead
  std::optional<uint64_t> seed{};              // draws batches from this seed
  bool commit_own_batches = false;             // commits the batches it used, not the task's
  uint32_t skip_last_step_of = 0;              // a segment whose last step is skipped
  at::Tensor start_momentum{};                 // momentum it starts from (fresh when undefined)
  std::function<void(uint32_t, TrainingState&)> edit{};  // rewrites state j before committing it (and continues from it)
};

class ProofOfLearningTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(g_determinism.ok()) << g_determinism.to_string();
    dir_ = std::filesystem::temp_directory_path() /
           ("cohort-pol-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    start_ = make_model()->flat_parameters();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Trajectory prove(const Conduct& conduct = {}, const std::string& model_name = "mlp") {
    const Hyperparameters hyper = task_hyper();
    auto model = make_model(model_name, 3);
    EXPECT_TRUE(model->set_flat_parameters(start_for(model_name)).ok());
    SgdTrainer trainer(*model, shard_, conduct.hyper.value_or(hyper), conduct.seed.value_or(kSeed));
    if (conduct.start_momentum.defined()) {
      EXPECT_TRUE(trainer.load_state({start_for(model_name), conduct.start_momentum, 0}).ok());
    }
    Trajectory t;
    t.states.push_back(trainer.state());
    t.leaves.push_back(leaf_of(model->layout(), t.states[0], 0, Digest{}));
    for (uint32_t j = 1; j <= kSegments; ++j) {
      const uint64_t begin = segment_begin(j, kSegmentSteps), end = segment_end(j, kSegmentSteps, kSteps);
      EXPECT_TRUE(trainer.run(end - begin - (j == conduct.skip_last_step_of ? 1 : 0)).ok());
      TrainingState state = trainer.state();
      state.step = end;  // the claim
      if (conduct.edit) conduct.edit(j, state);
      // A cheater carries on from what it committed.
      if (conduct.edit || state.step != trainer.step()) {
        EXPECT_TRUE(trainer.load_state(state).ok());
      }
      const uint64_t batch_seed = conduct.commit_own_batches ? conduct.seed.value_or(kSeed) : kSeed;
      t.leaves.push_back(
          leaf_of(model->layout(), state, j, batch_digest(shard_.size(), hyper.batch_size, batch_seed, begin, end)));
      t.states.push_back(std::move(state));
    }
    t.root = commitment_root(kTaskId, t.leaves);
    t.delta = t.states.back().parameters - t.states[0].parameters;
    return t;
  }

  const at::Tensor& start_for(const std::string& model_name) {
    if (!starts_.contains(model_name)) starts_[model_name] = make_model(model_name, 3)->flat_parameters();
    return starts_[model_name];
  }

  static SegmentOpening opening(const Trajectory& t, uint32_t j) {
    std::vector<Digest> hashes;
    for (const LeafData& leaf : t.leaves) hashes.push_back(leaf_hash(kTaskId, leaf));
    const MerkleTree tree(hashes);
    return SegmentOpening{j, t.leaves[j - 1], t.leaves[j], tree.proof(j - 1), tree.proof(j), t.states[j - 1],
                          t.states[j]};
  }

  AuditContext context(const Trajectory& t, const std::string& model_name = "mlp") {
    AuditContext c;
    c.shard = &shard_;
    c.hyper = task_hyper();
    c.seed = kSeed;
    c.task_id = kTaskId;
    c.params = exact_params();
    c.root = t.root;
    c.total_steps = kSteps;
    c.start_parameters = start_for(model_name);
    c.submitted_delta = t.delta;
    return c;
  }

  SegmentVerdict verify(const Trajectory& t, uint32_t j) { return verify(context(t), opening(t, j)); }
  SegmentVerdict verify(const AuditContext& c, const SegmentOpening& o, const std::string& model_name = "mlp") {
    auto scratch = make_model(model_name, 1234);  // any initial values: they are overwritten
    return verify_segment(*scratch, c, o);
  }

  const TensorDataset shard_ = synthetic_shard();
  std::filesystem::path dir_;
  at::Tensor start_;
  std::map<std::string, at::Tensor> starts_;
};

#define EXPECT_REJECTED(verdict, text)                                                    \
  do {                                                                                    \
    const SegmentVerdict v_ = (verdict);                                                  \
    EXPECT_FALSE(v_.passed) << "accepted; expected a rejection mentioning '" << (text) << "'"; \
    EXPECT_NE(v_.reason.find(text), std::string::npos) << "reason: " << v_.reason;       \
  } while (0)

#define EXPECT_PASSED(verdict)                             \
  do {                                                     \
    const SegmentVerdict v_ = (verdict);                   \
    EXPECT_TRUE(v_.passed) << "rejected: " << v_.reason;   \
  } while (0)

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

// ---- Honest segments ---------------------------------------------------------------

TEST_F(ProofOfLearningTest, HonestSegmentsPass) {
  const Trajectory t = prove();
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_PASSED(verify(t, j));
}

// The cnn is the model whose training differed between thread counts before
// the cpu-exact settings (oneDNN's convolution weight gradient).
TEST_F(ProofOfLearningTest, HonestSegmentPassesAtAnotherThreadCount) {
  for (const std::string name : {"cnn", "mlp"}) {
    SCOPED_TRACE(name);
    Trajectory t;
    {
      Threads one(1);
      t = prove({}, name);
    }
    Threads two(2);
    AuditContext c = context(t, name);
    for (uint32_t j : {1u, kSegments}) EXPECT_PASSED(verify(c, opening(t, j), name));
  }
}

// ---- Attacks: no or partial work ------------------------------------------------------

TEST_F(ProofOfLearningTest, RandomOrZeroUpdateWithAnHonestCommitmentFails) {
  const Trajectory honest = prove();
  Trajectory random = honest, zero = honest;
  at::Generator gen = at::detail::createCPUGenerator(5);
  random.delta = at::randn({honest.delta.numel()}, gen) * honest.delta.norm() / std::sqrt(double(honest.delta.numel()));
  zero.delta = at::zeros_like(honest.delta);
  EXPECT_REJECTED(verify(random, kSegments), "submitted update");
  EXPECT_REJECTED(verify(zero, kSegments), "submitted update");
}

TEST_F(ProofOfLearningTest, NoTrainingCommittedConsistentlyFails) {
  // The start model at every leaf and a zero update: every segment fails.
  const Trajectory idle = prove({.edit = [&](uint32_t, TrainingState& s) {
    s.parameters = start_.clone();
    s.momentum = at::zeros_like(start_);
  }});
  ASSERT_FALSE(idle.delta.ne(0).any().item<bool>());
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(idle, j), "re-execution differs");
}

TEST_F(ProofOfLearningTest, InterpolatedTrajectoryFailsItsSegments) {
  // Fang-style: the real end point, the states in between interpolated.
  const Trajectory honest = prove();
  const at::Tensor end = honest.states.back().parameters;
  const Trajectory fake = prove({.edit = [&](uint32_t j, TrainingState& s) {
    s.parameters = start_ + (end - start_) * (static_cast<double>(j) / kSegments);
  }});
  ASSERT_TRUE(at::equal(fake.delta, honest.delta) || at::allclose(fake.delta, honest.delta));
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(fake, j), "re-execution differs");
}

TEST_F(ProofOfLearningTest, SkippedLastStepFailsItsSegmentOnly) {
  const Trajectory t = prove({.skip_last_step_of = 2});
  EXPECT_PASSED(verify(t, 1));
  EXPECT_REJECTED(verify(t, 2), "re-execution differs from leaf 2");
  // Segment 3 is honest work from a committed (wrong) state: only sampling
  // segment 2 catches this worker.
  EXPECT_PASSED(verify(t, 3));
}

// ---- Attacks: hyperparameters and data ---------------------------------------------

TEST_F(ProofOfLearningTest, LearningRateTimesPoint99Fails) {
  Hyperparameters slower = task_hyper();
  slower.learning_rate *= 0.99;
  const Trajectory t = prove({.hyper = slower});
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(t, j), "re-execution differs");
}

TEST_F(ProofOfLearningTest, OtherMomentumOrWeightDecayFails) {
  Hyperparameters other = task_hyper();
  other.momentum = 0.8;
  EXPECT_REJECTED(verify(prove({.hyper = other}), 2), "re-execution differs");
  other = task_hyper();
  other.weight_decay = 0.0;
  EXPECT_REJECTED(verify(prove({.hyper = other}), 2), "re-execution differs");
}

TEST_F(ProofOfLearningTest, OtherDataOrderFails) {
  // Batches from another seed, committed under the task's batch digests...
  EXPECT_REJECTED(verify(prove({.seed = kSeed + 1}), 2), "re-execution differs");
  // ...or under their own: the digest check catches it before re-execution.
  EXPECT_REJECTED(verify(prove({.seed = kSeed + 1, .commit_own_batches = true}), 1), "batch digest of leaf 1");
}

TEST_F(ProofOfLearningTest, Bf16RoundedStatesAreRejectedInCpuExact) {
  const Trajectory t = prove({.edit = [](uint32_t, TrainingState& s) {
    s.parameters = s.parameters.to(at::kBFloat16).to(at::kFloat);
    s.momentum = s.momentum.to(at::kBFloat16).to(at::kFloat);
  }});
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(t, j), "re-execution differs");
  // Lossy storage of honest states is rejected too: revealed != leaf.
  const Trajectory honest = prove();
  SegmentOpening o = opening(honest, 2);
  o.before_state.parameters = o.before_state.parameters.to(at::kBFloat16).to(at::kFloat);
  EXPECT_REJECTED(verify(context(honest), o), "parameters do not match leaf 1");
}

TEST_F(ProofOfLearningTest, ForgedMomentumWithCorrectWeightsFails) {
  const Trajectory t = prove({.edit = [](uint32_t j, TrainingState& s) {
    if (j == 2) s.momentum = s.momentum * 0.5;
  }});
  const SegmentVerdict v = verify(t, 2);
  EXPECT_REJECTED(v, "(momentum)");
  EXPECT_NE(v.reason.find("0 (parameters)"), std::string::npos) << "the weights were right: " << v.reason;
}

// ---- Attacks: commitment fraud ----------------------------------------------------------

TEST_F(ProofOfLearningTest, RevealedStateOtherThanItsLeafFails) {
  const Trajectory t = prove();
  SegmentOpening params = opening(t, 2);
  params.after_state.parameters = params.after_state.parameters.clone();
  params.after_state.parameters[0] += 1e-3;
  EXPECT_REJECTED(verify(context(t), params), "after segment 2: parameters do not match leaf 2");
  SegmentOpening momentum = opening(t, 2);
  momentum.before_state.momentum = momentum.before_state.momentum * 2;
  EXPECT_REJECTED(verify(context(t), momentum), "momentum does not match leaf 1");
  SegmentOpening step = opening(t, 2);
  step.after_state.step += 1;
  EXPECT_REJECTED(verify(context(t), step), "is at step 9");
  SegmentOpening leaves = opening(t, 2);
  leaves.after = t.leaves[3];
  EXPECT_REJECTED(verify(context(t), leaves), "revealed leaves");
  SegmentOpening outside = opening(t, 2);
  outside.segment = kSegments + 1;
  EXPECT_REJECTED(verify(context(t), outside), "is not in [1, 3]");
}

TEST_F(ProofOfLearningTest, BadMerklePathOrRootFails) {
  const Trajectory t = prove();
  SegmentOpening o = opening(t, 2);
  o.after_proof[0][5] ^= 1;
  EXPECT_REJECTED(verify(context(t), o), "Merkle proof of leaf 2");
  SegmentOpening short_proof = opening(t, 2);
  short_proof.before_proof.pop_back();
  EXPECT_REJECTED(verify(context(t), short_proof), "Merkle proof of leaf 1");
  AuditContext other_root = context(t);
  other_root.root[0] ^= 1;
  EXPECT_REJECTED(verify(other_root, opening(t, 2)), "Merkle proof");
  // A leaf of another task (same states) does not verify under this task id.
  AuditContext other_task = context(t);
  other_task.task_id = kTaskId + 1;
  EXPECT_REJECTED(verify(other_task, opening(t, 2)), "Merkle proof");
}

TEST_F(ProofOfLearningTest, LastLeafOtherThanTheSubmittedUpdateFails) {
  Trajectory t = prove();
  EXPECT_PASSED(verify(t, kSegments));
  // Another worker's update (or this one plus noise) with this commitment.
  Trajectory copied = t;
  copied.delta = prove({.seed = kSeed + 7}).delta;
  EXPECT_REJECTED(verify(copied, kSegments), "submitted update");
  Trajectory noisy = t;
  noisy.delta = t.delta.clone();
  noisy.delta[10] += 1e-6;
  EXPECT_REJECTED(verify(noisy, kSegments), "submitted update");
  // An update sent as bfloat16 matches once the verifier rounds the same way.
  AuditContext bf16 = context(t);
  bf16.submitted_delta = t.delta.to(at::kBFloat16).to(at::kFloat);
  EXPECT_REJECTED(verify(bf16, opening(t, kSegments)), "submitted update");
  bf16.update_dtype = DType::kBFloat16;
  EXPECT_PASSED(verify(bf16, opening(t, kSegments)));
}

TEST_F(ProofOfLearningTest, Leaf0OtherThanTheAnnouncedModelFails) {
  // The worker trains honestly, but from a model of its own...
  starts_["mlp"] = make_model("mlp", 77)->flat_parameters();
  const Trajectory own_model = prove();
  starts_["mlp"] = start_;
  EXPECT_REJECTED(verify(context(own_model), opening(own_model, 1)), "does not start from the announced model");
  // ...or from momentum of its own (an injected direction).
  const Trajectory own_momentum = prove({.start_momentum = start_ * 0.01});
  EXPECT_REJECTED(verify(own_momentum, 1), "does not start from the task's momentum");
  const Commitment c{own_momentum.root, kSteps, kSegmentSteps, own_momentum.leaves};
  const Status anchors = check_anchors(own_momentum.root, kTaskId, kSteps, kSegmentSteps,
                                       digest_of(make_model()->layout(), start_), open_leaf(c, kTaskId, 0),
                                       open_leaf(c, kTaskId, kSegments));
  EXPECT_NE(anchors.message().find("leaf 0 does not start from the task's momentum"), std::string::npos)
      << anchors.to_string();
}

TEST_F(ProofOfLearningTest, AnchorsAreCheckedAtCommitTime) {
  const Trajectory t = prove();
  const Commitment commitment{t.root, kSteps, kSegmentSteps, t.leaves};
  const auto model = make_model();
  const Layout& layout = model->layout();
  const Digest announced = digest_of(layout, start_);
  const LeafOpening first = open_leaf(commitment, kTaskId, 0);
  const LeafOpening last = open_leaf(commitment, kTaskId, kSegments);
  EXPECT_TRUE(verify_leaf(t.root, kTaskId, kSegments + 1, first));
  EXPECT_FALSE(verify_leaf(t.root, kTaskId + 1, kSegments + 1, first));
  EXPECT_TRUE(check_anchors(t.root, kTaskId, kSteps, kSegmentSteps, announced, first, last).ok());
  EXPECT_THROW(open_leaf(commitment, kTaskId, kSegments + 1), std::out_of_range);

  auto rejects = [&](const LeafOpening& f, const LeafOpening& l, const std::string& text, const Digest& model) {
    const Status s = check_anchors(t.root, kTaskId, kSteps, kSegmentSteps, model, f, l);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(text), std::string::npos) << s.to_string();
  };
  rejects(first, last, "leaf 0 is not the announced model", digest_of(layout, start_ * 2));
  rejects(last, last, "first anchor is leaf 3", announced);
  rejects(first, first, "last anchor is leaf 0", announced);
  LeafOpening bad_proof = last;
  bad_proof.proof[0][0] ^= 1;
  rejects(first, bad_proof, "last leaf (3) does not verify", announced);
  LeafOpening bad_step = last;
  bad_step.leaf.step = kSteps - 1;
  rejects(first, bad_step, "claims step 11", announced);
  EXPECT_EQ(check_anchors(t.root, kTaskId, kSteps, kSegmentSteps, announced, first, last, Digest{9}).code(),
            Status::Code::kInvalidArgument);
  // Anchors of a worker that started elsewhere.
  starts_["mlp"] = make_model("mlp", 77)->flat_parameters();
  const Trajectory elsewhere = prove();
  const Commitment other{elsewhere.root, kSteps, kSegmentSteps, elsewhere.leaves};
  EXPECT_FALSE(check_anchors(elsewhere.root, kTaskId, kSteps, kSegmentSteps, announced,
                             open_leaf(other, kTaskId, 0), open_leaf(other, kTaskId, kSegments))
                   .ok());
}

// ---- Challenges ----------------------------------------------------------------------

Digest numbered(uint64_t i) {
  Digest d{};
  for (int b = 0; b < 8; ++b) d[b] = static_cast<uint8_t>(i >> (8 * b));
  return blake2b_256(d);
}

TEST_F(ProofOfLearningTest, ChallengesAreDeterministicAndBoundToEveryInput) {
  const Digest secret = numbered(1), root = numbered(2);
  const PublicKey worker = numbered(3);
  const ChallengeParams always{1.0, 3};
  const Challenge c = derive_challenge(secret, root, worker, kTaskId, 40, always);
  EXPECT_EQ(c, derive_challenge(secret, root, worker, kTaskId, 40, always));
  ASSERT_TRUE(c.audited);
  EXPECT_EQ(c.segments.size(), 4u);
  EXPECT_TRUE(std::is_sorted(c.segments.begin(), c.segments.end()));
  EXPECT_EQ(std::set<uint32_t>(c.segments.begin(), c.segments.end()).size(), c.segments.size());
  EXPECT_EQ(c.segments.back(), 40u);
  EXPECT_GE(c.segments.front(), 1u);
  // Any other input changes the draw (over a few tries, against chance).
  int changed[4] = {0, 0, 0, 0};
  for (uint64_t i = 10; i < 20; ++i) {
    changed[0] += derive_challenge(numbered(i), root, worker, kTaskId, 40, always) != c;
    changed[1] += derive_challenge(secret, numbered(i), worker, kTaskId, 40, always) != c;
    changed[2] += derive_challenge(secret, root, numbered(i), kTaskId, 40, always) != c;
    changed[3] += derive_challenge(secret, root, worker, kTaskId + i, 40, always) != c;
  }
  for (int k = 0; k < 4; ++k) EXPECT_GE(changed[k], 9) << "input " << k;

  EXPECT_EQ(secret_commitment(secret), secret_commitment(secret));
  EXPECT_NE(secret_commitment(secret), secret_commitment(root));
  EXPECT_NE(secret_commitment(secret), blake2b_256(secret));

  EXPECT_FALSE(derive_challenge(secret, root, worker, kTaskId, 40, {0.0, 3}).audited);
  EXPECT_EQ(derive_challenge(secret, root, worker, kTaskId, 0, always), Challenge{});
  EXPECT_EQ(derive_challenge(secret, root, worker, kTaskId, 1, always).segments, std::vector<uint32_t>{1});
  EXPECT_EQ(derive_challenge(secret, root, worker, kTaskId, 3, {1.0, 5}).segments,
            (std::vector<uint32_t>{1, 2, 3}));
}

TEST_F(ProofOfLearningTest, ChallengeDistributionMatchesTheParameters) {
  const Digest root = numbered(2);
  const PublicKey worker = numbered(3);
  const ChallengeParams params{0.25, 3};
  constexpr int kSecrets = 8000;
  constexpr uint32_t kCount = 12;
  int audited = 0;
  std::vector<int> picked(kCount + 1, 0);
  for (int i = 0; i < kSecrets; ++i) {
    const Challenge c = derive_challenge(numbered(1000 + i), root, worker, kTaskId, kCount, params);
    if (!c.audited) {
      EXPECT_TRUE(c.segments.empty());
      continue;
    }
    ++audited;
    ASSERT_EQ(c.segments.size(), 4u);
    ASSERT_EQ(c.segments.back(), kCount);
    for (uint32_t s : c.segments) ++picked[s];
  }
  // Audit rate: 0.25 +- 4 sigma (sigma = sqrt(p (1 - p) / n) = 0.0048).
  EXPECT_NEAR(static_cast<double>(audited) / kSecrets, 0.25, 4 * 0.0048);
  // Each of the 11 non-last segments is drawn with probability 3/11 per
  // audit; the last every time.
  EXPECT_EQ(picked[kCount], audited);
  const double expected = audited * 3.0 / 11.0;
  const double sigma = std::sqrt(audited * (3.0 / 11.0) * (8.0 / 11.0));
  for (uint32_t s = 1; s < kCount; ++s) EXPECT_NEAR(picked[s], expected, 4 * sigma) << "segment " << s;
}

// A cheater that fakes half of segments 1..40 (of 41) and can re-roll its
// root (by perturbing anything it commits to) grinds for a root whose
// challenge misses every faked segment. If the challenge came from what the
// worker knows (here: a secret derived from the root itself, as in a
// self-audit), grinding wins every time; with the coordinator's secret,
// known to the worker only as secret_commitment(secret) until its root is
// in, the best the grinder can do is guess, and it escapes only as often
// as an honest draw lets it: C(20, 2) / C(40, 2) = 0.244 with s = 2.
TEST_F(ProofOfLearningTest, AChallengeCannotBeGroundFromWhatTheWorkerKnows) {
  constexpr uint32_t kCount = 41;
  const ChallengeParams params{1.0, 2};
  const PublicKey worker = numbered(3);
  std::set<uint32_t> faked;
  for (uint32_t j = 1; j < kCount; j += 2) faked.insert(j);  // 20 of the 40 that can be faked
  auto escapes = [&](const Challenge& c) {
    return std::none_of(c.segments.begin(), c.segments.end(), [&](uint32_t j) { return faked.contains(j); });
  };
  // The grinder's search: the first of up to 64 roots that escapes under
  // `predicted_secret(root)`.
  auto grind = [&](uint64_t task, const std::function<Digest(const Digest&)>& predicted_secret) {
    Digest root = numbered(task << 8);
    for (uint64_t nonce = 0; nonce < 64; ++nonce) {
      root = numbered((task << 8) + nonce);
      if (escapes(derive_challenge(predicted_secret(root), root, worker, task, kCount, params))) break;
    }
    return root;
  };
  constexpr int kTasks = 2000;
  int escaped_self_derived = 0, escaped_committed = 0;
  for (uint64_t task = 1; task <= kTasks; ++task) {
    // Strawman: the secret is a function of the root, so the worker computes it.
    auto self_derived = [](const Digest& root) { return blake2b_256(root); };
    const Digest ground = grind(task, self_derived);
    escaped_self_derived += escapes(derive_challenge(self_derived(ground), ground, worker, task, kCount, params));
    // Ours: the real secret is fresh and the worker sees only its commitment;
    // it grinds against that commitment, its best available guess.
    const Digest secret = numbered(900'000 + task);
    const Digest known = secret_commitment(secret);
    const Digest chosen = grind(task, [&](const Digest&) { return known; });
    escaped_committed += escapes(derive_challenge(secret, chosen, worker, task, kCount, params));
  }
  EXPECT_EQ(escaped_self_derived, kTasks);
  // 0.244 +- 5 sigma (sigma = sqrt(p (1 - p) / n) = 0.0096).
  const double p = 20.0 * 19.0 / (40.0 * 39.0);
  EXPECT_NEAR(static_cast<double>(escaped_committed) / kTasks, p, 5 * std::sqrt(p * (1 - p) / kTasks));
}

// ---- Tolerant profile -------------------------------------------------------------------

// Honest drift: the same SGD with each batch's gradient summed in two halves
// (the same mathematics, another rounding order, as other hardware does).
class TolerantTest : public ProofOfLearningTest {
 protected:
  Trajectory prove_in_halves() {
    const Hyperparameters hyper = task_hyper();
    auto model = make_model();
    std::vector<torch::Tensor> params = model->parameters();
    torch::optim::SGD optimizer(params, torch::optim::SGDOptions(hyper.learning_rate)
                                            .momentum(hyper.momentum)
                                            .weight_decay(hyper.weight_decay));
    auto state_of = [&](uint64_t step) {
      std::vector<torch::Tensor> buffers;
      for (auto& p : params) {
        auto it = optimizer.state().find(p.unsafeGetTensorImpl());
        buffers.push_back(it == optimizer.state().end()
                              ? torch::zeros({p.numel()})
                              : static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer().reshape(-1));
      }
      return TrainingState{model->flat_parameters(), torch::cat(buffers).clone(), step};
    };
    Trajectory t;
    t.states.push_back(state_of(0));
    t.leaves.push_back(leaf_of(model->layout(), t.states[0], 0, Digest{}));
    for (uint32_t j = 1; j <= kSegments; ++j) {
      const uint64_t begin = segment_begin(j, kSegmentSteps), end = segment_end(j, kSegmentSteps, kSteps);
      for (uint64_t step = begin; step < end; ++step) {
        const torch::Tensor index = torch::tensor(batch_indices(shard_.size(), hyper.batch_size, kSeed, step));
        optimizer.zero_grad();
        for (const torch::Tensor& half : index.chunk(2)) {
          const torch::Tensor loss = torch::nn::functional::cross_entropy(
              model->forward(shard_.images.index_select(0, half)), shard_.labels.index_select(0, half));
          (loss * (static_cast<double>(half.numel()) / static_cast<double>(index.numel()))).backward();
        }
        optimizer.step();
      }
      t.states.push_back(state_of(end));
      t.leaves.push_back(leaf_of(model->layout(), t.states[j], j,
                                 batch_digest(shard_.size(), hyper.batch_size, kSeed, begin, end)));
    }
    t.root = commitment_root(kTaskId, t.leaves);
    t.delta = t.states.back().parameters - t.states[0].parameters;
    return t;
  }

  AuditContext tolerant(const Trajectory& t, double tau) {
    AuditContext c = context(t);
    c.params = ProofParams{kSegmentSteps, DeterminismProfile::kTolerant, tau};
    return c;
  }
};

TEST_F(TolerantTest, HonestDriftPassesTolerantAndFailsCpuExact) {
  const Trajectory t = prove_in_halves();
  double worst = 0.0;
  for (uint32_t j = 1; j <= kSegments; ++j) {
    const SegmentVerdict v = verify(tolerant(t, kDefaultTolerance), opening(t, j));
    EXPECT_TRUE(v.passed) << "segment " << j << ": " << v.reason;
    worst = std::max(worst, v.relative_error);
  }
  EXPECT_GT(worst, 0.0) << "the two summation orders should differ somewhere";
  EXPECT_LT(worst, kDefaultTolerance / 10) << "honest drift near tau: recalibrate";
  EXPECT_REJECTED(verify(t, 2), "cpu-exact requires equal bits");
}

TEST_F(TolerantTest, ErrorJustAboveTauFailsAndJustBelowPasses) {
  const double tau = kDefaultTolerance;
  const at::Tensor before = prove().states[1].parameters;
  for (const double factor : {0.8, 1.2}) {
    SCOPED_TRACE(factor);
    // Perturb the state after segment 2 by factor * tau of the segment's change.
    const Trajectory t = prove({.edit = [&](uint32_t j, TrainingState& s) {
      if (j != 2) return;
      at::Generator gen = at::detail::createCPUGenerator(11);
      const at::Tensor noise = at::randn({s.parameters.numel()}, gen);
      const double change = (s.parameters - before).norm().item<double>();
      s.parameters = s.parameters + noise * (factor * tau * change / noise.norm().item<double>());
    }});
    const SegmentVerdict v = verify(tolerant(t, tau), opening(t, 2));
    EXPECT_NEAR(v.relative_error, factor * tau, 0.05 * tau) << v.reason;
    EXPECT_EQ(v.passed, factor < 1.0) << v.reason;
    if (!v.passed) {
      EXPECT_NE(v.reason.find("> tolerance"), std::string::npos) << v.reason;
    }
  }
  // Cheats stay far above tau.
  Hyperparameters slower = task_hyper();
  slower.learning_rate *= 0.99;
  const Trajectory lr = prove({.hyper = slower});
  EXPECT_REJECTED(verify(tolerant(lr, tau), opening(lr, 2)), "> tolerance");
  const Trajectory skipped = prove({.skip_last_step_of = 2});
  EXPECT_REJECTED(verify(tolerant(skipped, tau), opening(skipped, 2)), "> tolerance");
}

TEST_F(TolerantTest, TolerantUpdateCheckAllowsDriftOnlyWithinTau) {
  const Trajectory t = prove();
  AuditContext c = tolerant(t, kDefaultTolerance);
  c.submitted_delta = t.delta * (1 + kDefaultTolerance / 2);
  EXPECT_PASSED(verify(c, opening(t, kSegments)));
  c.submitted_delta = t.delta * (1 + 2 * kDefaultTolerance);
  EXPECT_REJECTED(verify(c, opening(t, kSegments)), "submitted update differs");
}

}  // namespace
}  // namespace cohort
