// `cohort simulate` against the real thing: the same small job through a
// coordinator and worker processes, and through the in-process simulation,
// must end with the same model bit for bit. Workers and the simulation
// train with the same pinned kernels (use_deterministic_cpu_training); the
// coordinator, which pins them only for proof of learning, is started with
// ATEN_CPU_CAPABILITY=avx2 and OMP_NUM_THREADS=1 so that its aggregation
// runs the kernels the simulation's does on one thread: AVX-512 kernels and
// per-thread partial sums (the norms of clipping and NNM) move the last bit
// (3e-8 in this job otherwise).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>


#include "cohort/coordinator.h"
#include "harness.h"

namespace cohort::testing {
namespace {

// Three workers on a gamma partition, momentum kept across rounds, NNM and
// clipping before a trimmed mean, and one Byzantine row tuned against it.
std::string job_text(const std::filesystem::path& out, const std::string& listen, int rounds) {
  return R"(
[job]
rounds = )" + std::to_string(rounds) + R"(
seed = 7
output_dir = ")" + out.string() + R"("
[data]
eval_samples = 500
partition = "gamma"
gamma = 0.5
[training]
local_steps = 4
batch_size = 16
learning_rate = 0.1
weight_decay = 0.0001
keep_momentum = true
[aggregation]
pre = ["clip", "nnm"]
rule = "trimmed-mean"
f = 1
server_learning_rate = 0.5
[attack]
name = "optimal-alie"
byzantine = 1
[attack.params]
sign = "-"
evals = 6
[round]
min_workers = 3
min_updates = 3
[network]
listen = ")" + listen + "\"\n";
}

std::vector<nlohmann::json> metrics_of(const std::filesystem::path& out) {
  std::vector<nlohmann::json> rounds;
  for (const auto& line : read_lines(out / "metrics.jsonl")) rounds.push_back(nlohmann::json::parse(line));
  return rounds;
}

void run_distributed(const ScratchDir& dir, int rounds) {
  const ScopedEnv avx2("ATEN_CPU_CAPABILITY", "avx2");
  const ScopedEnv one_thread("OMP_NUM_THREADS", "1");
  const std::string socket = "ipc://" + (dir.path() / "coordinator.sock").string();
  write_file(dir.path() / "distributed.toml", job_text(dir.path() / "distributed", socket, rounds));
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "distributed.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  const std::string key = coordinator_key(dir.path() / "distributed");
  ASSERT_FALSE(key.empty()) << coordinator.stderr_text();
  std::vector<std::unique_ptr<CohortProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    workers.push_back(std::make_unique<CohortProcess>(
        std::vector<std::string>{"worker", "--coordinator", socket, "--threads", "1", "--coordinator-key", key},
        dir.path() / ("w" + std::to_string(i) + ".out"), dir.path() / ("w" + std::to_string(i) + ".err")));
  }
  ASSERT_EQ(coordinator.wait(std::chrono::seconds(300)).value_or(-1), 0) << coordinator.stderr_text();
}

int run_simulated(const ScratchDir& dir, int rounds, const std::vector<std::string>& flags) {
  write_file(dir.path() / "simulated.toml", job_text(dir.path() / "simulated", "tcp://127.0.0.1:1", rounds));
  std::vector<std::string> args = {"simulate", "--config", (dir.path() / "simulated.toml").string()};
  args.insert(args.end(), flags.begin(), flags.end());
  CohortProcess simulate(args, dir.path() / "simulate.out", dir.path() / "simulate.err");
  const int code = simulate.wait(std::chrono::seconds(300)).value_or(-1);
  EXPECT_EQ(code, 0) << simulate.stderr_text();
  return code;
}

TEST(Simulate, EndsWithTheSameModelAsCoordinatorAndWorkers) {
  ScratchDir dir;
  run_distributed(dir, 2);
  ASSERT_EQ(run_simulated(dir, 2, {"--threads", "1"}), 0);

  Result<Checkpoint> distributed = read_checkpoint(dir.path() / "distributed" / "model.ckpt");
  Result<Checkpoint> simulated = read_checkpoint(dir.path() / "simulated" / "model.ckpt");
  ASSERT_TRUE(distributed.ok()) << distributed.status().to_string();
  ASSERT_TRUE(simulated.ok()) << simulated.status().to_string();
  EXPECT_EQ(simulated->round, 2u);
  EXPECT_TRUE(at::equal(distributed->flat, simulated->flat))
      << "max difference " << (distributed->flat - simulated->flat).abs().max().item<double>();
  EXPECT_TRUE(at::equal(distributed->previous_aggregate, simulated->previous_aggregate));

  const auto expected = metrics_of(dir.path() / "distributed");
  const auto got = metrics_of(dir.path() / "simulated");
  ASSERT_EQ(expected.size(), 2u);
  ASSERT_EQ(got.size(), 2u);
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(got[r]["test_accuracy"], expected[r]["test_accuracy"]) << "round " << r + 1;
    EXPECT_EQ(got[r]["byzantine_weight"], expected[r]["byzantine_weight"]) << "round " << r + 1;
    EXPECT_EQ(got[r]["worker_weights"], expected[r]["worker_weights"]) << "round " << r + 1;
  }
}

