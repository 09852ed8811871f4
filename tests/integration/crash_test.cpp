// Crash safety, case by case: a SIGTERM'd coordinator stops with a
// checkpoint and a verified ledger, and its restart ends with the model an
// undisturbed run ends with; a torn or missing metrics.jsonl line is
// repaired on restart; a restart refuses another job's checkpoint; a
// SIGTERM'd worker leaves after its current task and is not slashed; a
// worker killed between its update and its reveal reveals after its restart;
// with momentum carried from task to task, killed and restarted workers and
// coordinators continue it, so that nobody honest is slashed.
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

// What the crash cases vary in the job.
struct JobShape {
  int workers = 1;
  int rounds = 2;
  double audit_probability = 0.5;
  bool keep_momentum = false;
  std::filesystem::path ledger_path = {};  // empty: the job's own, in its output directory
};

std::string proof_job(const std::filesystem::path& out, const std::string& socket, const JobShape& shape) {
  return R"(
[job]
name = "crash"
rounds = )" + std::to_string(shape.rounds) + R"(
seed = 11
output_dir = ")" + out.string() + R"("
[model]
name = "mlp"
[data]
eval_samples = 1000
[training]
local_steps = 40
keep_momentum = )" + (shape.keep_momentum ? "true" : "false") + R"(
[round]
min_workers = )" + std::to_string(shape.workers) + R"(
deadline_seconds = 60
registration_timeout_seconds = 60
[network]
listen = ")" + socket + R"("
[proof]
segment_steps = 10
audit_probability = )" + std::to_string(shape.audit_probability) + R"(
segments_per_audit = 1
[ledger]
key = ")" + (out.parent_path() / "coordinator.key").string() + R"("
path = ")" + shape.ledger_path.string() + R"("
reward_per_round = 10
registration_grant = 1000
)";
}

// The processes of one job in `dir`: its coordinator and workers w0, w1...
// with keys made once, so that a restarted worker is the same account.
class Job {
 public:
  Job(const std::filesystem::path& dir, const JobShape& shape)
      : dir_(dir), socket_("ipc://" + (dir / "coordinator.sock").string()), workers_(shape.workers) {
    write_file(dir / "job.toml", proof_job(dir / "out", socket_, shape));
    keygen(dir / "coordinator.key");
    for (int i = 0; i < workers_; ++i) keygen(key(i));
  }

