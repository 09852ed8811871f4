// The coordinator in the test's own process (issue 13), over an
// InProcessChannel: its workers are driven by hand from the test
// (HandWorker) or run as threads (run_worker on the channel's peers).
// Nothing is spawned, so a round, a late update, a reconnect, a
// quorum miss and a failed audit each take about a second, and each step is
// checked as it happens.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <cmath>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "cohort/aggregation.h"
#include "cohort/misbehaviour.h"
#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/proof_of_learning.h"
#include "cohort/worker.h"
#include "support/hand_worker.h"
#include "support/manual_clock.h"
#include "support/scratch_dir.h"

namespace cohort::testing {
namespace {

using std::chrono::milliseconds;

// Proof-of-learning tasks need deterministic CPU kernels, chosen before the
// process's first tensor operation: the environment runs before every test.
class DeterministicTraining : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(use_deterministic_cpu_training().ok()); }
};
const auto* const kDeterministic = ::testing::AddGlobalTestEnvironment(new DeterministicTraining);

struct JobShape {
  int rounds = 1;
  int min_workers = 2;
  int min_updates = 1;
  double deadline_seconds = 30;
  double registration_timeout_seconds = 60;
  std::string more_toml;  // more tables ([proof], [ledger])
  std::shared_ptr<const Clock> clock = std::make_shared<const SystemClock>();
};

// A job of `shape` on Fashion-MNIST with the mlp (a small evaluation set),
// without CURVE (an in-process peer has no transport key).
std::string job_toml(const std::filesystem::path& output_dir, const JobShape& shape) {
  return R"(
[job]
name = "in-process"
rounds = )" + std::to_string(shape.rounds) + R"(
output_dir = ")" + output_dir.string() + R"("
[model]
name = "mlp"
[data]
eval_samples = 200
[training]
local_steps = 20
[round]
min_workers = )" + std::to_string(shape.min_workers) + R"(
min_updates = )" + std::to_string(shape.min_updates) + R"(
deadline_seconds = )" + std::to_string(shape.deadline_seconds) + R"(
registration_timeout_seconds = )" + std::to_string(shape.registration_timeout_seconds) + R"(
[network]
curve = false
)" + shape.more_toml;
}

// A coordinator running its job on a thread of this process.
class InProcessJob {
 public:
  explicit InProcessJob(const JobShape& shape) : clock_(shape.clock) {
    register_builtin_rules(rules_);
    Result<JobConfig> config = parse_job_config(job_toml(output_dir(), shape), "in-process.toml");
    EXPECT_TRUE(config.ok()) << config.status().to_string();
    if (!config.ok()) return;
    Result<std::unique_ptr<Coordinator>> created = create_coordinator(*config);
    EXPECT_TRUE(created.ok()) << created.status().to_string();
    if (!created.ok()) return;
    coordinator_ = std::move(*created);
    thread_ = std::jthread([this](std::stop_token stop) { summary_ = coordinator_->run({}, stop); });
  }

  // The parts as main builds them, with an in-process channel.
  Result<std::unique_ptr<Coordinator>> create_coordinator(const JobConfig& config) {
    COHORT_ASSIGN_OR_RETURN(FileLock lock, lock_job(config));
    COHORT_ASSIGN_OR_RETURN(Identity key, load_coordinator_identity(config, log_));
    auto identity = std::make_shared<const Identity>(std::move(key));
    std::unique_ptr<Ledger> ledger;
    if (config.proof.segment_steps > 0) {
      COHORT_ASSIGN_OR_RETURN(ledger, open_job_ledger(config, *identity));
    }
    auto channel = std::make_unique<InProcessChannel>();
    channel_ = channel.get();
    CoordinatorParts parts{std::move(lock), clock_, std::move(identity), std::move(ledger), std::move(channel)};
    return Coordinator::create(config, std::move(parts), rules_, log_);
  }

  bool started() const { return coordinator_ != nullptr; }
  // A new hand-driven worker.
  HandWorker hand_worker(Identity identity = Identity::generate()) {
    return HandWorker(channel_->connect(next_peer_name()), std::move(identity));
  }
  // The connection of a new run_worker.
  CoordinatorConnector connector() {
    return [this, name = next_peer_name()]() -> Result<std::unique_ptr<ClientChannel>> {
      return std::unique_ptr<ClientChannel>(channel_->connect(name));
    };
  }
  std::filesystem::path output_dir() const { return dir_.path() / "out"; }
  const ScratchDir& dir() const { return dir_; }

  // Asks the coordinator to stop (as SIGTERM would).
  void stop() { thread_.request_stop(); }
  // Waits for the job to end.
  Result<JobSummary> finish() {
    if (thread_.joinable()) thread_.join();
    return summary_;
  }
  std::string log() const { return log_text_.str(); }  // after finish()

  std::vector<nlohmann::json> metrics() const {
    std::vector<nlohmann::json> rounds;
    std::ifstream in(output_dir() / "metrics.jsonl");
    for (std::string line; std::getline(in, line);) rounds.push_back(nlohmann::json::parse(line));
    return rounds;
  }

 private:
  std::string next_peer_name() { return "peer-" + std::to_string(next_peer_++); }

