// What a coordinator carries across a restart, in process: the server
// optimizer's and the rule's state go into every checkpoint, and a job
// stopped after round 2 and resumed ends with the model of one that never
// stopped, bit for bit.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <sstream>
#include <thread>
#include <vector>

#include "in_process_job.h"

namespace cohort::testing {
namespace {

// The server optimizer's state goes into the round's checkpoint, and a job
// resumes only with the optimizer that wrote it.
TEST(InProcessResume, TheServerOptimizersStateIsCheckpointedAndPinsTheResume) {
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


// Runs `shape`'s job with a run_worker thread for each of `workers` (their
// keys keep their indices, and so their shards, across a restart).
void run_with_workers(const JobShape& shape, const std::vector<const Identity*>& workers) {
  InProcessJob job(shape);
  ASSERT_TRUE(job.started());
  std::vector<Result<WorkerSummary>> summaries(workers.size(), Status::internal("not run"));
  std::vector<std::ostringstream> logs(workers.size());
  {
    std::vector<std::jthread> threads;
    for (size_t i = 0; i < workers.size(); ++i) {
      threads.emplace_back([&, i, connect = job.connector()] {
        WorkerOptions options;
        options.idle_timeout = std::chrono::seconds(60);
        options.state_dir = job.dir().path() / ("worker-" + std::to_string(i));
        Logger log(logs[i], LogLevel::kInfo, "worker");
        summaries[i] = run_worker(connect, options, *workers[i], log);
      });
    }
  }
  Result<JobSummary> summary = job.finish();
  ASSERT_TRUE(summary.ok()) << summary.status().to_string() << job.log();
  for (size_t i = 0; i < workers.size(); ++i) {
    ASSERT_TRUE(summaries[i].ok()) << summaries[i].status().to_string() << logs[i].str();
  }
}

TEST(InProcessResume, AResumedJobEndsWithTheModelOfOneThatNeverStopped) {
  ScratchDir dirs;
  const Identity a = Identity::generate();
  const Identity b = Identity::generate();
  JobShape shape;
  shape.more_toml = R"(
[aggregation]
rule = "centered-clipping"
server_optimizer = "yogi"
server_learning_rate = 0.01
[aggregation.params]
tau = 1.0
)";
  shape.rounds = 4;
  shape.output_dir = dirs.path() / "whole";
  run_with_workers(shape, {&a, &b});
  shape.rounds = 2;
  shape.output_dir = dirs.path() / "split";
  run_with_workers(shape, {&a, &b});
  shape.rounds = 4;
  shape.mode = StartMode::kResume;
  run_with_workers(shape, {&b, &a});

  Result<Checkpoint> whole = read_checkpoint(dirs.path() / "whole" / "model.ckpt");
  Result<Checkpoint> split = read_checkpoint(dirs.path() / "split" / "model.ckpt");
  ASSERT_TRUE(whole.ok() && split.ok());
  EXPECT_EQ(split->round, 4u);
  EXPECT_TRUE(at::equal(whole->flat, split->flat))
      << "max difference " << (whole->flat - split->flat).abs().max().item<double>();
  EXPECT_TRUE(at::equal(whole->previous_aggregate, split->previous_aggregate));
  EXPECT_EQ(split->server_state.steps, 4u);
  ASSERT_EQ(split->server_state.buffers.size(), 2u);
  EXPECT_TRUE(at::equal(whole->server_state.buffers[1].second, split->server_state.buffers[1].second));
}

}  // namespace
}  // namespace cohort::testing
