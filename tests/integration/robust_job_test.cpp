// Robust jobs end to end: a pre-aggregator and a robust rule against a
// simulated Byzantine update, worker momentum kept across rounds, and
// FLTrust with the coordinator's own root update.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace cohort::testing {
namespace {

// Runs a 2-round job with 3 worker processes; returns metrics.jsonl.
std::vector<nlohmann::json> run_job(const ScratchDir& dir, const std::string& aggregation,
                                    const std::string& extra = "") {
  const std::string socket = "ipc://" + (dir.path() / "coordinator.sock").string();
  write_file(dir.path() / "job.toml", R"(
[job]
rounds = 2
seed = 3
output_dir = ")" + (dir.path() / "out").string() + R"("
[data]
eval_samples = 2000
[training]
local_steps = 40
keep_momentum = true
[round]
min_workers = 3
min_updates = 3
[network]
listen = ")" + socket + "\"\n" + aggregation + extra);
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  const std::string key = coordinator_key(dir.path() / "out");
  EXPECT_FALSE(key.empty()) << coordinator.stderr_text();
  std::vector<std::unique_ptr<CohortProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<CohortProcess>(
        std::vector<std::string>{"worker", "--coordinator", socket, "--coordinator-key", key, "--threads", "1"},
        dir.path() / ("w" + std::to_string(i) + ".out"), dir.path() / ("w" + std::to_string(i) + ".err")));
  }
  EXPECT_EQ(coordinator.wait(std::chrono::seconds(300)).value_or(-1), 0) << coordinator.stderr_text();
  std::vector<nlohmann::json> rounds;
  for (const auto& line : read_lines(dir.path() / "out" / "metrics.jsonl")) {
    rounds.push_back(nlohmann::json::parse(line));
  }
  return rounds;
}

TEST(RobustJob, TrimmedMeanDiscardsASimulatedLargeNormAttackerEveryRound) {
  ScratchDir dir;
  auto rounds = run_job(dir, R"(
[aggregation]
pre = ["clip"]
rule = "trimmed-mean"
f = 1
[aggregation.params]
c = 5.0
[attack]
name = "large-norm"
byzantine = 1
)");
  ASSERT_EQ(rounds.size(), 2u);
  for (const auto& round : rounds) {
    EXPECT_EQ(round["byzantine"], 1);
    EXPECT_EQ(round["accepted"], 3);
    // Clipped to norm 5 it is still the extreme value at every coordinate,
    // so trimming removes it everywhere.
    EXPECT_LT(round["byzantine_weight"].get<double>(), 0.05);
    double honest = 0.0;
    for (const auto& w : round["worker_weights"]) honest += w["weight"].get<double>();
    EXPECT_NEAR(honest + round["byzantine_weight"].get<double>(), 1.0, 1e-9);
  }
  EXPECT_GT(rounds[1]["test_accuracy"].get<double>(), 0.5);
}

TEST(RobustJob, PlainMeanIsCapturedByOneNoisyAttacker) {
  ScratchDir dir;
  auto rounds = run_job(dir, R"(
[aggregation]
rule = "mean"
[attack]
name = "gaussian"
byzantine = 1
[attack.params]
sigma = 10.0
)");
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_NEAR(rounds[0]["byzantine_weight"].get<double>(), 0.25, 1e-9);
  EXPECT_LT(rounds[1]["test_accuracy"].get<double>(), 0.3);  // the model is destroyed
}

TEST(RobustJob, FLTrustUsesTheCoordinatorsRootUpdate) {
  ScratchDir dir;
  auto rounds = run_job(dir, R"(
[aggregation]
rule = "fltrust"
root_samples = 256
)");
  ASSERT_EQ(rounds.size(), 2u);
  for (const auto& round : rounds) EXPECT_TRUE(round["model_updated"].get<bool>());
  EXPECT_GT(rounds[1]["test_accuracy"].get<double>(), 0.5);
}

}  // namespace
}  // namespace cohort::testing
