// The coordinator in the test's own process, over an InProcessChannel
// (tests/coordinator/*_test.cpp): JobShape and job_toml describe a small
// job, InProcessJob runs its coordinator on a thread, and the helpers drive
// hand-made workers (support/hand_worker.h) through a round. Test-only.
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cohort/aggregation.h"
#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/proof_of_learning.h"
#include "cohort/worker.h"
#include "support/hand_worker.h"
#include "support/scratch_dir.h"

namespace cohort::testing {

// Proof-of-learning tasks need deterministic CPU kernels, chosen before the
// process's first tensor operation: the environment runs before every test.
class DeterministicTraining : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_TRUE(use_deterministic_cpu_training().ok()); }
};
inline const auto* const kDeterministic = ::testing::AddGlobalTestEnvironment(new DeterministicTraining);

struct JobShape {
  int rounds = 1;
  int min_workers = 2;
  int min_updates = 1;
  double deadline_seconds = 30;
  double registration_timeout_seconds = 60;
  std::string more_toml;  // more tables ([proof], [ledger])
  std::string model = "name = \"mlp\"";  // the [model] table's body
  std::shared_ptr<const Clock> clock = std::make_shared<const SystemClock>();
  std::filesystem::path output_dir;  // "" = a scratch directory of the job's own
  StartMode mode = StartMode::kFresh;
};

// A job of `shape` on Fashion-MNIST with the mlp (a small evaluation set),
// without CURVE (an in-process peer has no transport key).
inline std::string job_toml(const std::filesystem::path& output_dir, const JobShape& shape) {
  return R"(
[job]
name = "in-process"
rounds = )" + std::to_string(shape.rounds) + R"(
output_dir = ")" + output_dir.string() + R"("
[model]
)" + shape.model + R"(
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
  explicit InProcessJob(const JobShape& shape)
      : clock_(shape.clock), output_dir_(shape.output_dir.empty() ? dir_.path() / "out" : shape.output_dir),
        mode_(shape.mode) {
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
    return Coordinator::create(config, std::move(parts), rules_, log_, mode_);
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
  const std::filesystem::path& output_dir() const { return output_dir_; }
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

  ScratchDir dir_;
  std::shared_ptr<const Clock> clock_;
  std::filesystem::path output_dir_;
  StartMode mode_;
  int next_peer_ = 0;
  InProcessChannel* channel_ = nullptr;  // owned by coordinator_
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
inline std::optional<Welcome> register_worker(HandWorker& worker) {
  worker.send(worker.hello());
  return worker.next_as<Welcome>();
}

// The next message to `worker`, which must be a task, and the model it carries.
inline std::optional<ReceivedTask> next_task(HandWorker& worker) {
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
inline std::pair<std::optional<ReceivedTask>, std::optional<ReceivedTask>> start_round(HandWorker& a, HandWorker& b) {
  if (!register_worker(a) || !register_worker(b)) return {};
  std::optional<ReceivedTask> task_a = next_task(a);
  return {std::move(task_a), next_task(b)};
}

inline at::Tensor filled(const ReceivedTask& task, float value) { return at::full({task.model.numel()}, value); }

}  // namespace cohort::testing
