// `cohort simulate --config JOB.toml`: the job's rounds with every worker in
// this process, for experiments that need many short rounds.
//
// It runs what the coordinator and its workers run, minus the wire and the
// checks that guard it: round.min_workers honest workers (indices 0..n-1,
// as registered), each with its shard of the same partition, its task seed
// Rng(job.seed).fork(round << 32 | index) and its momentum buffers
// (training.keep_momentum); the same train_locally(); the updates in worker
// order with their sample counts as weights; the same root update, [attack]
// rows, pre-aggregators, rule and server step, with the aggregation seed
// Rng(job.seed).fork(round). Proof of learning, the ledger and [network]
// are ignored. Training runs the workers' kernels
// (use_deterministic_cpu_training), so its bits do not depend on --threads;
// tests/integration/simulate_test.cpp checks that a small job ends with the
// same model, bit for bit, as coordinator + worker processes when the
// coordinator aggregates with the same kernels on one thread.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>

#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/dataset.h"
#include "cohort/job_data.h"
#include "cohort/models.h"
#include "cohort/partition.h"
#include "cohort/proof_of_learning.h"
#include "cohort/random.h"
#include "cohort/round_policy.h"
#include "cohort/training.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

struct SimulatedWorker {
  uint32_t index = 0;
  TensorDataset shard;
  MomentumBuffers momentum;
};

// One job, all in memory. Not thread-safe.
class SimulatedJob {
 public:
  SimulatedJob(JobConfig config, int eval_every, Logger& log)
      : config_(std::move(config)), eval_every_(eval_every), log_(log) {}

  Status init(const RuleRegistry& rules) {
    COHORT_ASSIGN_OR_RETURN(model_, Model::create(config_.model.name, config_.job.seed));
    global_ = model_->flat_parameters();
    // The workers' split, which `cohort worker` reads from the same files
    // (data.dir's standard names, or data.train_* for dataset = "idx").
    COHORT_ASSIGN_OR_RETURN(test_set_, load_test_set(config_));
    COHORT_ASSIGN_OR_RETURN(LabeledImages train, load_job_split(config_, Split::kTrain));
    COHORT_RETURN_IF_ERROR(make_workers(train));
    RootSamples root;
    if (config_.aggregation.root_samples > 0) {
      root.data = to_tensors(first_samples(train, config_.aggregation.root_samples));
    }
    COHORT_ASSIGN_OR_RETURN(policy_, make_round_policy(config_, rules, std::move(root)));
    std::error_code ec;
    std::filesystem::create_directories(config_.job.output_dir, ec);
    if (ec) return Status::io_error("cannot create " + config_.job.output_dir.string() + ": " + ec.message());
    metrics_file_.open(config_.job.output_dir / "metrics.jsonl", std::ios::trunc);
    if (!metrics_file_) return Status::io_error("cannot open metrics.jsonl in " + config_.job.output_dir.string());
    log_.info("simulating " + std::to_string(workers_.size()) + " workers, aggregation " + policy_->description() +
              " (f = " + std::to_string(config_.aggregation.f) + ")");
    return Status();
  }

  // Runs every round; `on_round` sees each round's metrics. The model is
  // checkpointed once, after the last round.
  Result<JobSummary> run(const RoundCallback& on_round) {
    const auto start = Clock::now();
    JobSummary summary;
    for (int r = 1; r <= config_.job.rounds; ++r) {
      // A LibTorch error ends the simulation with a named error, not an abort.
      COHORT_ASSIGN_OR_RETURN(RoundMetrics metrics, catching_exceptions("round " + std::to_string(r), [&] {
                                return run_round(static_cast<uint32_t>(r));
                              }));
      metrics_file_ << metrics.to_json() << '\n';
      metrics_file_.flush();
      if (on_round) on_round(metrics);
      summary.rounds_completed = r;
      summary.test_accuracy = metrics.test_accuracy;
      summary.test_loss = metrics.test_loss;
    }
    summary.seconds = seconds_since(start);
    summary.checkpoint = config_.job.output_dir / "model.ckpt";
    Checkpoint checkpoint;
    checkpoint.round = static_cast<uint32_t>(config_.job.rounds);
    checkpoint.model_name = config_.model.name;
    checkpoint.layout = model_->layout();
    checkpoint.flat = global_;
    checkpoint.digest = digest_of(model_->layout(), global_);
    checkpoint.previous_aggregate = policy_->state();
    checkpoint.job_name = config_.job.name;
    checkpoint.job_seed = config_.job.seed;
    COHORT_RETURN_IF_ERROR(write_checkpoint(summary.checkpoint, checkpoint));
    return summary;
  }

