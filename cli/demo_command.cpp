// `cohort demo`: one coordinator (in this process) and N worker processes
// on loopback, training the CNN on Fashion-MNIST.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <thread>

#include "cohort/cheats.h"
#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "cohort/dataset.h"
#include "cohort/ledger.h"
#include "commands.h"
#include "options.h"

extern char** environ;

namespace cohort::cli {
namespace {

// Worker processes started by the demo; killed if still running when the
// demo ends, whatever the reason.
class WorkerProcesses {
 public:
  WorkerProcesses() = default;
  WorkerProcesses(const WorkerProcesses&) = delete;
  WorkerProcesses& operator=(const WorkerProcesses&) = delete;
  ~WorkerProcesses() {
    for (pid_t pid : pids_) ::kill(pid, SIGKILL);
    wait_all();
  }

  Status spawn(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = ::posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
    if (rc != 0) return Status::io_error("cannot start a worker process: " + std::string(strerror(rc)));
    pids_.push_back(pid);
    return Status();
  }

  // Waits for every worker; returns how many exited with status 0.
  int wait_all() {
    int clean = 0;
    for (pid_t pid : pids_) {
      int status = 0;
      if (::waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0) ++clean;
    }
    pids_.clear();
    return clean;
  }

 private:
  std::vector<pid_t> pids_;
};

JobConfig demo_job(const po::variables_map& vm) {
  JobConfig job;
  const int workers = vm["workers"].as<int>();
  job.job.name = "demo";
  job.job.seed = vm["seed"].as<uint64_t>();
  job.job.rounds = vm["rounds"].as<int>();
  job.job.output_dir = vm["output-dir"].as<std::string>();
  job.model.name = vm["model"].as<std::string>();
  job.data.dir = vm["data-dir"].as<std::string>();
  job.data.partition = vm["partition"].as<std::string>();
  job.training.local_epochs = vm["local-epochs"].as<double>();
  job.training.batch_size = vm["batch-size"].as<int>();
  job.training.learning_rate = vm["lr"].as<double>();
  job.training.momentum = 0.9;
  job.round.min_workers = workers;
  job.round.min_updates = 1;
  job.round.deadline_seconds = 600.0;
  job.round.registration_timeout_seconds = 120.0;
  job.network.listen = "tcp://127.0.0.1:*";  // any free port
  if (!vm.count("no-proof")) {
    // Paid, audited work: every worker is granted stake on registration (the
    // demo's faucet), half of the tasks are audited.
    job.proof.segment_steps = 50;
    job.proof.audit_probability = 0.5;
    job.proof.segments_per_audit = 2;
    job.ledger.registration_grant = 1000.0;
    if (vm.count("ledger")) job.ledger.path = vm["ledger"].as<std::string>();
  }
  return job;
}

std::vector<std::string> worker_args(const std::string& endpoint, const po::variables_map& vm, int threads,
                                     int index, const PublicKey& coordinator) {
  const std::string state_dir =
      (std::filesystem::path(vm["output-dir"].as<std::string>()) / ("worker-" + std::to_string(index))).string();
  std::vector<std::string> args = {"cohort",          "worker",       "--coordinator", endpoint,
                                   "--threads",       std::to_string(threads),
                                   "--data-dir",      vm["data-dir"].as<std::string>(),
                                   "--idle-timeout",  "900",
                                   "--state-dir",     state_dir,
                                   "--coordinator-key", to_hex(coordinator)};
  if (index < vm["cheaters"].as<int>()) {
    args.push_back("--cheat");
    args.push_back(vm["cheat"].as<std::string>());
  } else if (index < vm["cheaters"].as<int>() + vm["flip-labels"].as<int>()) {
    args.push_back("--flip-labels");
  }
  if (!vm.count("verbose")) args.push_back("--quiet");
  return args;
}

}  // namespace

int demo_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("workers", po::value<int>()->default_value(4), "worker processes")
      ("rounds", po::value<int>()->default_value(5), "federated rounds")
      ("seed", po::value<uint64_t>()->default_value(1), "seed for the model, shards and batches")
      ("model", po::value<std::string>()->default_value("cnn"), "cnn or mlp")
      ("local-epochs", po::value<double>()->default_value(1.0), "local epochs per round")
      ("batch-size", po::value<int>()->default_value(32), "local batch size")
      ("lr", po::value<double>()->default_value(0.05), "local SGD learning rate (momentum 0.9)")
      ("partition", po::value<std::string>()->default_value("iid"), "iid, dirichlet or gamma")
      ("data-dir", po::value<std::string>()->default_value(kDefaultFashionMnistDir),
       "Fashion-MNIST IDX directory")
      ("output-dir", po::value<std::string>()->default_value("runs/demo"),
       "where metrics.jsonl and model.ckpt go")
      ("no-proof", "no proof of learning, no ledger: plain federated averaging")
      ("cheaters", po::value<int>()->default_value(0),
       "this many workers cheat (--cheat; by default they skip half of their training steps and claim all "
       "of them): audits catch them")
      ("cheat", po::value<std::string>()->default_value("skip-half"),
       ("how the cheaters cheat: " + cheat_names()).c_str())
      ("flip-labels", po::value<int>()->default_value(0),
       "this many (other) workers train on flipped labels (audits catch them too)")
      ("ledger", po::value<std::string>(), "keep the ledger here (default: <output-dir>/ledger.db)")
      ("json", "end with one JSON line: rounds, workers, test_accuracy, train_seconds, paid, slashed")
      ("verbose,v", "show the workers' logs too");
  int exit_code = kExitOk;
  auto vm = parse_args("demo",
                       "Runs a local federated job on Fashion-MNIST: one coordinator and "
                       "several worker processes on loopback.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  const int workers = (*vm)["workers"].as<int>();
  if (workers < 1 || workers > 64) {
    std::cerr << "cohort demo: --workers must be in [1, 64]\n";
    return kExitUsage;
  }
  if (auto cheat = parse_cheat((*vm)["cheat"].as<std::string>()); !cheat.ok()) {
    std::cerr << "cohort demo: --cheat: " << cheat.status().message() << "\n";
    return kExitUsage;
  }
  if (Status s = init_crypto(); !s.ok()) {
    std::cerr << "cohort demo: " << s.to_string() << "\n";
    return kExitFailure;
  }

  Logger log(std::cerr, LogLevel::kInfo, "coordinator");
  RuleRegistry rules;
  register_builtin_rules(rules);
  zmq::context_t context;
  auto coordinator = Coordinator::create(context, demo_job(*vm), rules, log);
  if (!coordinator.ok()) {
    log.error(coordinator.status().to_string());
    return kExitUsage;
  }

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / workers);
  WorkerProcesses processes;
  for (int i = 0; i < workers; ++i) {
    Status s = processes.spawn(
        worker_args((*coordinator)->endpoint(), *vm, threads, i, (*coordinator)->public_key()));
    if (!s.ok()) {
      log.error(s.to_string());
      return kExitFailure;
    }
  }
  log.info("started " + std::to_string(workers) + " worker process(es), " +
           std::to_string(threads) + " thread(s) each");

