// One coordinator per job (docs/OPERATIONS.md, "One instance per job"): a
// second `cohort coordinator` on the same output directory once ran crash
// recovery against the live job's ledger (voiding the round in flight)
// before it failed to bind, and the live one then died on a forked ledger
// chain. Now the second is refused before it touches anything, naming the
// pid that holds the job; the ledger has a lock of its own; and a ledger
// that disagrees with the checkpoint is refused at start instead of
// settling against it.
#include <gtest/gtest.h>

#include "cohort/coordinator.h"
#include "cohort/ledger.h"
#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::seconds;

std::string proof_job(const std::filesystem::path& dir, const std::string& listen, int rounds) {
  return R"(
[job]
name = "single"
rounds = )" + std::to_string(rounds) + R"(
output_dir = ")" + (dir / "out").string() + R"("
[model]
name = "mlp"
[data]
eval_samples = 500
[training]
local_steps = 20
[round]
min_workers = 1
deadline_seconds = 60
registration_timeout_seconds = 120
[network]
listen = ")" + listen + R"("
[proof]
segment_steps = 10
audit_probability = 1.0
segments_per_audit = 1
[ledger]
reward_per_round = 10
min_stake = 0
registration_grant = 100
)";
}

std::string socket_of(const std::filesystem::path& dir, const std::string& name) {
  return "ipc://" + (dir / name).string();
}

std::unique_ptr<CohortProcess> coordinator(const std::filesystem::path& dir, const std::string& config,
                                           const std::string& name) {
  return std::make_unique<CohortProcess>(std::vector<std::string>{"coordinator", "--config", (dir / config).string()},
                                         dir / (name + ".out"), dir / (name + ".err"));
}

std::unique_ptr<CohortProcess> worker(const std::filesystem::path& dir, const std::string& listen,
                                      const std::string& name, const std::vector<std::string>& extra = {}) {
  std::vector<std::string> args = {"worker", "--coordinator", listen, "--coordinator-key",
                                   (dir / "out" / "coordinator.pub").string(), "--threads", "1", "--key",
                                   (dir / "w0.key").string(), "--state-dir", (dir / "w0").string(),
                                   "--idle-timeout", "120"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<CohortProcess>(args, dir / (name + ".out"), dir / (name + ".err"));
}

void keygen(const ScratchDir& dir) {
  ASSERT_EQ(run_cohort({"keygen", "--out", (dir.path() / "w0.key").string()}, dir).code, 0);
}

// The second instance is refused while round 1 is open in the ledger (the
// worker's update recorded, its audit waiting for a reveal), on the same
// endpoint and on another. The worker then comes back and reveals, and the
// round is paid its whole budget.
TEST(SingleInstance, ASecondCoordinatorOnTheSameJobIsRefusedAndTheLiveJobIsUntouched) {
  ScratchDir dir;
  keygen(dir);
  const std::string listen = socket_of(dir.path(), "c.sock");
  write_file(dir.path() / "job.toml", proof_job(dir.path(), listen, 1));
  write_file(dir.path() / "other-port.toml", proof_job(dir.path(), socket_of(dir.path(), "other.sock"), 1));
  auto live = coordinator(dir.path(), "job.toml", "live");
  ASSERT_TRUE(wait_for_stderr(*live, "waiting for 1 worker", seconds(120))) << live->stderr_text();
  {
    auto crashing = worker(dir.path(), listen, "crashing", {"--crash-before-reveal"});
    ASSERT_EQ(crashing->wait(seconds(120)), 137) << crashing->stderr_text();
  }
  for (const std::string config : {"job.toml", "other-port.toml"}) {
    auto second = coordinator(dir.path(), config, "second");
    ASSERT_EQ(second->wait(seconds(60)), 2) << second->stderr_text();
    EXPECT_NE(second->stderr_text().find("the job in " + (dir.path() / "out").string() + " is in use by process"),
              std::string::npos)
        << second->stderr_text();
    EXPECT_EQ(second->stderr_text().find("voided"), std::string::npos) << "it must not recover\n"
                                                                       << second->stderr_text();
  }
  auto back = worker(dir.path(), listen, "back");
  ASSERT_EQ(live->wait(seconds(180)), 0) << live->stderr_text();

  Result<LedgerContents> ledger = read_ledger(dir.path() / "out" / "ledger.db");
  ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
  ASSERT_EQ(ledger->rounds.size(), 1u);
  EXPECT_EQ(ledger->rounds.at(1).budget, 10 * kMicrosPerToken);
  EXPECT_EQ(ledger->rounds.at(1).paid, 10 * kMicrosPerToken);
  ASSERT_EQ(ledger->submissions.size(), 1u);
  EXPECT_EQ(ledger->submissions.begin()->second.verdict, Verdict::kPassed) << ledger->submissions.begin()->second.reason;
  EXPECT_TRUE(verify_ledger(dir.path() / "out" / "ledger.db").ok());
}

// The ledger is one writer's too: a deposit while the job runs is refused
// (it would fork the chain under the coordinator), and works once it ends.
TEST(SingleInstance, ADepositWhileTheCoordinatorHoldsTheLedgerIsRefused) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", proof_job(dir.path(), socket_of(dir.path(), "c.sock"), 1));
  auto live = coordinator(dir.path(), "job.toml", "live");
  ASSERT_TRUE(wait_for_stderr(*live, "waiting for 1 worker", seconds(120))) << live->stderr_text();
  const std::string worker_key = to_hex(Identity::generate().public_key());
  const std::vector<std::string> deposit = {"ledger", "deposit", (dir.path() / "out" / "ledger.db").string(),
                                            "--key", (dir.path() / "out" / "coordinator.key").string(),
                                            "--worker", worker_key, "--amount", "5"};
  CommandRun refused = run_cohort(deposit, dir);
  EXPECT_EQ(refused.code, 2) << refused.err;
  EXPECT_NE(refused.err.find("is in use by process"), std::string::npos) << refused.err;
  live->send(SIGTERM);
  ASSERT_EQ(live->wait(seconds(60)), 0) << live->stderr_text();
  CommandRun accepted = run_cohort(deposit, dir);
  EXPECT_EQ(accepted.code, 0) << accepted.err;
}

