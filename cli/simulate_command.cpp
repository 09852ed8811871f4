// `cohort simulate --config JOB.toml`: the job's rounds with every worker in
// this process, for experiments that need many short rounds.
//
// It runs the real thing without the network: a Coordinator (coordinator.h)
// over an InProcessChannel, and round.min_workers honest workers, each
// run_worker (worker.h) on a thread of its own, connected to one of the
// channel's peers and reading the job's training data. So the round loop,
// the selection, the tasks and their seeds, the training, the checks, the
// [attack] rows, the pre-aggregators, rule and server step are the ones
// `cohort coordinator` and `cohort worker` run, not copies. What a
// simulation leaves out: proof of learning and the ledger ([proof] is
// turned off), CURVE and the rest of [network], and round deadlines (the
// workers share this machine's cores, so no update is late). Training runs
// the workers' kernels (use_deterministic_cpu_training), so its bits do not
// depend on --threads; tests/integration/simulate_test.cpp checks that a
// small job ends with the same model, bit for bit, as coordinator + worker
// processes when the coordinator aggregates with the same kernels on one
// thread.
#include <ATen/Parallel.h>

#include <iostream>
#include <memory>
#include <optional>
#include <stop_token>
#include <thread>

#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "cohort/duration.h"
#include "cohort/job_data.h"
#include "cohort/proof_of_learning.h"
#include "cohort/worker.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {
namespace {

// The job as a simulation runs it (see the top of this file).
JobConfig simulated(JobConfig config, std::optional<int> eval_every) {
  config.proof.segment_steps = 0;  // and so no ledger
  config.network.curve = false;    // an in-process peer has no transport key
  config.network.messages_per_second = 0;
  config.round.deadline_seconds = kMaxDurationSeconds;
  if (eval_every) config.data.eval_every = *eval_every;
  return config;
}

// What each simulated worker is told: the job's training split (`train`,
// read once for all of them), the coordinator's chunk size, no idle timeout
// to speak of.
WorkerOptions worker_options(const JobConfig& config, std::shared_ptr<const LabeledImages> train) {
  WorkerOptions options;
  options.loaded_data = std::move(train);
  options.coordinator = "the in-process coordinator";
  if (config.data.dataset == "idx") {
    options.images = config.data.train_images;
    options.labels = config.data.train_labels;
  } else {
    options.data_dir = config.data.dir;
  }
  options.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(kMaxDurationSeconds * 1000.0));
  options.chunk_bytes = static_cast<size_t>(config.network.chunk_bytes);
  options.curve = false;
  // Only proof of learning writes there, and it is off.
  options.state_dir = config.job.output_dir / "workers";
  // The simulated workers train the job's own archive.
  if (!config.model.path.empty()) options.models_from.push_back(config.model.path);
  return options;
}

// The simulated workers: threads running run_worker on `channel`'s peers.
// A worker that fails asks the coordinator to stop (`stop`), so that the
// job ends instead of waiting for its update.
class SimulatedWorkers {
 public:
  SimulatedWorkers(InProcessChannel& channel, const JobConfig& config, std::shared_ptr<const LabeledImages> train,
                   std::stop_source stop, Logger& log)
      : options_(worker_options(config, std::move(train))),
        failures_(static_cast<size_t>(config.round.min_workers)) {
    for (size_t i = 0; i < failures_.size(); ++i) {
      threads_.emplace_back([this, i, &channel, stop, &log]() mutable {
        const CoordinatorConnector connect = [&channel, i]() -> Result<std::unique_ptr<ClientChannel>> {
          return std::unique_ptr<ClientChannel>(channel.connect(peer_name(i)));
        };
        Result<WorkerSummary> summary = run_worker(connect, options_, Identity::generate(), log);
        if (!summary.ok()) {
          failures_[i] = summary.status();
          stop.request_stop();
        }
      });
    }
  }

  static std::string peer_name(size_t worker) { return "worker-" + std::to_string(worker); }

  // Waits for every worker (each leaves on the coordinator's Bye) and
  // returns the first failure, if any.
  Status join() {
    threads_.clear();
    for (Status& failure : failures_) {
      if (!failure.ok()) return failure.with_context("a simulated worker");
    }
    return Status();
  }

 private:
  const WorkerOptions options_;
  std::vector<Status> failures_;      // by worker, written by its thread
  std::vector<std::jthread> threads_;  // last: joined before the rest goes
};

