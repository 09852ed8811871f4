// Crash safety, case by case: a SIGTERM'd coordinator stops with a
// checkpoint and a verified ledger, and its restart ends with the model an
// undisturbed run ends with; a torn or missing metrics.jsonl line is
// repaired on restart; a restart refuses another job's checkpoint; a
// SIGTERM'd worker leaves after its current task and is not slashed.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <numeric>

#include "cohort/coordinator.h"
#include "cohort/ledger.h"
#include "cohort/models.h"
#include "harness.h"

namespace cohort::testing {
namespace {

std::string proof_job(const std::filesystem::path& out, const std::string& socket, int rounds, int workers) {
  return R"(
[job]
name = "crash"
rounds = )" + std::to_string(rounds) + R"(
seed = 11
output_dir = ")" + out.string() + R"("
[model]
name = "mlp"
[data]
eval_samples = 1000
[training]
local_steps = 40
[round]
min_workers = )" + std::to_string(workers) + R"(
deadline_seconds = 60
registration_timeout_seconds = 60
[network]
listen = ")" + socket + R"("
[proof]
segment_steps = 10
audit_probability = 0.5
segments_per_audit = 1
[ledger]
key = ")" + (out.parent_path() / "coordinator.key").string() + R"("
reward_per_round = 10
registration_grant = 1000
)";
}

// The processes of one job in `dir`: its coordinator and workers w0, w1...
// with keys made once, so that a restarted worker is the same account.
class Job {
 public:
  Job(const std::filesystem::path& dir, int workers, int rounds)
      : dir_(dir), socket_("ipc://" + (dir / "coordinator.sock").string()), workers_(workers) {
    write_file(dir / "job.toml", proof_job(dir / "out", socket_, rounds, workers));
    keygen(dir / "coordinator.key");
    for (int i = 0; i < workers; ++i) keygen(key(i));
  }

  std::unique_ptr<CohortProcess> coordinator(const std::string& name) const {
    return std::make_unique<CohortProcess>(std::vector<std::string>{"coordinator", "--config", (dir_ / "job.toml").string()},
                                           dir_ / (name + ".out"), dir_ / (name + ".err"));
  }
  std::unique_ptr<CohortProcess> worker(int i, const std::string& name) const {
    return std::make_unique<CohortProcess>(
        std::vector<std::string>{"worker", "--coordinator", socket_, "--coordinator-key",
                                 (dir_ / "coordinator.pub").string(), "--threads", "1", "--key", key(i).string(),
                                 "--state-dir", (dir_ / ("w" + std::to_string(i))).string(), "--idle-timeout", "120"},
        dir_ / (name + ".out"), dir_ / (name + ".err"));
  }
  std::vector<std::unique_ptr<CohortProcess>> all_workers(const std::string& name) const {
    std::vector<std::unique_ptr<CohortProcess>> out;
    for (int i = 0; i < workers_; ++i) out.push_back(worker(i, name + "-w" + std::to_string(i)));
    return out;
  }

  std::filesystem::path out() const { return dir_ / "out"; }
  std::vector<nlohmann::json> metrics() const {
    std::vector<nlohmann::json> rounds;
    for (const auto& line : read_lines(out() / "metrics.jsonl")) rounds.push_back(nlohmann::json::parse(line));
    return rounds;
  }
  int verify_ledger() const {
    CohortProcess verify({"ledger", "verify", (out() / "ledger.db").string()}, dir_ / "verify.out",
                         dir_ / "verify.err");
    return verify.wait(std::chrono::seconds(60)).value_or(-1);
  }

 private:
  std::filesystem::path key(int i) const { return dir_ / ("w" + std::to_string(i) + ".key"); }
  void keygen(const std::filesystem::path& path) const {
    CohortProcess keygen({"keygen", "--out", path.string()}, dir_ / "keygen.out", dir_ / "keygen.err");
    EXPECT_EQ(keygen.wait(std::chrono::seconds(30)), 0);
  }

