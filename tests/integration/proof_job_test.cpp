// Proof of learning end to end, with real processes: honest workers are
// audited (re-executed by the coordinator with a different thread count than
// they trained with), pass and are paid; a worker that trains on flipped
// labels is caught, slashed and banned, and so is every dishonest prover of
// cheats.h (`cohort worker --cheat NAME`); a worker without stake is
// refused. Every ledger is checked with `cohort ledger verify`.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cctype>
#include <set>

#include "harness.h"

namespace cohort::testing {
namespace {

struct JobRun {
  int coordinator_exit = -1;
  std::string coordinator_log;
  std::vector<nlohmann::json> rounds;
};

// A job of `rounds` rounds with every task audited, run with `workers`
// worker processes; the first `cheaters` of them get `cheat` (a worker flag).
JobRun run_proof_job(const ScratchDir& dir, int workers, int cheaters, int rounds,
                     const std::string& ledger = "registration_grant = 1000\n", bool keep_momentum = false,
                     const std::vector<std::string>& cheat = {"--flip-labels"}) {
  const std::string socket = "ipc://" + (dir.path() / "coordinator.sock").string();
  write_file(dir.path() / "job.toml", R"(
[job]
rounds = )" + std::to_string(rounds) + R"(
seed = 5
output_dir = ")" + (dir.path() / "out").string() + R"("
[data]
eval_samples = 1000
[training]
local_steps = 30
keep_momentum = )" + std::string(keep_momentum ? "true" : "false") + R"(
[round]
min_workers = )" + std::to_string(workers) + R"(
registration_timeout_seconds = 10
[network]
listen = ")" + socket + R"("
[proof]
segment_steps = 10
audit_probability = 1.0
segments_per_audit = 1
[ledger]
reward_per_round = 10
)" + ledger);
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()},
                            dir.path() / "coordinator.out", dir.path() / "coordinator.err");
  const std::string key = coordinator_key(dir.path() / "out");
  EXPECT_FALSE(key.empty()) << coordinator.stderr_text();
  std::vector<std::unique_ptr<CohortProcess>> processes;
  for (int i = 0; i < workers; ++i) {
    const std::string name = "w" + std::to_string(i);
    std::vector<std::string> args = {"worker", "--coordinator", socket, "--coordinator-key", key, "--threads", "1",
                                     "--state-dir", (dir.path() / name).string(), "--idle-timeout", "120"};
    if (i < cheaters) args.insert(args.end(), cheat.begin(), cheat.end());
    processes.push_back(std::make_unique<CohortProcess>(args, dir.path() / (name + ".out"),
                                                        dir.path() / (name + ".err")));
  }
  JobRun run;
  run.coordinator_exit = coordinator.wait(std::chrono::seconds(400)).value_or(-1);
  run.coordinator_log = coordinator.stderr_text();
  for (const auto& line : read_lines(dir.path() / "out" / "metrics.jsonl")) {
    run.rounds.push_back(nlohmann::json::parse(line));
  }
  return run;
}

int ledger_verify(const ScratchDir& dir) {
  CohortProcess verify({"ledger", "verify", (dir.path() / "out" / "ledger.db").string()},
                       dir.path() / "verify.out", dir.path() / "verify.err");
  return verify.wait(std::chrono::seconds(60)).value_or(-1);
}

std::vector<nlohmann::json> receipts_of(const ScratchDir& dir, int worker) {
  std::vector<nlohmann::json> receipts;
  for (const auto& line : read_lines(dir.path() / ("w" + std::to_string(worker)) / "receipts.jsonl")) {
    receipts.push_back(nlohmann::json::parse(line));
  }
  return receipts;
}

