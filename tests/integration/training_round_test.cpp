// A real job: one coordinator process and three worker processes on
// loopback (ipc), two rounds of FedAvg on Fashion-MNIST shards.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cohort/coordinator.h"
#include "harness.h"

namespace cohort::testing {
namespace {

std::string job_toml(const std::filesystem::path& dir) {
  return R"(
[job]
name = "integration"
seed = 7
rounds = 2
output_dir = ")" + (dir / "out").string() + R"("

[model]
name = "cnn"

[data]
partition = "iid"
eval_samples = 2000

[training]
local_steps = 40
batch_size = 32
learning_rate = 0.05
momentum = 0.9

[round]
min_workers = 3
min_updates = 3
deadline_seconds = 120
registration_timeout_seconds = 120

[network]
listen = "ipc://)" + (dir / "coordinator.sock").string() + R"("
)";
}

TEST(TrainingRound, ThreeWorkerProcessesTrainTwoRoundsAndAccuracyRises) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job_toml(dir.path()));
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string(), "--json"},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  ASSERT_TRUE(coordinator.started());
  const std::string key = coordinator_key(dir.path() / "out");
  ASSERT_FALSE(key.empty()) << coordinator.stderr_text();
  std::vector<std::unique_ptr<CohortProcess>> workers;
  for (int i = 0; i < 3; ++i) {
    const std::string name = "worker" + std::to_string(i);
    workers.push_back(std::make_unique<CohortProcess>(
        std::vector<std::string>{"worker", "--coordinator",
                                 "ipc://" + (dir.path() / "coordinator.sock").string(),
                                 "--coordinator-key", key, "--threads", "1", "--idle-timeout", "120"},
        dir.path() / (name + ".out"), dir.path() / (name + ".err")));
  }

  auto code = coordinator.wait(std::chrono::seconds(300));
  ASSERT_TRUE(code.has_value()) << "coordinator did not finish:\n" << coordinator.stderr_text();
  ASSERT_EQ(*code, 0) << coordinator.stderr_text();
  for (auto& worker : workers) {
    auto worker_code = worker->wait(std::chrono::seconds(30));
    ASSERT_TRUE(worker_code.has_value());
    EXPECT_EQ(*worker_code, 0) << worker->stderr_text();
    EXPECT_NE(worker->stderr_text().find("the job is complete"), std::string::npos)
        << worker->stderr_text();
  }

  // metrics.jsonl holds one line per round, and --json printed the same.
  auto lines = read_lines(dir.path() / "out" / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  auto round1 = nlohmann::json::parse(lines[0]);
  auto round2 = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(round1["round"], 1);
  EXPECT_EQ(round2["round"], 2);
  for (const auto& round : {round1, round2}) {
    EXPECT_EQ(round["participants"], 3);
    EXPECT_EQ(round["accepted"], 3);
    EXPECT_EQ(round["rejected"], 0);
    EXPECT_TRUE(round["model_updated"].get<bool>());
    EXPECT_GT(round["bytes_in"].get<uint64_t>(), 3u * 431080u * 4u);
    EXPECT_GT(round["bytes_out"].get<uint64_t>(), 3u * 431080u * 4u);
    EXPECT_GE(round["seconds"]["total"].get<double>(), round["seconds"]["collect"].get<double>());
    // The coordinator thread's CPU: some for decoding three updates and
    // evaluating, never more than the wall-clock time of its phase.
    for (const char* phase : {"announce", "collect", "aggregate", "evaluate", "checkpoint", "total"}) {
      EXPECT_GE(round["cpu_seconds"][phase].get<double>(), 0.0) << phase;
      EXPECT_LE(round["cpu_seconds"][phase].get<double>(), round["seconds"][phase].get<double>() + 1e-3) << phase;
    }
    EXPECT_GT(round["cpu_seconds"]["evaluate"].get<double>(), 0.0);
  }
  // An untrained 10-class model scores about 0.1.
  EXPECT_GT(round1["test_accuracy"].get<double>(), 0.3);
  EXPECT_GT(round2["test_accuracy"].get<double>(), round1["test_accuracy"].get<double>());
  EXPECT_EQ(read_lines(dir.path() / "coordinator.out"), lines);

  auto checkpoint = read_checkpoint(dir.path() / "out" / "model.ckpt");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  EXPECT_EQ(checkpoint->round, 2u);
  EXPECT_EQ(checkpoint->model_name, "cnn");
}

}  // namespace
}  // namespace cohort::testing