  std::filesystem::path dir_;
  std::string socket_;
  int workers_;
};

std::vector<int> rounds_of(const std::vector<nlohmann::json>& metrics) {
  std::vector<int> rounds;
  for (const auto& line : metrics) rounds.push_back(line["round"].get<int>());
  return rounds;
}

bool wait_for_metrics_lines(const Job& job, size_t lines, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (read_lines(job.out() / "metrics.jsonl").size() >= lines) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// SIGTERM during the job: the coordinator abandons the round it is
// collecting (voiding what is open), says Bye, and exits 0 with a checkpoint
// and a ledger that verifies. Started again with the same command it
// resumes, runs the abandoned round again with the same workers, and ends
// with exactly the model of a run that was never interrupted (training,
// aggregation and the workers' indices are all deterministic).
TEST(CrashSafety, SigtermStopsCleanlyAndTheRestartEndsWithTheUndisturbedModel) {
  constexpr int kRounds = 5;
  ScratchDir undisturbed_dir;
  Job undisturbed(undisturbed_dir.path(), 2, kRounds);
  {
    auto coordinator = undisturbed.coordinator("coordinator");
    auto workers = undisturbed.all_workers("run");
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
  }

  ScratchDir dir;
  Job job(dir.path(), 2, kRounds);
  {
    auto coordinator = job.coordinator("first");
    auto workers = job.all_workers("first");
    ASSERT_TRUE(wait_for_metrics_lines(job, 1, std::chrono::seconds(240))) << coordinator->stderr_text();
    coordinator->send(SIGTERM);
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(120)), 0) << coordinator->stderr_text();
    EXPECT_NE(coordinator->stderr_text().find("stopped after round"), std::string::npos) << coordinator->stderr_text();
    for (auto& worker : workers) {
      EXPECT_EQ(worker->wait(std::chrono::seconds(60)), 0) << "workers are told Bye\n" << worker->stderr_text();
    }
  }
  const size_t stopped_after = job.metrics().size();
  ASSERT_LT(stopped_after, static_cast<size_t>(kRounds)) << "the stop came too late to test anything";
  Result<Checkpoint> checkpoint = read_checkpoint(job.out() / "model.ckpt");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  EXPECT_EQ(checkpoint->round, stopped_after);
  EXPECT_EQ(job.verify_ledger(), 0);

  {
    auto coordinator = job.coordinator("second");
    auto workers = job.all_workers("second");
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
    EXPECT_NE(coordinator->stderr_text().find("resuming after round " + std::to_string(stopped_after)),
              std::string::npos);
  }
  std::vector<int> expected(kRounds);
  std::iota(expected.begin(), expected.end(), 1);
  EXPECT_EQ(rounds_of(job.metrics()), expected);
  EXPECT_EQ(job.verify_ledger(), 0);

  Result<Checkpoint> resumed = read_checkpoint(job.out() / "model.ckpt");
  Result<Checkpoint> reference = read_checkpoint(undisturbed.out() / "model.ckpt");
  ASSERT_TRUE(resumed.ok() && reference.ok());
  EXPECT_EQ(resumed->round, static_cast<uint32_t>(kRounds));
  EXPECT_EQ(resumed->digest, reference->digest) << "the interrupted job ends with another model";
  EXPECT_EQ(job.metrics().back()["test_accuracy"], undisturbed.metrics().back()["test_accuracy"]);

  // Each round was paid once, over the work aggregated in it; what the stop
  // interrupted is voided with the reason.
  Result<LedgerContents> ledger = read_ledger(job.out() / "ledger.db");
  ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
  EXPECT_EQ(ledger->rounds.size(), static_cast<size_t>(kRounds));
  std::map<uint32_t, int> paid_tasks;
  for (const auto& [task_id, record] : ledger->submissions) {
    if (record.verdict == Verdict::kVoided) {
      EXPECT_NE(record.reason.find("interrupted: the coordinator stopped"), std::string::npos) << record.reason;
    } else {
      EXPECT_TRUE(record.verdict == Verdict::kPassed || record.verdict == Verdict::kUnaudited)
          << verdict_name(record.verdict) << ": " << record.reason;
      EXPECT_TRUE(ledger->rewards.contains(task_id));
      ++paid_tasks[record.submission.round];
    }
  }
  for (int round = 1; round <= kRounds; ++round) EXPECT_EQ(paid_tasks[static_cast<uint32_t>(round)], 2) << round;
}