// With momentum carried from task to task, round 2's leaf 0 starts from the
// momentum round 1's commitment ended with.
TEST(ProofJob, HonestWorkersPassEveryAuditAndArePaidTheBudget) {
  ScratchDir dir;
  JobRun run = run_proof_job(dir, /*workers=*/2, /*flippers=*/0, /*rounds=*/2, "registration_grant = 1000\n",
                             /*keep_momentum=*/true);
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 2u);
  for (const auto& round : run.rounds) {
    EXPECT_EQ(round["accepted"], 2);
    EXPECT_EQ(round["audited"], 2);
    EXPECT_EQ(round["audits_failed"], 0);
    EXPECT_EQ(round["paid"], 10'000'000);  // the whole budget, split between two
    EXPECT_EQ(round["slashed"], 0);
  }
  for (int worker = 0; worker < 2; ++worker) {
    auto receipts = receipts_of(dir, worker);
    ASSERT_EQ(receipts.size(), 2u) << "worker " << worker;
    for (const auto& receipt : receipts) {
      EXPECT_EQ(receipt["verdict"], "passed");
      EXPECT_EQ(receipt["reward"], 5'000'000);  // equal shards: equal pay
      EXPECT_EQ(receipt["slashed"], 0);
    }
  }
  EXPECT_EQ(ledger_verify(dir), 0);
  // `ledger show --json` gives the receipts in the form the workers keep them.
  CommandRun show = run_cohort({"ledger", "show", (dir.path() / "out" / "ledger.db").string(), "--json"}, dir);
  ASSERT_EQ(show.code, 0) << show.err;
  std::multiset<std::string> shown, kept;
  const nlohmann::json ledger = nlohmann::json::parse(show.out);
  for (const auto& worker : ledger["workers"]) {
    for (const auto& receipt : worker["receipts"]) shown.insert(receipt.dump());
  }
  for (int worker = 0; worker < 2; ++worker) {
    for (const auto& receipt : receipts_of(dir, worker)) kept.insert(receipt.dump());
  }
  EXPECT_EQ(shown, kept);
}

TEST(ProofJob, ALabelFlippingWorkerIsCaughtSlashedAndBannedWhileHonestOnesArePaid) {
  ScratchDir dir;
  JobRun run = run_proof_job(dir, /*workers=*/3, /*flippers=*/1, /*rounds=*/2);
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[0]["participants"], 3);
  EXPECT_EQ(run.rounds[0]["accepted"], 2);
  EXPECT_EQ(run.rounds[0]["audits_failed"], 1);
  EXPECT_EQ(run.rounds[0]["slashed"], 1'000'000'000);  // the whole granted stake
  EXPECT_EQ(run.rounds[0]["paid"], 10'000'000);         // all of it to the honest two
  EXPECT_EQ(run.rounds[1]["participants"], 2);          // banned: no more tasks
  EXPECT_EQ(run.rounds[1]["audits_failed"], 0);
  auto cheater = receipts_of(dir, 0);
  ASSERT_EQ(cheater.size(), 1u);
  EXPECT_EQ(cheater[0]["verdict"], "failed");
  EXPECT_NE(cheater[0]["reason"].get<std::string>().find("audit failed"), std::string::npos);
  EXPECT_EQ(cheater[0]["reward"], 0);
  EXPECT_EQ(cheater[0]["slashed"], 1'000'000'000);
  for (int worker = 1; worker < 3; ++worker) {
    for (const auto& receipt : receipts_of(dir, worker)) EXPECT_EQ(receipt["verdict"], "passed");
  }
  EXPECT_NE(run.coordinator_log.find("failed its audit"), std::string::npos);
  EXPECT_EQ(ledger_verify(dir), 0);
}

// The issue's end-to-end case: one worker trains only half of each segment
// and claims all of it, among three honest ones.
TEST(ProofJob, AWorkerSkippingHalfItsStepsIsSlashedAndBannedAmongThreeHonestOnes) {
  ScratchDir dir;
  JobRun run = run_proof_job(dir, /*workers=*/4, /*cheaters=*/1, /*rounds=*/2, "registration_grant = 1000\n",
                             /*keep_momentum=*/false, {"--cheat", "skip-half"});
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), 2u);
  EXPECT_EQ(run.rounds[0]["accepted"], 3);
  EXPECT_EQ(run.rounds[0]["audits_failed"], 1);
  EXPECT_EQ(run.rounds[0]["slashed"], 1'000'000'000);
  EXPECT_EQ(run.rounds[1]["participants"], 3);
  EXPECT_EQ(run.rounds[1]["audits_failed"], 0);
  for (const auto& round : run.rounds) EXPECT_EQ(round["paid"], 9'999'999);  // 10 tokens over 3; 1 unassignable
  auto cheater = receipts_of(dir, 0);
  ASSERT_EQ(cheater.size(), 1u);
  EXPECT_EQ(cheater[0]["verdict"], "failed");
  for (int worker = 1; worker < 4; ++worker) {
    auto receipts = receipts_of(dir, worker);
    ASSERT_EQ(receipts.size(), 2u);
    for (const auto& receipt : receipts) EXPECT_EQ(receipt["verdict"], "passed");
  }
  EXPECT_NE(run.coordinator_log.find("re-execution differs"), std::string::npos) << run.coordinator_log;
  EXPECT_EQ(ledger_verify(dir), 0);
}

