// The dishonest provers of cheats.h against the real verifier: each cheat
// opens like an honest commitment (its checkpoints match its leaves) and
// fails re-execution exactly in the segments it cheated, so the audits'
// catch rate is the chance of drawing one of them.
//
// A small "mlp" on a 96-sample synthetic shard, batches of 8, 12 steps in
// segments of 2: 6 segments; and the same for a TorchScript archive with
// BatchNorm and dropout (tests/support/make_torchscript_fixtures.py).
#include "cohort/cheats.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <unistd.h>

#include <set>

#include "../synthetic_task.h"
#include "cohort/crypto.h"
#include "support/torchscript_fixtures.h"

namespace cohort {
namespace {

// The cpu-exact settings must be in place before any tensor operation.
class DeterministicCpu : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_TRUE(init_crypto().ok());
    ASSERT_TRUE(use_deterministic_cpu_training().ok());
  }
};
[[maybe_unused]] ::testing::Environment* const kDeterministicCpu =
    ::testing::AddGlobalTestEnvironment(new DeterministicCpu);

constexpr uint64_t kSeed = 17;
constexpr uint32_t kSegments = 6;

Hyperparameters task_hyper() { return synthetic_hyper(12); }

// The model under test (the parameter), its start drawn from `seed`: the
// built-in's initialisation, or the archive's weights moved by seeded noise.
std::unique_ptr<Model> fresh_model(const std::string& kind, uint64_t seed) {
  if (kind != kTorchScriptModelName) return std::move(Model::create(kind, seed)).value();
  std::unique_ptr<Model> model = testing::torchscript_model();
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const at::Tensor flat = model->flat_parameters();
  EXPECT_TRUE(model->set_flat_parameters(flat + 0.01 * at::randn(flat.sizes(), gen)).ok());
  return model;
}

class CheatsTest : public ::testing::TestWithParam<std::string> {
 protected:
  // Runs `cheat` on task `task_id` from the model's current parameters and
  // returns the segments whose audit fails.
  std::set<uint32_t> failing_segments(const Cheat& cheat, uint64_t task_id, at::Tensor* delta = nullptr) {
    const at::Tensor start = model_->flat_parameters();
    const uint32_t segments = segment_count(hyper_.local_steps, params_.segment_steps);
    at::set_num_threads(train_threads_);
    const std::filesystem::path dir = root_ / ("task-" + std::to_string(task_id));
    auto proven = train_dishonestly(cheat, *model_, shard_, hyper_, kSeed, task_id, params_, dir, memory_);
    EXPECT_TRUE(proven.ok()) << proven.status().to_string();
    if (!proven.ok()) return {};
    if (delta != nullptr) *delta = proven->training.delta;
    EXPECT_EQ(proven->commitment.leaves.size(), segments + 1);
    EXPECT_EQ(proven->training.samples_seen, hyper_.local_steps * hyper_.batch_size);  // an honest claim

    AuditContext context;
    context.shard = &shard_;
    context.hyper = hyper_;
    context.seed = kSeed;
    context.task_id = task_id;
    context.params = params_;
    context.root = proven->commitment.root;
    context.total_steps = hyper_.local_steps;
    context.start_parameters = start;
    context.submitted_delta = proven->training.delta;
    at::set_num_threads(verify_threads_);
    std::set<uint32_t> failing;
    for (uint32_t j = 1; j <= segments; ++j) {
      auto opening = open_segment(proven->commitment, task_id, dir, j);
      EXPECT_TRUE(opening.ok()) << "the cheat's checkpoints must open like honest ones: "
                                << opening.status().to_string();
      if (opening.ok() && !verify_segment(*scratch_, context, *opening).passed) failing.insert(j);
    }
    EXPECT_TRUE(model_->set_flat_parameters(start + proven->training.delta).ok());  // the next task starts here
    return failing;
  }

  static std::set<uint32_t> all_segments() { return {1, 2, 3, 4, 5, 6}; }

  std::filesystem::path root_ = std::filesystem::temp_directory_path() /
                                ("cohort-cheats-test-" + std::to_string(::getpid()));
  std::unique_ptr<Model> model_ = fresh_model(GetParam(), 3);
  std::unique_ptr<Model> scratch_ = fresh_model(GetParam(), 0);
  TensorDataset shard_ = synthetic_shard();
  Hyperparameters hyper_ = task_hyper();
  ProofParams params_{2, DeterminismProfile::kCpuExact, 0.0};
  CheatMemory memory_;
  int train_threads_ = 1;
  int verify_threads_ = 1;

  void TearDown() override { std::filesystem::remove_all(root_); }
};