 private:
  Status make_workers(const LabeledImages& train) {
    COHORT_ASSIGN_OR_RETURN(PartitionScheme scheme, parse_partition_scheme(config_.data.partition));
    const int n = config_.round.min_workers;
    PartitionSpec spec{scheme, n, config_.data.alpha, config_.data.gamma, config_.job.seed};
    COHORT_ASSIGN_OR_RETURN(auto parts, partition_indices(train.labels, spec));
    for (int i = 0; i < n; ++i) {
      workers_.push_back(SimulatedWorker{static_cast<uint32_t>(i),
                                         to_tensors(select_samples(train, parts[static_cast<size_t>(i)])), {}});
    }
    return Status();
  }

  // As the coordinator: the policy picks, in worker order.
  std::vector<SimulatedWorker*> select_participants(uint32_t round) {
    std::vector<uint32_t> candidates;
    for (const SimulatedWorker& worker : workers_) candidates.push_back(worker.index);
    std::vector<SimulatedWorker*> chosen;
    for (uint32_t index : policy_->select(round, std::move(candidates))) chosen.push_back(&workers_[index]);
    return chosen;
  }

  Result<RoundMetrics> run_round(uint32_t round) {
    const auto round_start = Clock::now();
    RoundMetrics metrics;
    metrics.round = round;
    RoundUpdates updates;
    updates.round = round;
    double loss_sum = 0.0;
    const Hyperparameters hyper = hyperparameters_of(config_.training);
    auto t = Clock::now();
    for (SimulatedWorker* worker : select_participants(round)) {
      const uint64_t task_id = (uint64_t{round} << 32) | worker->index;
      const uint64_t seed = Rng(config_.job.seed).fork(task_id).next_u64();
      COHORT_RETURN_IF_ERROR(model_->set_flat_parameters(global_));
      MomentumBuffers* momentum = hyper.keep_momentum ? &worker->momentum : nullptr;
      COHORT_ASSIGN_OR_RETURN(LocalTraining trained, train_locally(*model_, worker->shard, hyper, seed, momentum));
      updates.rows.push_back(trained.delta);
      updates.weights.push_back(static_cast<double>(trained.samples_seen));
      loss_sum += trained.metrics.local_loss;
      metrics.worker_weights.push_back({worker->index, 0.0});
    }
    metrics.seconds.collect = seconds_since(t);
    metrics.participants = metrics.accepted = static_cast<int>(updates.rows.size());
    metrics.mean_local_loss = loss_sum / static_cast<double>(updates.rows.size());

    t = Clock::now();
    metrics.model_updated = aggregate(updates, metrics);
    metrics.seconds.aggregate = seconds_since(t);

    metrics.test_accuracy = metrics.test_loss = std::numeric_limits<double>::quiet_NaN();
    if (round % static_cast<uint32_t>(eval_every_) == 0 || round == static_cast<uint32_t>(config_.job.rounds)) {
      t = Clock::now();
      COHORT_RETURN_IF_ERROR(model_->set_flat_parameters(global_));
      const Evaluation eval = evaluate(*model_, test_set_);
      metrics.test_accuracy = eval.accuracy;
      metrics.test_loss = eval.loss;
      metrics.seconds.evaluate = seconds_since(t);
    }
    metrics.seconds.total = seconds_since(round_start);
    return metrics;
  }