// Every cheat of cheats.h, by a worker process beside an honest one. Each
// task has 3 segments and is audited (one random segment plus the last),
// so every cheat below is caught in the round it is first tried: those
// that change every segment, fake-segments:1 (both non-last segments),
// and the forged updates (the last segment). replay-update trains honestly
// once and replays that update in round 2; a non-finite update is refused
// on arrival.
struct CheatCase {
  std::string cheat;
  int caught_in_round;  // 1-based
};

class CheatingWorker : public ::testing::TestWithParam<CheatCase> {};

TEST_P(CheatingWorker, IsSlashedAndBannedWhileTheHonestOneIsPaid) {
  const CheatCase& c = GetParam();
  ScratchDir dir;
  const int rounds = c.caught_in_round + 1;  // one more, to see the ban
  JobRun run = run_proof_job(dir, /*workers=*/2, /*cheaters=*/1, rounds, "registration_grant = 1000\n",
                             /*keep_momentum=*/false, {"--cheat", c.cheat});
  ASSERT_EQ(run.coordinator_exit, 0) << run.coordinator_log;
  ASSERT_EQ(run.rounds.size(), static_cast<size_t>(rounds));
  const nlohmann::json& caught = run.rounds[c.caught_in_round - 1];
  EXPECT_EQ(caught["accepted"], 1);
  EXPECT_EQ(caught["slashed"], 1'000'000'000);  // the whole granted stake
  EXPECT_EQ(caught["paid"], 10'000'000);         // the budget, all to the honest worker
  EXPECT_EQ(run.rounds.back()["participants"], 1);

  auto cheater = receipts_of(dir, 0);
  ASSERT_EQ(cheater.size(), static_cast<size_t>(c.caught_in_round));
  for (size_t i = 0; i + 1 < cheater.size(); ++i) EXPECT_EQ(cheater[i]["verdict"], "passed");
  EXPECT_EQ(cheater.back()["verdict"], "failed");
  EXPECT_EQ(cheater.back()["reward"], 0);
  EXPECT_EQ(cheater.back()["slashed"], 1'000'000'000);
  auto honest = receipts_of(dir, 1);
  ASSERT_EQ(honest.size(), static_cast<size_t>(rounds));
  for (const auto& receipt : honest) EXPECT_EQ(receipt["verdict"], "passed");
  EXPECT_EQ(ledger_verify(dir), 0);
}

INSTANTIATE_TEST_SUITE_P(
    EveryCheat, CheatingWorker,
    ::testing::Values(CheatCase{"fake-segments:1", 1}, CheatCase{"short-segments", 1}, CheatCase{"lr-0.99", 1},
                      CheatCase{"batch-order", 1}, CheatCase{"bf16-states", 1}, CheatCase{"forged-momentum", 1},
                      CheatCase{"no-training", 1}, CheatCase{"random-update", 1},
                      CheatCase{"replay-update", 2}, CheatCase{"non-finite", 1}),
    [](const ::testing::TestParamInfo<CheatCase>& info) {
      std::string name;
      for (char ch : info.param.cheat) name += std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return name;
    });

TEST(ProofJob, AWorkerWithoutStakeIsRefusedWithTheReason) {
  ScratchDir dir;
  JobRun run = run_proof_job(dir, /*workers=*/1, /*flippers=*/0, /*rounds=*/1, "registration_grant = 0\n");
  EXPECT_EQ(run.coordinator_exit, 1);  // nobody could register in time
  EXPECT_NE(run.coordinator_log.find("below the job's minimum"), std::string::npos) << run.coordinator_log;
  std::ifstream worker_log(dir.path() / "w0.err");
  std::string text((std::istreambuf_iterator<char>(worker_log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("cohort ledger deposit"), std::string::npos) << text;
}

}  // namespace
}  // namespace cohort::testing
