// The coordinator in the test's own process (issue 13), over an
// InProcessChannel: its workers are driven by hand from the test
// (HandWorker) or run as threads (run_worker on the channel's peers).
// Nothing is spawned, so a round, a late update, a reconnect, a
// quorum miss and a failed audit each take about a second, and each step is
// checked as it happens.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <future>
#include <sstream>
#include <thread>

#include "cohort/misbehaviour.h"
#include "in_process_job.h"
#include "support/manual_clock.h"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;

TEST(InProcessJob, ARoundAveragesTheUpdatesIntoTheNextModelAndEndsWithBye) {
  InProcessJob job({});
  ASSERT_TRUE(job.started());
  HandWorker a = job.hand_worker();
  HandWorker b = job.hand_worker();
  auto [task_a, task_b] = start_round(a, b);
  ASSERT_TRUE(task_a && task_b);
  EXPECT_NE(task_a->task.task_id, task_b->task.task_id);
  EXPECT_TRUE(at::equal(task_a->model, task_b->model));

  a.send_update(task_a->task, filled(*task_a, 0.01f));
  b.send_update(task_b->task, filled(*task_b, 0.03f));
  std::optional<RoundResult> result_a = a.next_as<RoundResult>();
  std::optional<RoundResult> result_b = b.next_as<RoundResult>();
  ASSERT_TRUE(result_a && result_b);
  EXPECT_TRUE(result_a->accepted) << result_a->reason;
  EXPECT_TRUE(result_b->accepted) << result_b->reason;
  EXPECT_EQ(result_a->participants, 2u);
  EXPECT_TRUE(a.next_as<Bye>().has_value());
  EXPECT_TRUE(b.next_as<Bye>().has_value());

  Result<JobSummary> summary = job.finish();
  ASSERT_TRUE(summary.ok()) << summary.status().to_string() << job.log();
  EXPECT_EQ(summary->rounds_completed, 1);
  // Equal sample counts: FedAvg's aggregate is the plain mean, 0.02.
  Result<Checkpoint> checkpoint = read_checkpoint(job.output_dir() / "model.ckpt");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  // (task_a->model is a copy: the channel's frames share the coordinator's
  // global model, so decode_payload does not adopt them.)
  EXPECT_TRUE(at::allclose(checkpoint->flat, task_a->model + 0.02, 1e-6, 1e-6));
  EXPECT_EQ(result_a->model_hash, checkpoint->digest);
  const std::vector<nlohmann::json> rounds = job.metrics();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0]["accepted"], 2);
}

TEST(InProcessJob, AWorkerSilentPastTheDeadlineIsLeftOutAndItsLateUpdateRefused) {
  JobShape shape;
  shape.rounds = 2;
  shape.deadline_seconds = 1;
  InProcessJob job(shape);
  ASSERT_TRUE(job.started());
  HandWorker prompt = job.hand_worker();
  HandWorker late = job.hand_worker();
  auto [prompt_task, late_task] = start_round(prompt, late);
  ASSERT_TRUE(prompt_task && late_task);
  prompt.send_update(prompt_task->task);

  std::optional<RoundResult> late_result = late.next_as<RoundResult>(milliseconds(20000));
  ASSERT_TRUE(late_result.has_value());
  EXPECT_FALSE(late_result->accepted);
  EXPECT_EQ(late_result->reason, "no update before the deadline");
  std::optional<RoundResult> prompt_result = prompt.next_as<RoundResult>();
  ASSERT_TRUE(prompt_result.has_value());
  EXPECT_TRUE(prompt_result->accepted);

  // Round 2 has begun: the round-1 update is too late to count.
  std::optional<Task> round2_late = late.next_as<Task>();
  ASSERT_TRUE(round2_late.has_value());
  EXPECT_EQ(round2_late->round, 2u);
  late.send_update(late_task->task);
  EXPECT_EQ(late.next_error_code(), ErrorCode::kWrongRound);
  late.send_update(*round2_late);
  std::optional<Task> round2_prompt = prompt.next_as<Task>();
  ASSERT_TRUE(round2_prompt.has_value());
  prompt.send_update(*round2_prompt);
  std::optional<RoundResult> late_round2 = late.next_as<RoundResult>();
  ASSERT_TRUE(late_round2.has_value());
  EXPECT_TRUE(late_round2->accepted) << late_round2->reason;

  Result<JobSummary> summary = job.finish();
  ASSERT_TRUE(summary.ok()) << summary.status().to_string() << job.log();
  const std::vector<nlohmann::json> rounds = job.metrics();
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_EQ(rounds[0]["accepted"], 1);
  EXPECT_EQ(rounds[1]["accepted"], 2);
}

