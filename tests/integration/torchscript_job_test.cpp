// A researcher's TorchScript model ([model] path) through real processes: the
// coordinator checks the archive and ships it to each worker once (cached in
// the worker's state directory, reused after a restart); honest workers are
// audited and pass while accuracy rises, a cheater is caught; a worker that
// was not given the archive refuses it; `cohort simulate` ends bit for bit
// where the processes do; and every archive the coordinator must refuse is
// refused at start with the problem named.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ATen/ATen.h>

#include <cstdlib>

#include "cohort/coordinator.h"
#include "harness.h"
#include "support/torchscript_fixtures.h"

namespace cohort::testing {
namespace {

std::string job_text(const std::filesystem::path& out, const std::filesystem::path& model, const std::string& listen,
                     int rounds, int min_updates, const std::string& loss = "cross-entropy") {
  return R"(
[job]
rounds = )" + std::to_string(rounds) + R"(
seed = 11
output_dir = ")" + out.string() + R"("
[model]
path = ")" + model.string() + R"("
[data]
eval_samples = 1000
[training]
local_steps = 30
loss = ")" + loss + R"("
[round]
min_workers = 2
min_updates = )" + std::to_string(min_updates) + R"(
registration_timeout_seconds = 20
[network]
listen = ")" + listen + R"("
[proof]
segment_steps = 10
audit_probability = 1.0
segments_per_audit = 1
[ledger]
reward_per_round = 10
registration_grant = 1000
)";
}

struct JobRun {
  int coordinator_exit = -1;
  std::string coordinator_log;
  std::vector<std::string> worker_logs;
  std::vector<nlohmann::json> rounds;
};

// A job on small.pt with two worker processes, each given `flags[i]`,
// their state in dir/w<i>.
JobRun run_job(const ScratchDir& dir, const std::string& name, int rounds,
               const std::vector<std::vector<std::string>>& flags, int min_updates = 2,
               const std::string& model = "small.pt", const std::string& loss = "cross-entropy") {
  const std::string socket = "ipc://" + (dir.path() / (name + ".sock")).string();
  const std::filesystem::path out = dir.path() / name;
  write_file(dir.path() / (name + ".toml"),
             job_text(out, torchscript_fixture(model), socket, rounds, min_updates, loss));
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / (name + ".toml")).string()},
                            dir.path() / (name + ".c.out"), dir.path() / (name + ".c.err"));
  const std::string key = coordinator_key(out);
  EXPECT_FALSE(key.empty()) << coordinator.stderr_text();
  std::vector<std::unique_ptr<CohortProcess>> workers;
  for (size_t i = 0; i < flags.size(); ++i) {
    const std::string w = "w" + std::to_string(i);
    std::vector<std::string> args = {"worker", "--coordinator", socket, "--coordinator-key", key, "--threads", "1",
                                     "--state-dir", (dir.path() / w).string(), "--idle-timeout", "60"};
    args.insert(args.end(), flags[i].begin(), flags[i].end());
    workers.push_back(std::make_unique<CohortProcess>(args, dir.path() / (name + "." + w + ".out"),
                                                      dir.path() / (name + "." + w + ".err")));
  }
  JobRun run;
  run.coordinator_exit = coordinator.wait(std::chrono::seconds(300)).value_or(-1);
  run.coordinator_log = coordinator.stderr_text();
  for (auto& worker : workers) {
    worker->wait(std::chrono::seconds(60));
    run.worker_logs.push_back(worker->stderr_text());
  }
  for (const auto& line : read_lines(out / "metrics.jsonl")) run.rounds.push_back(nlohmann::json::parse(line));
  return run;
}

size_t count_of(const std::string& text, std::string_view what) {
  size_t count = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++count;
  return count;
}

std::string archive_hex() { return to_hex(torchscript_source().archive_digest); }