  std::shared_ptr<const Clock> clock_;
  int next_peer_ = 0;
  InProcessChannel* channel_ = nullptr;  // owned by coordinator_
  ScratchDir dir_;
  RuleRegistry rules_;
  std::ostringstream log_text_;
  Logger log_{log_text_, LogLevel::kInfo, "coordinator"};
  std::unique_ptr<Coordinator> coordinator_;
  Result<JobSummary> summary_ = Status::internal("the job has not ended");
  std::jthread thread_;  // last: stopped and joined before the rest goes
};

// A task and the model it carries.
struct ReceivedTask {
  Task task;
  at::Tensor model;
};

// Registers `worker` and waits for its Welcome.
std::optional<Welcome> register_worker(HandWorker& worker) {
  worker.send(worker.hello());
  return worker.next_as<Welcome>();
}

// The next message to `worker`, which must be a task, and the model it carries.
std::optional<ReceivedTask> next_task(HandWorker& worker) {
  Incoming in = worker.next();
  if (!in.message.ok() || !std::holds_alternative<Task>(in.message.value())) {
    ADD_FAILURE() << "expected a task";
    return std::nullopt;
  }
  Task task = std::get<Task>(in.message.value());
  Result<DecodedPayload> model = decode_payload(task.model, std::move(in.payload), PayloadLimits{});
  EXPECT_TRUE(model.ok()) << model.status().to_string();
  if (!model.ok()) return std::nullopt;
  return ReceivedTask{std::move(task), model->flat};
}

// Registers both workers (a round starts once both are in), then returns
// their first tasks.
std::pair<std::optional<ReceivedTask>, std::optional<ReceivedTask>> start_round(HandWorker& a, HandWorker& b) {
  if (!register_worker(a) || !register_worker(b)) return {};
  std::optional<ReceivedTask> task_a = next_task(a);
  return {std::move(task_a), next_task(b)};
}

at::Tensor filled(const ReceivedTask& task, float value) { return at::full({task.model.numel()}, value); }

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

// The server optimizer's state goes into the round's checkpoint, and a job
// resumes only with the optimizer that wrote it.
TEST(InProcessJob, TheServerOptimizersStateIsCheckpointedAndPinsTheResume) {
  ScratchDir keep;
  JobShape shape;
  shape.more_toml = "[aggregation]\nserver_optimizer = \"adam\"\nserver_learning_rate = 0.01\n";
  std::filesystem::path output_dir;
  {
    InProcessJob job(shape);
    ASSERT_TRUE(job.started());
    output_dir = keep.path() / "out";
    HandWorker a = job.hand_worker();
    HandWorker b = job.hand_worker();
    auto [task_a, task_b] = start_round(a, b);
    ASSERT_TRUE(task_a && task_b);
    a.send_update(task_a->task, filled(*task_a, 0.01f));
    b.send_update(task_b->task, filled(*task_b, 0.03f));
    Result<JobSummary> summary = job.finish();
    ASSERT_TRUE(summary.ok()) << summary.status().to_string() << job.log();
    std::filesystem::copy(job.output_dir(), output_dir, std::filesystem::copy_options::recursive);
    // Adam's first step from m = 0, v = tau^2: x += lr * 0.1 D / (sqrt(0.99 tau^2 + 0.01 D^2) + tau).
    const double d = 0.02, tau = 1e-3;
    const double moved = 0.01 * 0.1 * d / (std::sqrt(0.99 * tau * tau + 0.01 * d * d) + tau);
    Result<Checkpoint> checkpoint = read_checkpoint(output_dir / "model.ckpt");
    ASSERT_TRUE(checkpoint.ok()) << checkpoint.status().to_string();
    EXPECT_TRUE(at::allclose(checkpoint->flat, task_a->model + moved, 1e-5, 1e-7));
    EXPECT_EQ(checkpoint->server_optimizer, "adam");
    EXPECT_EQ(checkpoint->server_state.steps, 1u);
    ASSERT_EQ(checkpoint->server_state.buffers.size(), 2u);
    EXPECT_TRUE(at::allclose(checkpoint->server_state.buffers[0].second, at::full({task_a->model.numel()}, 0.1 * d),
                             1e-5, 1e-8));
  }
  JobShape plain;
  plain.rounds = 2;
  Result<JobConfig> config = parse_job_config(job_toml(output_dir, plain), "resume.toml");
  ASSERT_TRUE(config.ok()) << config.status().to_string();
  RuleRegistry rules;
  register_builtin_rules(rules);
  std::ostringstream text;
  Logger log(text, LogLevel::kInfo, "coordinator");
  Result<FileLock> lock = lock_job(*config);
  ASSERT_TRUE(lock.ok()) << lock.status().to_string();
  CoordinatorParts parts{std::move(lock).value(), std::make_shared<const SystemClock>(),
                         std::make_shared<const Identity>(Identity::generate()), nullptr,
                         std::make_unique<InProcessChannel>()};
  Result<std::unique_ptr<Coordinator>> resumed =
      Coordinator::create(*config, std::move(parts), rules, log, StartMode::kResume);
  EXPECT_EQ(resumed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(resumed.status().message().find("stepped with server optimizer 'adam', this job asks for 'sgd'"),
            std::string::npos)
      << resumed.status().to_string();
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