TEST(Simulate, EvaluatesEveryKRoundsAndAfterTheLast) {
  ScratchDir dir;
  ASSERT_EQ(run_simulated(dir, 3, {"--eval-every", "2", "--json"}), 0);
  const auto rounds = metrics_of(dir.path() / "simulated");
  ASSERT_EQ(rounds.size(), 3u);
  EXPECT_TRUE(rounds[0]["test_accuracy"].is_null());
  EXPECT_TRUE(rounds[1]["test_accuracy"].is_number());
  EXPECT_TRUE(rounds[2]["test_accuracy"].is_number());
  for (const auto& round : rounds) EXPECT_EQ(round["byzantine"], 1);
}

// A simulation is a job like any other: one instance per output directory.
TEST(Simulate, RefusesAnOutputDirectoryAnotherJobHolds) {
  ScratchDir dir;
  write_file(dir.path() / "simulated.toml", job_text(dir.path() / "simulated", "tcp://127.0.0.1:1", 1));
  Result<JobConfig> config = load_job_config(dir.path() / "simulated.toml");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  Result<FileLock> held = lock_job(*config);
  ASSERT_TRUE(held.ok()) << held.status().to_string();
  CohortProcess simulate({"simulate", "--config", (dir.path() / "simulated.toml").string()}, dir.path() / "s.out",
                         dir.path() / "s.err");
  EXPECT_EQ(simulate.wait(std::chrono::seconds(60)).value_or(-1), 2);
  EXPECT_NE(simulate.stderr_text().find("is in use by"), std::string::npos) << simulate.stderr_text();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "simulated" / "metrics.jsonl"));
}

TEST(Simulate, RefusesBadOptionsAndConfigs) {
  ScratchDir dir;
  CohortProcess no_eval({"simulate", "--config", "x.toml", "--eval-every", "0"}, dir.path() / "a.out",
                        dir.path() / "a.err");
  EXPECT_EQ(no_eval.wait(std::chrono::seconds(60)).value_or(-1), 2);
  EXPECT_NE(no_eval.stderr_text().find("--eval-every must be >= 1"), std::string::npos);

  write_file(dir.path() / "bad.toml", "[attack]\nname = \"label-flip\"\nbyzantine = 1\n");
  CohortProcess bad_attack({"simulate", "--config", (dir.path() / "bad.toml").string()}, dir.path() / "b.out",
                           dir.path() / "b.err");
  EXPECT_EQ(bad_attack.wait(std::chrono::seconds(60)).value_or(-1), 2);
  EXPECT_NE(bad_attack.stderr_text().find("unknown attack 'label-flip'"), std::string::npos)
      << bad_attack.stderr_text();
}

}  // namespace
}  // namespace cohort::testing