// The state a second instance used to leave: round 1 checkpointed with its
// task aggregated, while the ledger has that task voided and the round
// unpaid. A restart must not settle against it.
TEST(SingleInstance, ALedgerThatDisagreesWithTheCheckpointIsRefusedAtStart) {
  ScratchDir dir;
  keygen(dir);
  const std::string listen = socket_of(dir.path(), "c.sock");
  write_file(dir.path() / "job.toml", proof_job(dir.path(), listen, 1));
  {
    auto live = coordinator(dir.path(), "job.toml", "first");
    ASSERT_TRUE(wait_for_stderr(*live, "waiting for 1 worker", seconds(120))) << live->stderr_text();
    auto volunteer = worker(dir.path(), listen, "w0");
    ASSERT_EQ(live->wait(seconds(300)), 0) << live->stderr_text();
  }
  Result<Checkpoint> checkpoint = read_checkpoint(dir.path() / "out" / "model.ckpt");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  ASSERT_EQ(checkpoint->settlement.size(), 1u);
  Result<LedgerContents> finished = read_ledger(dir.path() / "out" / "ledger.db");
  ASSERT_TRUE(finished.ok());

  // A ledger in which round 1's aggregated task was voided and never paid.
  const std::filesystem::path ledger_path = dir.path() / "out" / "ledger.db";
  std::filesystem::rename(ledger_path, dir.path() / "finished.db");
  std::filesystem::remove(dir.path() / "out" / "ledger.db-wal");
  std::filesystem::remove(dir.path() / "out" / "ledger.db-shm");
  {
    Result<Identity> key = read_identity(dir.path() / "out" / "coordinator.key");
    ASSERT_TRUE(key.ok());
    Result<std::unique_ptr<Ledger>> ledger = Ledger::open(ledger_path, *key);
    ASSERT_TRUE(ledger.ok()) << ledger.status().to_string();
    const SubmissionRecord& aggregated = finished->submissions.at(checkpoint->settlement.front().first);
    ASSERT_TRUE((*ledger)->record_submission(aggregated.submission).ok());
    ASSERT_TRUE((*ledger)->set_verdict(aggregated.submission.task_id, Verdict::kVoided, "voided by another instance").ok());
  }
  auto restarted = coordinator(dir.path(), "job.toml", "restarted");
  ASSERT_EQ(restarted->wait(seconds(120)), 2) << restarted->stderr_text();
  EXPECT_NE(restarted->stderr_text().find("the ledger disagrees with " + (dir.path() / "out" / "model.ckpt").string()),
            std::string::npos)
      << restarted->stderr_text();
  EXPECT_NE(restarted->stderr_text().find("is voided in the ledger"), std::string::npos) << restarted->stderr_text();
  Result<LedgerContents> untouched = read_ledger(ledger_path);
  ASSERT_TRUE(untouched.ok());
  EXPECT_TRUE(untouched->rounds.empty()) << "the round must not be closed against the checkpoint";
}

}  // namespace
}  // namespace cohort::testing