TEST(InProcessJob, AWorkerThatReconnectsMidTaskKeepsItsIndexAndServesTheNextRound) {
  JobShape shape;
  shape.rounds = 2;
  InProcessJob job(shape);
  ASSERT_TRUE(job.started());
  HandWorker steady = job.hand_worker();
  std::array<uint8_t, 32> seed{};
  seed.fill(7);
  auto first_connection = std::make_unique<HandWorker>(job.hand_worker(Identity::from_seed(seed)));
  ASSERT_TRUE(register_worker(steady).has_value());
  std::optional<Welcome> first_welcome = register_worker(*first_connection);
  ASSERT_TRUE(first_welcome.has_value());
  std::optional<ReceivedTask> steady_task = next_task(steady);
  ASSERT_TRUE(steady_task && next_task(*first_connection));

  // The same key on a new connection, before sending its update.
  HandWorker again = job.hand_worker(Identity::from_seed(seed));
  first_connection.reset();
  again.send(again.hello());
  std::optional<Welcome> welcome = again.next_as<Welcome>();
  ASSERT_TRUE(welcome.has_value());
  EXPECT_EQ(welcome->worker_index, first_welcome->worker_index);

  steady.send_update(steady_task->task);
  ASSERT_TRUE(steady.next_as<RoundResult>().has_value());
  // Round 1 closed without the reconnected worker; round 2 reaches its new
  // connection (a round-1 result may come first).
  std::optional<Task> round2;
  for (int i = 0; i < 2 && !round2; ++i) {
    Incoming in = again.next();
    if (in.message.ok() && std::holds_alternative<Task>(in.message.value())) round2 = std::get<Task>(in.message.value());
  }
  ASSERT_TRUE(round2.has_value());
  EXPECT_EQ(round2->round, 2u);
  again.send_update(*round2);
  std::optional<Task> steady_round2 = steady.next_as<Task>();
  ASSERT_TRUE(steady_round2.has_value());
  steady.send_update(*steady_round2);
  std::optional<RoundResult> result = again.next_as<RoundResult>();
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->accepted) << result->reason;

  ASSERT_TRUE(job.finish().ok()) << job.log();
  const std::vector<nlohmann::json> rounds = job.metrics();
  ASSERT_EQ(rounds.size(), 2u);
  EXPECT_EQ(rounds[0]["accepted"], 1);
  ASSERT_EQ(rounds[0]["not_aggregated"].size(), 1u);
  EXPECT_EQ(rounds[0]["not_aggregated"][0]["reason"], "the worker registered again before sending its update");
  EXPECT_EQ(rounds[1]["accepted"], 2);
}

TEST(InProcessJob, TooFewUpdatesLeaveTheModelAsItWas) {
  JobShape shape;
  shape.min_updates = 2;
  shape.deadline_seconds = 1;
  InProcessJob job(shape);
  ASSERT_TRUE(job.started());
  HandWorker sender = job.hand_worker();
  HandWorker silent = job.hand_worker();
  auto [task, silent_task] = start_round(sender, silent);
  ASSERT_TRUE(task && silent_task);
  sender.send_update(task->task, filled(*task, 0.5f));
  ASSERT_TRUE(sender.next_as<RoundResult>(milliseconds(20000)).has_value());

  ASSERT_TRUE(job.finish().ok()) << job.log();
  const std::vector<nlohmann::json> rounds = job.metrics();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_FALSE(rounds[0]["model_updated"].get<bool>());
  Result<Checkpoint> checkpoint = read_checkpoint(job.output_dir() / "model.ckpt");
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
  EXPECT_TRUE(at::equal(checkpoint->flat, task->model));
}

// The clock is main's to lend: a registration timeout of an hour passes as
// soon as the test moves the clock past it, not an hour later.
TEST(InProcessJob, TheRegistrationTimeoutPassesOnTheLentClock) {
  auto clock = std::make_shared<ManualClock>();
  JobShape shape;
  shape.registration_timeout_seconds = 3600;
  shape.clock = clock;
  InProcessJob job(shape);
  ASSERT_TRUE(job.started());
  HandWorker only = job.hand_worker();
  ASSERT_TRUE(register_worker(only).has_value());
  clock->advance(std::chrono::seconds(3601));
  std::future<Result<JobSummary>> ended = std::async(std::launch::async, [&] { return job.finish(); });
  const bool in_time = ended.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  if (!in_time) job.stop();  // or the coordinator would wait out the hour on the machine's clock
  ASSERT_TRUE(in_time) << "still waiting for workers after the clock passed the registration timeout";
  const Result<JobSummary> summary = ended.get();
  EXPECT_EQ(summary.status().code(), Status::Code::kDeadlineExceeded) << summary.status().to_string();
  EXPECT_NE(summary.status().message().find("only 1 of 2 workers registered"), std::string::npos)
      << summary.status().to_string();
}

