// `cohort demo`: one coordinator (in this process) and N worker processes
// on loopback, training the CNN on Fashion-MNIST.
//
// The flags become a job file's keys and go through the same validation as
// `cohort coordinator --config` (an error names the flag), before any worker
// starts. The workers cannot outlive the demo (child_processes.h): Ctrl-C
// or SIGTERM stops the job cleanly and its workers with it, and a demo
// killed outright takes them along.
#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <thread>

#include "child_processes.h"
#include "cohort/cheats.h"
#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "cohort/dataset.h"
#include "cohort/ledger.h"
#include "cohort/model_names.h"
#include "cohort/partition.h"
#include "commands.h"
#include "options.h"
#include "shutdown_signals.h"
#include "start_coordinator.h"

namespace cohort::cli {
namespace {

// The job's keys the flags set, for naming the flag in a config error.
constexpr std::pair<std::string_view, std::string_view> kFlagOfKey[] = {
    {"job.seed", "--seed"},
    {"job.rounds", "--rounds"},
    {"job.output_dir", "--output-dir"},
    {"model.name", "--model"},
    {"data.dir", "--data-dir"},
    {"data.partition", "--partition"},
    {"training.local_epochs", "--local-epochs"},
    {"training.batch_size", "--batch-size"},
    {"training.learning_rate", "--lr"},
    {"round.min_workers", "--workers"},
    {"ledger.path", "--ledger"},
};

// How long the workers get to leave after the coordinator said Bye.
constexpr std::chrono::seconds kWorkersLeave{30};

toml::table demo_toml(const po::variables_map& vm) {
  toml::table job{
      {"job", toml::table{{"name", "demo"},
                          {"seed", vm["seed"].as<int64_t>()},
                          {"rounds", vm["rounds"].as<int>()},
                          {"output_dir", vm["output-dir"].as<std::string>()}}},
      {"model", toml::table{{"name", vm["model"].as<std::string>()}}},
      {"data", toml::table{{"dir", vm["data-dir"].as<std::string>()}, {"partition", vm["partition"].as<std::string>()}}},
      {"training", toml::table{{"local_epochs", vm["local-epochs"].as<double>()},
                               {"batch_size", vm["batch-size"].as<int>()},
                               {"learning_rate", vm["lr"].as<double>()},
                               {"momentum", 0.9}}},
      {"round", toml::table{{"min_workers", vm["workers"].as<int>()},
                            {"min_updates", 1},
                            {"deadline_seconds", 600.0},
                            {"registration_timeout_seconds", 120.0}}},
      {"network", toml::table{{"listen", "tcp://127.0.0.1:*"}}},  // any free port
  };
  if (!vm.count("no-proof")) {
    // Paid, audited work: every worker is granted stake on registration (the
    // demo's faucet), half of the tasks are audited.
    job.insert("proof", toml::table{{"segment_steps", 50}, {"audit_probability", 0.5}, {"segments_per_audit", 2}});
    toml::table ledger{{"registration_grant", 1000}};
    if (vm.count("ledger")) ledger.insert("path", vm["ledger"].as<std::string>());
    job.insert("ledger", std::move(ledger));
  }
  return job;
}

// The demo's job, validated like a job file; errors name the flag.
Result<JobConfig> demo_job(const po::variables_map& vm) {
  std::ostringstream text;
  text << demo_toml(vm);
  constexpr std::string_view kOrigin = "cohort demo";
  Result<JobConfig> job = parse_job_config(text.str(), kOrigin);
  if (job.ok()) return job;
  std::string message = job.status().message().substr(kOrigin.size() + 2);  // "<key>: <problem>"
  for (const auto& [key, flag] : kFlagOfKey) {
    if (message.starts_with(std::string(key) + ": ")) message = std::string(flag) + message.substr(key.size());
  }
  return Status::invalid_argument(message);
}

// The dishonest workers asked for must be among the workers.
Status check_dishonest_counts(const po::variables_map& vm) {
  const int workers = vm["workers"].as<int>();
  const int cheaters = vm["cheaters"].as<int>();
  const int flippers = vm["flip-labels"].as<int>();
  if (workers < 1 || workers > 64) {
    return Status::invalid_argument("--workers: must be in [1, 64], got " + std::to_string(workers));
  }
  for (const auto& [flag, count] : {std::pair{"--cheaters", cheaters}, std::pair{"--flip-labels", flippers}}) {
    if (count < 0) return Status::invalid_argument(std::string(flag) + ": must be >= 0, got " + std::to_string(count));
  }
  if (cheaters + flippers > workers) {
    return Status::invalid_argument("--cheaters and --flip-labels: " + std::to_string(cheaters + flippers) + " of " +
                                    std::to_string(workers) + " workers would be dishonest; at most --workers (" +
                                    std::to_string(workers) + ")");
  }
  return parse_cheat(vm["cheat"].as<std::string>()).status().with_context("--cheat");
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

// The demo's totals over the rounds it ran.
struct Totals {
  int64_t paid = 0, slashed = 0;
  int audited = 0, failed = 0;
};

void report(const po::variables_map& vm, const JobSummary& summary, const Totals& totals, Logger& log) {
  const int workers = vm["workers"].as<int>();
  char line[512];
  const bool checkpointed = std::filesystem::exists(summary.checkpoint);
  std::snprintf(line, sizeof(line), "%s: %d rounds with %d workers, test accuracy %.4f, %.1f s of training; %s%s",
                summary.stopped ? "stopped" : "done", summary.rounds_completed, workers, summary.test_accuracy,
                summary.seconds, checkpointed ? "model in " : "nothing was checkpointed",
                checkpointed ? summary.checkpoint.c_str() : "");
  log.info(line);
  if (!vm.count("no-proof")) {
    log.info(std::to_string(totals.audited) + " task(s) audited, " + std::to_string(totals.failed) + " failed; paid " +
             format_amount(totals.paid) + " tokens, slashed " + format_amount(totals.slashed) + "; ledger in " +
             (vm.count("ledger") ? vm["ledger"].as<std::string>()
                                 : (std::filesystem::path(vm["output-dir"].as<std::string>()) / "ledger.db").string()) +
             " (`cohort ledger show` / `cohort ledger verify`)");
  }
  if (vm.count("json")) {
    std::snprintf(line, sizeof(line),
                  "{\"rounds\":%d,\"workers\":%d,\"test_accuracy\":%.4f,\"train_seconds\":%.2f,"
                  "\"audited\":%d,\"audits_failed\":%d,\"paid\":%s,\"slashed\":%s}",
                  summary.rounds_completed, workers, summary.test_accuracy, summary.seconds, totals.audited,
                  totals.failed, format_amount(totals.paid).c_str(), format_amount(totals.slashed).c_str());
    std::cout << line << std::endl;
  }
}

}  // namespace

int demo_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("workers", po::value<int>()->default_value(4), "worker processes, 1 to 64")
      ("rounds", po::value<int>()->default_value(5), "federated rounds")
      ("seed", po::value<int64_t>()->default_value(1), "seed for the model, shards and batches (>= 0)")
      ("model", po::value<std::string>()->default_value("cnn"), choices_text(model_names()).c_str())
      ("local-epochs", po::value<double>()->default_value(1.0, "1"), "local epochs per round")
      ("batch-size", po::value<int>()->default_value(32), "local batch size")
      ("lr", po::value<double>()->default_value(0.05, "0.05"), "local SGD learning rate (momentum 0.9)")
      ("partition", po::value<std::string>()->default_value("iid"), choices_text(partition_scheme_names()).c_str())
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
      ("json", "end with one JSON line: rounds, workers, test_accuracy, train_seconds, audited, audits_failed, "
               "paid, slashed")
      ("verbose,v", "show the workers' logs too");
  int exit_code = kExitOk;
  auto vm = parse_args("demo",
                       "Runs a local federated job on Fashion-MNIST: one coordinator and "
                       "several worker processes on loopback.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  // First: before any thread exists (they inherit the blocked signals).
  ShutdownSignals signals("cohort demo");
  if (Status counts = check_dishonest_counts(*vm); !counts.ok()) {
    std::cerr << "cohort demo: " << counts.message() << "\n";
    return kExitUsage;
  }
  Result<JobConfig> job = demo_job(*vm);
  if (!job.ok()) {
    std::cerr << "cohort demo: " << job.status().message() << "\n";
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
  auto coordinator = start_coordinator(context, std::move(job).value(), rules, log);
  if (!coordinator.ok()) {
    log.error(coordinator.status().to_string());
    return kExitUsage;
  }

  const int workers = (*vm)["workers"].as<int>();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = std::max(1, cores / workers);
  ChildProcesses processes;  // killed on every way out of this function
  for (int i = 0; i < workers; ++i) {
    Status s = processes.spawn(worker_args((*coordinator)->endpoint(), *vm, threads, i, (*coordinator)->public_key()));
    if (!s.ok()) {
      log.error(s.to_string());
      return kExitFailure;
    }
  }
  log.info("started " + std::to_string(workers) + " worker process(es), " + std::to_string(threads) +
           " thread(s) each");

  Totals totals;
  auto summary = (*coordinator)->run(
      [&](const RoundMetrics& m) {
        totals.paid += m.paid;
        totals.slashed += m.slashed;
        totals.audited += m.audited;
        totals.failed += m.audits_failed;
      },
      signals.token());
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return kExitFailure;
  }
  processes.wait_all(kWorkersLeave);  // they were told Bye
  report(*vm, *summary, totals, log);
  return kExitOk;
}

}  // namespace cohort::cli
