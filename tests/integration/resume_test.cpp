// A coordinator restarted with --resume continues the job where its last
// checkpoint left it: the round numbers go on, the model is the saved one,
// and centered clipping starts from the saved previous aggregate.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace cohort::testing {
namespace {

std::string job(const ScratchDir& dir, int rounds, const std::string& model = "cnn") {
  return R"(
[job]
rounds = )" + std::to_string(rounds) + R"(
output_dir = ")" + (dir.path() / "out").string() + R"("
[model]
name = ")" + model + R"("
[data]
eval_samples = 500
[training]
local_steps = 10
[aggregation]
rule = "centered-clipping"
[aggregation.params]
tau = 1.0
[round]
min_workers = 1
[network]
listen = "ipc://)" + (dir.path() / "coordinator.sock").string() + R"("
)";
}

int run_job(const ScratchDir& dir, const std::string& name, bool resume) {
  std::vector<std::string> args = {"coordinator", "--config", (dir.path() / "job.toml").string()};
  if (resume) args.push_back("--resume");
  CohortProcess coordinator(args, dir.path() / (name + ".out"), dir.path() / (name + ".err"));
  CohortProcess worker({"worker", "--coordinator", "ipc://" + (dir.path() / "coordinator.sock").string(),
                        "--coordinator-key", coordinator_key(dir.path() / "out"), "--threads", "1", "--idle-timeout", "60", "--state-dir", (dir.path() / "w").string()},
                       dir.path() / (name + "-worker.out"), dir.path() / (name + "-worker.err"));
  return coordinator.wait(std::chrono::seconds(240)).value_or(-1);
}

TEST(Resume, ContinuesTheRoundsWithTheSavedModelAndAggregatorState) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job(dir, 2));
  ASSERT_EQ(run_job(dir, "first", false), 0);
  write_file(dir.path() / "job.toml", job(dir, 4));
  ASSERT_EQ(run_job(dir, "second", true), 0);

  std::vector<int> rounds;
  for (const auto& line : read_lines(dir.path() / "out" / "metrics.jsonl")) {
    rounds.push_back(nlohmann::json::parse(line)["round"].get<int>());
  }
  EXPECT_EQ(rounds, (std::vector<int>{1, 2, 3, 4}));
  std::ifstream log(dir.path() / "second.err");
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("resuming after round 2"), std::string::npos) << text;
  EXPECT_NE(text.find("with the aggregator's state"), std::string::npos) << text;
}

TEST(Resume, RefusesACheckpointOfAnotherModelOrNoneAtAll) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", job(dir, 1));
  CohortProcess nothing({"coordinator", "--config", (dir.path() / "job.toml").string(), "--resume"},
                        dir.path() / "n.out", dir.path() / "n.err");
  EXPECT_EQ(nothing.wait(std::chrono::seconds(60)).value_or(-1), 2);
  EXPECT_NE(nothing.stderr_text().find("cannot open checkpoint"), std::string::npos) << nothing.stderr_text();

  ASSERT_EQ(run_job(dir, "first", false), 0);
  write_file(dir.path() / "job.toml", job(dir, 2, "mlp"));
  CohortProcess other({"coordinator", "--config", (dir.path() / "job.toml").string(), "--resume"},
                      dir.path() / "o.out", dir.path() / "o.err");
  EXPECT_EQ(other.wait(std::chrono::seconds(60)).value_or(-1), 2);
  EXPECT_NE(other.stderr_text().find("holds a 'cnn' model"), std::string::npos) << other.stderr_text();
}

}  // namespace
}  // namespace cohort::testing