// Runs the job; returns its summary or the first error (a worker's, else
// the coordinator's).
Result<JobSummary> simulate(JobConfig config, const RuleRegistry& rules, const RoundCallback& on_round,
                            Logger& log, Logger& worker_log) {
  COHORT_ASSIGN_OR_RETURN(FileLock lock, lock_job(config));
  auto owned_channel = std::make_unique<InProcessChannel>();
  InProcessChannel& channel = *owned_channel;  // the coordinator's, alive as long as it is
  CoordinatorParts parts{std::move(lock), std::make_shared<const SystemClock>(),
                         std::make_shared<const Identity>(Identity::generate()), nullptr, std::move(owned_channel)};
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Coordinator> coordinator,
                          Coordinator::create(config, std::move(parts), rules, log));
  // The workers' data, checked against the job's model (after the test set).
  COHORT_ASSIGN_OR_RETURN(LabeledImages train, load_job_split(config, Split::kTrain));
  std::stop_source stop;
  SimulatedWorkers workers(channel, config, std::make_shared<const LabeledImages>(std::move(train)), stop,
                           worker_log);
  Result<JobSummary> summary = coordinator->run(on_round, stop.get_token());
  if (!summary.ok()) {
    // A coordinator that failed said no Bye: the workers are still waiting.
    for (size_t i = 0; i < static_cast<size_t>(config.round.min_workers); ++i) {
      (void)channel.send(SimulatedWorkers::peer_name(i), {Bye{"the simulation failed"}});
    }
  }
  // A worker's failure first: it is why a coordinator stopped early.
  COHORT_RETURN_IF_ERROR(workers.join());
  return summary;
}

}  // namespace

int simulate_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("config,c", po::value<std::string>()->required(), "job description (TOML, see docs/CONFIG.md)")
      ("eval-every", po::value<int>(),
       "evaluate the global model every K rounds and after the last (default: the job's data.eval_every)")
      ("threads", po::value<int>()->default_value(0), "intra-op threads (0 = LibTorch's default)")
      ("json", "print each round's metrics as one JSON line on stdout")
      ("quiet,q", "log warnings and errors only")
      ("verbose,v", "log debugging detail, the workers' too");
  int exit_code = kExitOk;
  auto vm = parse_args("simulate",
                       "Runs the job described by a TOML file with all workers in this process: the same "
                       "coordinator and workers as `cohort coordinator` and `cohort worker`, over an "
                       "in-process channel, without the network, proof of learning or ledger.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  std::optional<int> eval_every;
  if (vm->count("eval-every")) eval_every = (*vm)["eval-every"].as<int>();
  const int threads = (*vm)["threads"].as<int>();
  if ((eval_every && *eval_every < 1) || threads < 0) {
    std::cerr << "cohort simulate: --eval-every must be >= 1 and --threads >= 0\n";
    return kExitUsage;
  }
  Result<JobConfig> config = load_job_config((*vm)["config"].as<std::string>());
  if (!config.ok()) {
    std::cerr << "cohort simulate: " << config.status().message() << "\n";
    return kExitUsage;
  }
  if (Status s = init_crypto(); !s.ok()) {
    std::cerr << "cohort simulate: " << s.to_string() << "\n";
    return kExitFailure;
  }
  const LogLevel level = log_level_of(*vm);
  Logger log(std::cerr, level, "simulate");
  // As `cohort worker` does, before any tensor operation: the workers'
  // training kernels (AVX2, no oneDNN, single-threaded BLAS in training).
  if (Status s = use_deterministic_cpu_training(); !s.ok()) {
    log.error(s.to_string());
    return kExitFailure;
  }
  if (threads > 0) at::set_num_threads(threads);
  if (config->proof.segment_steps > 0) log.warn("[proof] and [ledger] are ignored in simulation");
  // The workers say only what goes wrong, unless asked for everything.
  Logger worker_log(std::cerr, level == LogLevel::kDebug ? LogLevel::kDebug : LogLevel::kQuiet, "worker");
  RuleRegistry rules;
  register_builtin_rules(rules);
  const bool json = vm->count("json") > 0;
  Result<JobSummary> summary = simulate(simulated(std::move(config).value(), eval_every), rules,
                                        [&](const RoundMetrics& m) {
                                          if (json) std::cout << m.to_json() << std::endl;
                                        },
                                        log, worker_log);
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return exit_code_for(summary.status());
  }
  log.info("done: " + std::to_string(summary->rounds_completed) + " rounds in " +
           std::to_string(summary->seconds) + " s, test accuracy " + std::to_string(summary->test_accuracy) +
           ", model in " + summary->checkpoint.string());
  return kExitOk;
}

}  // namespace cohort::cli