TEST(Cheats, NamesRoundTripAndBadOnesAreExplained) {
  for (const char* name : {"none", "skip-half", "fake-segments:0.25", "short-segments", "lr-0.99", "batch-order",
                           "bf16-states", "forged-momentum", "no-training", "random-update", "replay-update",
                           "non-finite"}) {
    auto cheat = parse_cheat(name);
    ASSERT_TRUE(cheat.ok()) << name;
    EXPECT_EQ(cheat_name(*cheat), name);
  }
  EXPECT_EQ(parse_cheat("fake-segments")->fraction, 0.5);
  EXPECT_EQ(parse_cheat("fake-segments:0.1")->fraction, 0.1);
  for (const char* bad : {"fake-segments:0", "fake-segments:1.5", "fake-segments:x", "fake-segments:",
                          "skip-half:0.3"}) {
    EXPECT_FALSE(parse_cheat(bad).ok()) << bad;
  }
  auto unknown = parse_cheat("lazy");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("skip-half"), std::string::npos) << unknown.status().message();
}

TEST(Cheats, FakedSegmentsAreTheFractionOfAllButTheLast) {
  for (double q : {0.05, 0.1, 0.25, 0.5, 1.0}) {
    const std::vector<uint32_t> faked = faked_segments(q, 41, 7);
    EXPECT_EQ(faked.size(), std::max<size_t>(1, static_cast<size_t>(std::lround(q * 40)))) << q;
    EXPECT_TRUE(std::is_sorted(faked.begin(), faked.end()));
    EXPECT_EQ(std::set<uint32_t>(faked.begin(), faked.end()).size(), faked.size());
    EXPECT_GE(faked.front(), 1u);
    EXPECT_LE(faked.back(), 40u);  // never the last segment
    EXPECT_EQ(faked, faked_segments(q, 41, 7));
  }
  EXPECT_NE(faked_segments(0.25, 41, 7), faked_segments(0.25, 41, 8));
  EXPECT_TRUE(faked_segments(0.5, 1, 7).empty());  // a single segment is the last one
}

TEST_P(CheatsTest, HonestProverPassesEverySegment) {
  EXPECT_TRUE(failing_segments(Cheat{}, 1).empty());
}

// The bar for false positives: 100 honest tasks, each from another
// model, trained at 1 thread and every segment re-executed at 2 (as a
// coordinator does), and not one segment fails.
TEST_P(CheatsTest, HundredHonestAuditedTasksHaveNoFalsePositive) {
  hyper_.local_steps = 4;
  params_.segment_steps = 2;
  train_threads_ = 1;
  verify_threads_ = 2;
  int false_positives = 0;
  for (uint64_t task = 100; task < 200; ++task) {
    model_ = fresh_model(GetParam(), task);
    false_positives += static_cast<int>(failing_segments(Cheat{}, task).size());
  }
  EXPECT_EQ(false_positives, 0);
}

TEST_P(CheatsTest, FakedSegmentsFailAndOnlyThey) {
  const Cheat cheat{CheatKind::kFakeSegments, 0.4};
  const std::vector<uint32_t> faked = faked_segments(0.4, kSegments, kSeed ^ 2);
  ASSERT_EQ(faked.size(), 2u);
  EXPECT_EQ(failing_segments(cheat, 2), std::set<uint32_t>(faked.begin(), faked.end()));
}

TEST_P(CheatsTest, CheatsOnEveryStepFailEverySegment) {
  for (CheatKind kind : {CheatKind::kSkipHalf, CheatKind::kShortSegments, CheatKind::kLearningRate,
                         CheatKind::kBatchOrder, CheatKind::kBf16States, CheatKind::kForgedMomentum,
                         CheatKind::kNoTraining, CheatKind::kRandomUpdate}) {
    const Cheat cheat{kind, 0.5};
    SCOPED_TRACE(cheat_name(cheat));
    EXPECT_EQ(failing_segments(cheat, 3), all_segments());
  }
}

TEST_P(CheatsTest, ReplayIsHonestOnceThenFails) {
  const Cheat cheat{CheatKind::kReplayUpdate, 0.5};
  at::Tensor first, second;
  EXPECT_TRUE(failing_segments(cheat, 4, &first).empty());
  EXPECT_EQ(failing_segments(cheat, 5, &second), all_segments());
  EXPECT_TRUE(first.equal(second));
}

TEST_P(CheatsTest, NonFiniteUpdateCarriesNaN) {
  at::Tensor delta;
  const std::set<uint32_t> failing = failing_segments(Cheat{CheatKind::kNonFinite, 0.5}, 6, &delta);
  EXPECT_EQ(failing, std::set<uint32_t>{kSegments});  // only the update check of the last segment sees it
  EXPECT_FALSE(all_finite(delta));
}

INSTANTIATE_TEST_SUITE_P(Models, CheatsTest, ::testing::Values("mlp", std::string(kTorchScriptModelName)),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace cohort