// The ledger is main's to open (CoordinatorParts): a job with [proof] is
// refused without one, and a job without [proof] keeps none.
TEST(InProcessJob, TheLedgerComesWithProofOfLearningAndOnlyWithIt) {
  ScratchDir dir;
  JobShape shape;
  shape.more_toml = "[proof]\nsegment_steps = 10\n";
  Result<JobConfig> proof = parse_job_config(job_toml(dir.path() / "proof", shape), "proof.toml");
  Result<JobConfig> plain = parse_job_config(job_toml(dir.path() / "plain", JobShape{}), "plain.toml");
  ASSERT_TRUE(proof.ok() && plain.ok());
  RuleRegistry rules;
  register_builtin_rules(rules);
  std::ostringstream text;
  Logger log(text, LogLevel::kInfo, "coordinator");
  auto identity = std::make_shared<const Identity>(Identity::generate());
  auto create = [&](const JobConfig& config, bool with_ledger) -> Status {
    COHORT_ASSIGN_OR_RETURN(FileLock lock, lock_job(config));
    std::unique_ptr<Ledger> ledger;
    if (with_ledger) {
      COHORT_ASSIGN_OR_RETURN(ledger, open_job_ledger(config, *identity));
    }
    CoordinatorParts parts{std::move(lock), std::make_shared<const SystemClock>(), identity, std::move(ledger),
                           std::make_unique<InProcessChannel>()};
    return Coordinator::create(config, std::move(parts), rules, log).status();
  };
  const Status without = create(*proof, false);
  EXPECT_EQ(without.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(without.message().find("needs its ledger"), std::string::npos) << without.to_string();
  const Status with = create(*plain, true);
  EXPECT_EQ(with.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(with.message().find("keeps no ledger"), std::string::npos) << with.to_string();
  EXPECT_TRUE(create(*plain, false).ok());
}

// Real workers on threads: every task audited; the one that skips half of
// its steps is caught, slashed and banned, the honest one passes and is paid.
TEST(InProcessJob, AWorkerFailingItsAuditIsSlashedWhileTheHonestOneIsPaid) {
  JobShape shape;
  shape.more_toml = R"(
[proof]
segment_steps = 10
audit_probability = 1.0
segments_per_audit = 1
[ledger]
registration_grant = 1000
reward_per_round = 10
)";
  InProcessJob job(shape);
  ASSERT_TRUE(job.started());
  Result<Cheat> skip_half = parse_cheat("skip-half");
  ASSERT_TRUE(skip_half.ok());
  MisbehaviourOptions skipping;
  skipping.cheat = *skip_half;
  ScriptedMisbehaviour cheater(skipping);
  std::vector<Result<WorkerSummary>> summaries(2, Status::internal("not run"));
  std::vector<std::ostringstream> logs(2);
  std::vector<CoordinatorConnector> connectors = {job.connector(), job.connector()};
  {
    std::vector<std::jthread> workers;
    for (int i = 0; i < 2; ++i) {
      workers.emplace_back([&, i] {
        WorkerOptions options;
        options.idle_timeout = std::chrono::seconds(60);
        options.state_dir = job.dir().path() / ("worker-" + std::to_string(i));
        if (i == 1) options.misbehaviour = &cheater;
        Logger log(logs[i], LogLevel::kInfo, "worker");
        summaries[i] = run_worker(connectors[i], options, Identity::generate(), log);
      });
    }
  }
  Result<JobSummary> summary = job.finish();
  ASSERT_TRUE(summary.ok()) << summary.status().to_string() << job.log();
  const std::vector<nlohmann::json> rounds = job.metrics();
  ASSERT_EQ(rounds.size(), 1u);
  EXPECT_EQ(rounds[0]["audited"], 2) << rounds[0];
  EXPECT_EQ(rounds[0]["audits_failed"], 1) << rounds[0];
  EXPECT_EQ(rounds[0]["paid"], 10'000'000) << rounds[0];      // the round's whole reward, in micro-tokens
  EXPECT_EQ(rounds[0]["slashed"], 1000'000'000) << rounds[0];  // the cheater's whole grant
  ASSERT_TRUE(summaries[0].ok()) << summaries[0].status().to_string() << logs[0].str();
  EXPECT_EQ(summaries[0]->receipts, 1) << logs[0].str();
  EXPECT_GT(summaries[0]->reward, 0);
  ASSERT_TRUE(summaries[1].ok()) << summaries[1].status().to_string() << logs[1].str();
  EXPECT_NE(summaries[1]->exit_reason.find("banned"), std::string::npos) << summaries[1]->exit_reason;
}

}  // namespace
}  // namespace cohort::testing