// A crash between the checkpoint and the metrics line, and one in the middle
// of appending a line: the restart writes the missing line from the
// checkpoint and cuts the torn one off, and the job goes on.
TEST(CrashSafety, ATornOrMissingMetricsLineIsRepairedOnRestart) {
  ScratchDir dir;
  Job job(dir.path(), 1, 2);
  {
    auto coordinator = job.coordinator("first");
    auto workers = job.all_workers("first");
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
  }
  std::vector<std::string> lines = read_lines(job.out() / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const nlohmann::json round2 = nlohmann::json::parse(lines[1]);
  write_file(job.out() / "metrics.jsonl", lines[0] + "\n" + lines[1].substr(0, lines[1].size() / 2));

  write_file(dir.path() / "job.toml", proof_job(job.out(), "ipc://" + (dir.path() / "coordinator.sock").string(), 3, 1));
  {
    auto coordinator = job.coordinator("second");
    auto workers = job.all_workers("second");
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
    EXPECT_NE(coordinator->stderr_text().find("round 2's line written from the checkpoint"), std::string::npos)
        << coordinator->stderr_text();
  }
  std::vector<nlohmann::json> metrics = job.metrics();  // every line parses
  EXPECT_EQ(rounds_of(metrics), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(metrics[1]["test_accuracy"], round2["test_accuracy"]);
  EXPECT_EQ(metrics[1]["paid"], round2["paid"]);
  EXPECT_EQ(metrics[1]["audited"], round2["audited"]);
  EXPECT_EQ(job.verify_ledger(), 0);
}

// Without --resume or --fresh a coordinator resumes only its own job.
TEST(CrashSafety, ARestartRefusesTheCheckpointOfAnotherJob) {
  ScratchDir dir;
  Job job(dir.path(), 1, 2);
  std::filesystem::create_directories(job.out());
  Result<std::unique_ptr<Model>> model = Model::create("mlp", 1);
  ASSERT_TRUE(model.ok());
  Checkpoint other;
  other.round = 1;
  other.model_name = "mlp";
  other.layout = (*model)->layout();
  other.flat = (*model)->flat_parameters();
  other.digest = digest_of(other.layout, other.flat);
  other.job_name = "another-job";
  other.job_seed = 11;
  ASSERT_TRUE(write_checkpoint(job.out() / "model.ckpt", other).ok());
  auto coordinator = job.coordinator("refused");
  EXPECT_EQ(coordinator->wait(std::chrono::seconds(60)), 2);
  EXPECT_NE(coordinator->stderr_text().find("belongs to job 'another-job'"), std::string::npos)
      << coordinator->stderr_text();
}

// SIGTERM to a worker: it trains no new task, stays for the result of the
// update it sent (an audit may still challenge it), says Bye and exits 0;
// it is never slashed and the job goes on with the other worker.
TEST(CrashSafety, ASigtermedWorkerLeavesAfterItsCurrentTaskUnharmed) {
  ScratchDir dir;
  Job job(dir.path(), 2, 6);
  auto coordinator = job.coordinator("coordinator");
  auto workers = job.all_workers("run");
  ASSERT_TRUE(wait_for_metrics_lines(job, 1, std::chrono::seconds(240))) << coordinator->stderr_text();
  workers[0]->send(SIGTERM);
  ASSERT_EQ(workers[0]->wait(std::chrono::seconds(120)), 0) << workers[0]->stderr_text();
  EXPECT_NE(workers[0]->stderr_text().find("stopped on request"), std::string::npos) << workers[0]->stderr_text();
  ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
  EXPECT_EQ(job.verify_ledger(), 0);
  Result<LedgerContents> ledger = read_ledger(job.out() / "ledger.db");
  ASSERT_TRUE(ledger.ok());
  EXPECT_TRUE(ledger->slashes.empty());
  for (const auto& [task_id, record] : ledger->submissions) EXPECT_NE(record.verdict, Verdict::kFailed);
}

}  // namespace
}  // namespace cohort::testing
