// The `cohort` command line: exit codes and messages a user sees.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/cuda.h>

#include "harness.h"

namespace cohort::testing {
namespace {

TEST(Cli, UnknownCommandIsAUsageError) {
  ScratchDir dir;
  CommandRun run = run_cohort({"frobnicate"}, dir);
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("unknown command 'frobnicate'"), std::string::npos) << run.err;
}

TEST(Cli, CoordinatorRejectsABadConfigNamingTheKey) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", "[training]\nbach_size = 32\n");
  CommandRun run = run_cohort({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir);
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("training.bach_size"), std::string::npos) << run.err;
}

TEST(Cli, CoordinatorRejectsAnUnknownAggregationRule) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", "[aggregation]\nrule = \"nope\"\n");
  CommandRun run = run_cohort({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir);
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("unknown aggregation rule 'nope'"), std::string::npos) << run.err;
}

TEST(Cli, WorkerAskedForCudaWithoutCudaFailsClearly) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has CUDA";
  ScratchDir dir;
  CommandRun run = run_cohort({"worker", "--no-curve", "--device", "cuda:0", "--idle-timeout", "1"}, dir);
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("CUDA is not available"), std::string::npos) << run.err;
}

TEST(Cli, WorkerWithMissingDataNamesTheFile) {
  ScratchDir dir;
  CommandRun run = run_cohort({"worker", "--no-curve", "--images", "/nonexistent/images.gz", "--labels",
                        "/nonexistent/labels.gz", "--idle-timeout", "1"},
                       dir);
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("/nonexistent/images.gz"), std::string::npos) << run.err;
}

TEST(Cli, WorkerWithoutTheCoordinatorKeyExplainsWhereToFindIt) {
  ScratchDir dir;
  CommandRun run = run_cohort({"worker", "--idle-timeout", "1"}, dir);
  EXPECT_EQ(run.code, 2);
  EXPECT_NE(run.err.find("pass --coordinator-key"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find("coordinator.pub"), std::string::npos) << run.err;
}

TEST(Cli, DemoEndsWithAJsonSummaryLine) {
  ScratchDir dir;
  CommandRun run = run_cohort({"demo", "--workers", "2", "--rounds", "1", "--local-epochs", "0.02",
                        "--output-dir", (dir.path() / "demo").string(), "--json"},
                       dir, std::chrono::seconds(300));
  ASSERT_EQ(run.code, 0) << run.err;
  std::string last = run.out.substr(run.out.find_last_of('{'));
  auto summary = nlohmann::json::parse(last);
  EXPECT_EQ(summary["rounds"], 1);
  EXPECT_EQ(summary["workers"], 2);
  EXPECT_GT(summary["test_accuracy"].get<double>(), 0.3);
  EXPECT_GT(summary["train_seconds"].get<double>(), 0.0);
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "demo" / "model.ckpt"));
}

}  // namespace
}  // namespace cohort::testing