TEST(TorchScriptJob, AnAuditedJobShipsTheArchiveOnceAndAccuracyRises) {
  ScratchDir dir;
  const JobRun run = run_job(dir, "first", 3, {{"--accept-models"}, {"--accept-models"}});
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 3u);
  for (const auto& round : run.rounds) {
    EXPECT_EQ(round["accepted"], 2) << round.dump();
    EXPECT_EQ(round["audited"], 2);
    EXPECT_EQ(round["audits_failed"], 0) << run.coordinator_log;
  }
  EXPECT_GT(run.rounds[2]["test_accuracy"].get<double>(), run.rounds[0]["test_accuracy"].get<double>());
  EXPECT_GT(run.rounds[2]["test_accuracy"].get<double>(), 0.7);
  EXPECT_NE(run.coordinator_log.find("model: TorchScript archive"), std::string::npos);
  // Once per worker, not once per task.
  EXPECT_EQ(count_of(run.coordinator_log, "sending model archive"), 2u) << run.coordinator_log;
  for (int w = 0; w < 2; ++w) {
    EXPECT_TRUE(std::filesystem::exists(dir.path() / ("w" + std::to_string(w)) / "models" / (archive_hex() + ".pt")));
    EXPECT_EQ(count_of(run.worker_logs[w], "received model archive"), 1u) << run.worker_logs[w];
  }

  // The same workers (same state directories) in a new job: the cache serves.
  const JobRun again = run_job(dir, "second", 1, {{"--accept-models"}, {"--accept-models"}});
  ASSERT_EQ(again.coordinator_exit, 0) << again.coordinator_log;
  EXPECT_EQ(count_of(again.coordinator_log, "sending model archive"), 0u) << again.coordinator_log;
  EXPECT_EQ(again.rounds.at(0)["accepted"], 2);
}

TEST(TorchScriptJob, AWorkerNotGivenTheArchiveRefusesItsTasksWithoutFetchingIt) {
  ScratchDir dir;
  const JobRun run =
      run_job(dir, "job", 1, {{"--models-from", torchscript_fixture("small.pt").string()}, {}}, /*min_updates=*/1);
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 1u);
  EXPECT_EQ(run.rounds[0]["accepted"], 1);
  EXPECT_EQ(count_of(run.coordinator_log, "sending model archive"), 0u) << run.coordinator_log;
  EXPECT_NE(run.worker_logs[1].find("the task's model archive " + archive_hex() + " is not among --models-from"),
            std::string::npos)
      << run.worker_logs[1];
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "w1" / "models"));
}

TEST(TorchScriptJob, ACheaterIsCaughtOnATorchScriptModel) {
  ScratchDir dir;
  const JobRun run =
      run_job(dir, "job", 1, {{"--accept-models", "--cheat", "skip-half"}, {"--accept-models"}}, /*min_updates=*/1);
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 1u);
  EXPECT_EQ(run.rounds[0]["audits_failed"], 1) << run.coordinator_log;
  EXPECT_EQ(run.rounds[0]["accepted"], 1);
  EXPECT_GT(run.rounds[0]["slashed"].get<int64_t>(), 0);
}

// [training] loss reaches the workers in the signed task and the verifier's
// re-execution: a log_softmax model trained on nll passes its audits.
TEST(TorchScriptJob, AnNllJobOnLogProbabilitiesIsTrainedAndAudited) {
  ScratchDir dir;
  const JobRun run = run_job(dir, "nll", 2, {{"--accept-models"}, {"--accept-models"}}, 2, "log_probs.pt", "nll");
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 2u);
  for (const auto& round : run.rounds) {
    EXPECT_EQ(round["accepted"], 2);
    EXPECT_EQ(round["audits_failed"], 0) << run.coordinator_log;
  }
  EXPECT_GT(run.rounds[1]["test_accuracy"].get<double>(), 0.7);
  EXPECT_GT(run.rounds[1]["test_loss"].get<double>(), 0.0);  // nll of log-probabilities is positive
}

TEST(TorchScriptJob, SimulateEndsWithTheModelTheProcessesTrain) {
  ScratchDir dir;
  const JobRun run = [&] {
    // As in simulate_test.cpp: the coordinator's aggregation on the kernels
    // the simulation runs.
    const ScopedEnv avx2("ATEN_CPU_CAPABILITY", "avx2");
    const ScopedEnv one_thread("OMP_NUM_THREADS", "1");
    return run_job(dir, "distributed", 2, {{"--accept-models"}, {"--accept-models"}});
  }();
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  write_file(dir.path() / "simulated.toml", job_text(dir.path() / "simulated", torchscript_fixture("small.pt"),
                                                     "tcp://127.0.0.1:1", 2, 2));
  const CommandRun simulate =
      run_cohort({"simulate", "--config", (dir.path() / "simulated.toml").string(), "--threads", "1"}, dir,
                 std::chrono::seconds(300));
  ASSERT_EQ(simulate.code, 0) << simulate.err;
  Result<Checkpoint> distributed = read_checkpoint(dir.path() / "distributed" / "model.ckpt");
  Result<Checkpoint> simulated = read_checkpoint(dir.path() / "simulated" / "model.ckpt");
  ASSERT_TRUE(distributed.ok() && simulated.ok());
  EXPECT_EQ(distributed->model_archive, torchscript_source().archive_digest);
  EXPECT_EQ(simulated->model_archive, distributed->model_archive);
  EXPECT_TRUE(at::equal(distributed->flat, simulated->flat))
      << "max difference " << (distributed->flat - simulated->flat).abs().max().item<double>();
}