  std::unique_ptr<CohortProcess> coordinator(const std::string& name,
                                             const std::vector<std::string>& extra_args = {}) const {
    std::vector<std::string> args{"coordinator", "--config", (dir_ / "job.toml").string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return std::make_unique<CohortProcess>(args, dir_ / (name + ".out"), dir_ / (name + ".err"));
  }
  std::unique_ptr<CohortProcess> worker(int i, const std::string& name,
                                        const std::vector<std::string>& extra_args = {}) const {
    std::vector<std::string> args{"worker", "--coordinator", socket_, "--coordinator-key",
                                  (dir_ / "coordinator.pub").string(), "--threads", "1", "--key", key(i).string(),
                                  "--state-dir", (dir_ / ("w" + std::to_string(i))).string(), "--idle-timeout", "120"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    return std::make_unique<CohortProcess>(args, dir_ / (name + ".out"), dir_ / (name + ".err"));
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
  Job undisturbed(undisturbed_dir.path(), {.workers = 2, .rounds = kRounds});
  {
    auto coordinator = undisturbed.coordinator("coordinator");
    auto workers = undisturbed.all_workers("run");
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
  }

  ScratchDir dir;
  Job job(dir.path(), {.workers = 2, .rounds = kRounds});
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
  Job job(dir.path(), {.workers = 1, .rounds = 2});
  {
    auto coordinator = job.coordinator("first");
    auto workers = job.all_workers("first");
    ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
  }
  std::vector<std::string> lines = read_lines(job.out() / "metrics.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const nlohmann::json round2 = nlohmann::json::parse(lines[1]);
  write_file(job.out() / "metrics.jsonl", lines[0] + "\n" + lines[1].substr(0, lines[1].size() / 2));

  write_file(dir.path() / "job.toml",
             proof_job(job.out(), "ipc://" + (dir.path() / "coordinator.sock").string(), {.workers = 1, .rounds = 3}));
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
  Job job(dir.path(), {.workers = 1, .rounds = 2});
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
  Job job(dir.path(), {.workers = 2, .rounds = 6});
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

// The ledger verdicts of `worker`'s submissions, by task id.
std::map<uint64_t, Verdict> verdicts_of(const LedgerContents& ledger, const PublicKey& worker) {
  std::map<uint64_t, Verdict> verdicts;
  for (const auto& [task_id, record] : ledger.submissions) {
    if (record.submission.worker == worker) verdicts[task_id] = record.verdict;
  }
  return verdicts;
}

// Nobody was slashed, no audit failed, and the ledger verifies.
void expect_nobody_slashed(const Job& job) {
  EXPECT_EQ(job.verify_ledger(), 0);
  Result<LedgerContents> ledger = read_ledger(job.out() / "ledger.db");
  ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
  EXPECT_TRUE(ledger->slashes.empty());
  for (const auto& [task_id, record] : ledger->submissions) {
    EXPECT_NE(record.verdict, Verdict::kFailed) << "task " << task_id << ": " << record.reason;
  }
}

// Every task audited. Worker 0 dies the moment its first challenge arrives
// (--crash-before-reveal: after its update, before its reveal). Restarted
// with the same key and state directory, it takes up the task it kept on
// disk, the coordinator repeats the challenge on the new connection, and the
// reveal passes: the task is paid, nobody is slashed.
TEST(CrashSafety, AWorkerKilledBetweenItsUpdateAndItsRevealRevealsAfterARestartAndIsPaid) {
  ScratchDir dir;
  Job job(dir.path(), {.workers = 2, .rounds = 2, .audit_probability = 1.0});
  auto coordinator = job.coordinator("coordinator");
  auto crashing = job.worker(0, "w0-crashing", {"--crash-before-reveal"});
  auto other = job.worker(1, "w1");
  ASSERT_EQ(crashing->wait(std::chrono::seconds(240)), 137) << crashing->stderr_text();
  auto restarted = job.worker(0, "w0-restarted");
  ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();

  EXPECT_NE(coordinator->stderr_text().find("repeating the challenge of task"), std::string::npos)
      << coordinator->stderr_text();
  const std::string restarted_log = restarted->stderr_text();
  EXPECT_NE(restarted_log.find("audited: revealing"), std::string::npos) << restarted_log;
  expect_nobody_slashed(job);
  Result<LedgerContents> ledger = read_ledger(job.out() / "ledger.db");
  ASSERT_TRUE(ledger.ok());
  Result<PublicKey> key = read_public_key(public_key_path(dir.path() / "w0.key").string());
  ASSERT_TRUE(key.ok());
  const std::map<uint64_t, Verdict> verdicts = verdicts_of(*ledger, *key);
  ASSERT_FALSE(verdicts.empty());
  EXPECT_EQ(verdicts.begin()->second, Verdict::kPassed) << "the task whose reveal came after the restart";
}

// Momentum carried from task to task (training.keep_momentum), every task
// audited, so that leaf 0 of every commitment must hash the momentum its
// task names. Worker 0 is killed after round 2 and comes back (with
// --crash-before-reveal): it must find that momentum in its state directory.
// It trains, sends its update and dies at the challenge, so the coordinator
// waits for its reveal; killed then, the coordinator restarts from the
// checkpoint of the round before and runs that round again, naming the
// momentum both workers held before it, while they already hold the one
// after: each must pick the named one from the few it keeps. Nobody falls
// back to fresh momentum and nobody is slashed.
TEST(CrashSafety, MomentumCarriedAcrossTasksSurvivesWorkerAndCoordinatorKills) {
  ScratchDir dir;
  constexpr int kRounds = 5;
  Job job(dir.path(), {.workers = 2, .rounds = kRounds, .audit_probability = 1.0, .keep_momentum = true});
  auto coordinator = job.coordinator("coordinator-0");
  auto workers = job.all_workers("run");
  ASSERT_TRUE(wait_for_metrics_lines(job, 2, std::chrono::seconds(240))) << coordinator->stderr_text();
  workers[0]->send(SIGKILL);
  workers[0]->wait(std::chrono::seconds(30));
  auto crashing = job.worker(0, "w0-crashing", {"--crash-before-reveal"});
  ASSERT_EQ(crashing->wait(std::chrono::seconds(240)), 137) << crashing->stderr_text();
  coordinator->send(SIGKILL);  // while it waits for worker 0's reveal
  coordinator->wait(std::chrono::seconds(30));
  coordinator = job.coordinator("coordinator-1");
  workers[0] = job.worker(0, "w0-restarted");
  ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();

  EXPECT_NE(coordinator->stderr_text().find("was interrupted"), std::string::npos) << coordinator->stderr_text();
  EXPECT_EQ(rounds_of(job.metrics()), std::vector<int>({1, 2, 3, 4, 5}));
  expect_nobody_slashed(job);
  for (CohortProcess* worker : {workers[0].get(), workers[1].get(), crashing.get()}) {
    EXPECT_EQ(worker->stderr_text().find("starting from fresh momentum"), std::string::npos) << worker->stderr_text();
  }
}

// Runs `job`'s coordinator and its workers to the end; the coordinator's
// exit status and log.
struct Ended {
  std::optional<int> status;
  std::string log;
};
Ended run_to_the_end(const Job& job, const std::string& name, const std::vector<std::string>& args = {}) {
  auto coordinator = job.coordinator(name, args);
  auto workers = job.all_workers(name);
  const std::optional<int> status = coordinator->wait(std::chrono::seconds(300));
  return {status, coordinator->stderr_text()};
}

// A job started afresh in an output directory whose ledger closed rounds of
// an earlier run (`cohort demo` twice) cannot number its rounds from 1 in
// it: the earlier ledger is kept whole under a new name, still verifiable,
// and the job runs on a new one.
TEST(CrashSafety, AFreshStartKeepsTheEarlierRunsLedgerAsideAndRuns) {
  ScratchDir dir;
  Job job(dir.path(), {.workers = 1, .rounds = 1});
  const Ended first = run_to_the_end(job, "first");
  ASSERT_EQ(first.status, 0) << first.log;
  const Ended second = run_to_the_end(job, "second", {"--fresh"});
  ASSERT_EQ(second.status, 0) << second.log;
  EXPECT_NE(second.log.find("is kept as"), std::string::npos) << second.log;

  std::vector<std::filesystem::path> kept;
  for (const auto& entry : std::filesystem::directory_iterator(job.out())) {
    if (entry.path().filename().string().starts_with("ledger-until-")) kept.push_back(entry.path());
  }
  ASSERT_EQ(kept.size(), 1u);
  for (const std::filesystem::path& ledger : {kept.front(), job.out() / "ledger.db"}) {
    Result<LedgerContents> contents = read_ledger(ledger);
    ASSERT_TRUE(contents.ok()) << contents.status().to_string();
    EXPECT_EQ(contents->rounds.size(), 1u) << ledger;
  }
  EXPECT_EQ(job.verify_ledger(), 0);
}

// A ledger configured outside the job's output directory may hold stakes
// other jobs rely on: a fresh job refuses to start in it after an earlier
// run closed rounds there, and says why.
TEST(CrashSafety, AFreshStartRefusesASharedLedgerWithClosedRounds) {
  ScratchDir dir;
  Job job(dir.path(), {.workers = 1, .rounds = 1, .ledger_path = dir.path() / "shared.db"});
  const Ended first = run_to_the_end(job, "first");
  ASSERT_EQ(first.status, 0) << first.log;
  auto second = job.coordinator("second", {"--fresh"});
  EXPECT_NE(second->wait(std::chrono::seconds(120)), 0);
  EXPECT_NE(second->stderr_text().find("already closed round 1 of an earlier job"), std::string::npos)
      << second->stderr_text();
}

// The only worker leaves (SIGTERM: it finishes its task, declines the next
// one if it comes before its Bye, and says Bye). Once it is gone, a round
// has nobody to send a task to: the coordinator waits for a worker to
// register, as before the first round, and the job goes on when one comes
// back. (Six rounds: the worker's last task, a declined one and one that
// meets its Bye may take three of the five after the first.)
TEST(CrashSafety, WhenEveryWorkerLeftTheCoordinatorWaitsForOneToComeBack) {
  ScratchDir dir;
  Job job(dir.path(), {.workers = 1, .rounds = 6});
  auto coordinator = job.coordinator("coordinator");
  auto worker = job.worker(0, "w0-first");
  ASSERT_TRUE(wait_for_metrics_lines(job, 1, std::chrono::seconds(240))) << coordinator->stderr_text();
  worker->send(SIGTERM);
  ASSERT_EQ(worker->wait(std::chrono::seconds(120)), 0) << worker->stderr_text();
  EXPECT_TRUE(wait_for_stderr(*coordinator, "waiting for workers to register again", std::chrono::seconds(120)))
      << coordinator->stderr_text();
  worker = job.worker(0, "w0-back");
  ASSERT_EQ(coordinator->wait(std::chrono::seconds(300)), 0) << coordinator->stderr_text();
  EXPECT_EQ(rounds_of(job.metrics()), std::vector<int>({1, 2, 3, 4, 5, 6}));
  expect_nobody_slashed(job);
}

}  // namespace
}  // namespace cohort::testing
