// The fixture of the proof-of-learning tests (proof_of_learning_test.cpp,
// proof_of_learning_challenge_test.cpp, proof_of_learning_audit_test.cpp):
// a small "mlp" (and "cnn" for the thread-count check) on a 96-sample
// synthetic shard, batches of 8, segments of 4 steps, 12 steps: 3 segments.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../synthetic_task.h"
#include "cohort/merkle.h"
#include "cohort/proof_of_learning.h"

namespace cohort::pol_testing {

// ok once the cpu-exact settings are in place. Defined, and set by a global
// test environment before the first test, in proof_of_learning_test.cpp.
extern Status g_determinism;

inline constexpr uint64_t kTaskId = 4242;
inline constexpr uint64_t kSeed = 17;
inline constexpr uint32_t kSteps = 12;
inline constexpr uint32_t kSegmentSteps = 4;
inline constexpr uint32_t kSegments = 3;

inline Hyperparameters task_hyper() { return synthetic_hyper(kSteps); }

inline ProofParams exact_params() { return ProofParams{kSegmentSteps, DeterminismProfile::kCpuExact, 0.0}; }

inline std::unique_ptr<Model> make_model(const std::string& name = "mlp", uint64_t seed = 3) {
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

}  // namespace cohort::pol_testing