  int64_t paid = 0, slashed = 0;
  int audited = 0, failed = 0;
  auto summary = (*coordinator)->run([&](const RoundMetrics& m) {
    paid += m.paid;
    slashed += m.slashed;
    audited += m.audited;
    failed += m.audits_failed;
  });
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return kExitFailure;
  }
  processes.wait_all();
  char line[256];
  std::snprintf(line, sizeof(line),
                "done: %d rounds with %d workers, test accuracy %.4f, %.1f s of training; model "
                "in %s",
                summary->rounds_completed, workers, summary->test_accuracy, summary->seconds,
                summary->checkpoint.c_str());
  log.info(line);
  if (!vm->count("no-proof")) {
    log.info(std::to_string(audited) + " task(s) audited, " + std::to_string(failed) + " failed; paid " +
             format_amount(paid) + " tokens, slashed " + format_amount(slashed) + "; ledger in " +
             (vm->count("ledger") ? (*vm)["ledger"].as<std::string>()
                                  : (std::filesystem::path((*vm)["output-dir"].as<std::string>()) / "ledger.db").string()) +
             " (`cohort ledger show` / `cohort ledger verify`)");
  }
  if (vm->count("json")) {
    std::snprintf(line, sizeof(line),
                  "{\"rounds\":%d,\"workers\":%d,\"test_accuracy\":%.4f,\"train_seconds\":%.2f,"
                  "\"audited\":%d,\"audits_failed\":%d,\"paid\":%s,\"slashed\":%s}",
                  summary->rounds_completed, workers, summary->test_accuracy, summary->seconds, audited, failed,
                  format_amount(paid).c_str(), format_amount(slashed).c_str());
    std::cout << line << std::endl;
  }
  return kExitOk;
}

}  // namespace cohort::cli