// The README's three steps: examples/byom/model.py exports its residual
// network, and examples/byom/job.toml (shortened to one round) trains it.
TEST(TorchScriptJob, TheByomExampleExportsAndTrains) {
  ScratchDir dir;
  const std::filesystem::path example = std::filesystem::path(COHORT_SOURCE_DIR) / "examples" / "byom";
  const std::filesystem::path archive = dir.path() / "model.pt";
  const std::string exporting = std::string(COHORT_PYTHON) + " " + (example / "model.py").string() + " " +
                                archive.string() + " > " + (dir.path() / "export.log").string() + " 2>&1";
  ASSERT_EQ(std::system(exporting.c_str()), 0) << exporting;
  std::string job;
  for (const std::string& line : read_lines(example / "job.toml")) {
    if (line.starts_with("rounds")) {
      job += "rounds = 1\n";
    } else if (line.starts_with("output_dir")) {
      job += "output_dir = \"" + (dir.path() / "out").string() + "\"\n";
    } else if (line.starts_with("path")) {
      job += "path = \"" + archive.string() + "\"\n";
    } else {
      job += line + "\n";
    }
  }
  write_file(dir.path() / "job.toml", job);
  const CommandRun simulate = run_cohort({"simulate", "--config", (dir.path() / "job.toml").string(), "--json"},
                                         dir, std::chrono::seconds(300));
  ASSERT_EQ(simulate.code, 0) << simulate.err;
  const std::vector<std::string> rounds = read_lines(dir.path() / "out" / "metrics.jsonl");
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_GT(nlohmann::json::parse(rounds[0])["test_accuracy"].get<double>(), 0.6) << rounds[0];
}

// One coordinator start per archive it must refuse, each naming the problem.
TEST(TorchScriptJob, TheCoordinatorRefusesEachBadArchiveAtStart) {
  ScratchDir dir;
  std::vector<uint8_t> truncated = *torchscript_source().archive;
  truncated.resize(truncated.size() / 3);
  write_file(dir.path() / "truncated.pt", std::string(truncated.begin(), truncated.end()));
  write_file(dir.path() / "junk.pt", "not a model");
  const std::vector<std::pair<std::filesystem::path, std::string>> cases = {
      {dir.path() / "junk.pt", "not a TorchScript archive"},
      {dir.path() / "truncated.pt", "not a TorchScript archive"},
      {dir.path() / "absent.pt", "cannot read the model archive"},
      {torchscript_fixture("frozen.pt"), "the model has no trainable parameters"},
      {torchscript_fixture("float64.pt"), "parameter 'conv.weight' is Double, but Cohort trains float32 parameters"},
      {torchscript_fixture("wrong_input.pt"), "the forward pass fails on a batch of 8 samples [8, 1, 28, 28]"},
      {torchscript_fixture("wrong_shape.pt"),
       "the output for a batch of 8 samples is [8, 10, 2], but training needs [8, classes] outputs"},
      {torchscript_fixture("five_classes.pt"), "the output has 5 classes, but the data has labels up to 9"},
  };
  for (const auto& [model, problem] : cases) {
    SCOPED_TRACE(model.string());
    write_file(dir.path() / "job.toml",
               job_text(dir.path() / "out", model, "ipc://" + (dir.path() / "c.sock").string(), 1, 2));
    const CommandRun start = run_cohort({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir);
    EXPECT_NE(start.code, 0);
    EXPECT_NE(start.err.find(model.string() + ": " + problem), std::string::npos) << start.err;
  }
}

}  // namespace
}  // namespace cohort::testing