  // As the coordinator: a failed aggregation keeps the previous model.
  bool aggregate(const RoundUpdates& updates, RoundMetrics& metrics) {
    Result<RoundStep> step = policy_->aggregate(updates, global_);
    if (!step.ok()) {
      log_.error("round " + std::to_string(updates.round) + ": " + step.status().to_string() +
                 "; keeping the previous model");
      return false;
    }
    if (!step->model_updated) {
      log_.warn("round " + std::to_string(updates.round) + ": fewer updates than round.min_updates; keeping the model");
      return false;
    }
    for (size_t i = 0; i < step->row_weights.size(); ++i) metrics.worker_weights[i].second = step->row_weights[i];
    metrics.byzantine = step->byzantine;
    metrics.byzantine_weight = step->byzantine_weight;
    return true;
  }

  JobConfig config_;
  int eval_every_;
  Logger& log_;
  std::unique_ptr<RoundPolicy> policy_;  // selection and aggregation, as the coordinator's
  std::unique_ptr<Model> model_;
  at::Tensor global_;
  TensorDataset test_set_;
  std::vector<SimulatedWorker> workers_;  // by index
  std::ofstream metrics_file_;
};

}  // namespace

int simulate_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("config,c", po::value<std::string>()->required(), "job description (TOML, see docs/CONFIG.md)")
      ("eval-every", po::value<int>()->default_value(1),
       "evaluate the global model every K rounds and after the last (the coordinator evaluates every round)")
      ("threads", po::value<int>()->default_value(0), "intra-op threads (0 = LibTorch's default)")
      ("json", "print each round's metrics as one JSON line on stdout")
      ("quiet,q", "log warnings and errors only")
      ("verbose,v", "log debugging detail");
  int exit_code = kExitOk;
  auto vm = parse_args("simulate",
                       "Runs the job described by a TOML file with all workers in this process: the same "
                       "training, partition, attack, aggregation and server step as coordinator + workers, "
                       "without the network, proof of learning or ledger.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  const int eval_every = (*vm)["eval-every"].as<int>();
  const int threads = (*vm)["threads"].as<int>();
  if (eval_every < 1 || threads < 0) {
    std::cerr << "cohort simulate: --eval-every must be >= 1 and --threads >= 0\n";
    return kExitUsage;
  }
  Result<JobConfig> config = load_job_config((*vm)["config"].as<std::string>());
  if (!config.ok()) {
    std::cerr << "cohort simulate: " << config.status().message() << "\n";
    return kExitUsage;
  }
  Logger log(std::cerr, log_level_of(*vm), "simulate");
  // As `cohort worker` does, before any tensor operation: the workers'
  // training kernels (AVX2, no oneDNN, single-threaded BLAS in training).
  if (Status s = use_deterministic_cpu_training(); !s.ok()) {
    log.error(s.to_string());
    return kExitFailure;
  }
  if (threads > 0) at::set_num_threads(threads);
  if (config->proof.segment_steps > 0) log.warn("[proof] and [ledger] are ignored in simulation");
  RuleRegistry rules;
  register_builtin_rules(rules);
  SimulatedJob job(std::move(config).value(), eval_every, log);
  if (Status s = job.init(rules); !s.ok()) {
    log.error(s.to_string());
    return kExitUsage;
  }
  const bool json = vm->count("json") > 0;
  Result<JobSummary> summary = job.run([&](const RoundMetrics& m) {
    if (json) std::cout << m.to_json() << std::endl;
  });
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return kExitFailure;
  }
  log.info("done: " + std::to_string(summary->rounds_completed) + " rounds in " +
           std::to_string(summary->seconds) + " s, test accuracy " + std::to_string(summary->test_accuracy) +
           ", model in " + summary->checkpoint.string());
  return kExitOk;
}

}  // namespace cohort::cli
