// `cohort coordinator --config JOB.toml`: serve one job.
#include <filesystem>
#include <iostream>

#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "commands.h"
#include "options.h"
#include "shutdown_signals.h"
#include "start_coordinator.h"

namespace cohort::cli {

int coordinator_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("config,c", po::value<std::string>()->required(), "job description (TOML, see docs/CONFIG.md)")
      ("resume", "continue the job from the checkpoint in its output directory (model, aggregator "
                 "state, round number, worker indices); an error when there is none. Without --resume "
                 "or --fresh the job resumes when its output directory holds its checkpoint")
      ("fresh", "start the job afresh even when its output directory holds a checkpoint (which is "
                "overwritten)")
      ("json", "print each round's metrics as one JSON line on stdout")
      ("quiet,q", "log warnings and errors only")
      ("verbose,v", "log debugging detail");
  int exit_code = kExitOk;
  auto vm = parse_args("coordinator", "Serves the federated job described by a TOML file.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  if (vm->count("resume") && vm->count("fresh")) {
    std::cerr << "cohort coordinator: --resume and --fresh exclude each other\n";
    return kExitUsage;
  }
  // First: before any thread exists (they inherit the blocked signals).
  ShutdownSignals signals("cohort coordinator");

  if (Status s = init_crypto(); !s.ok()) {
    std::cerr << "cohort coordinator: " << s.to_string() << "\n";
    return kExitFailure;
  }
  Result<JobConfig> config = load_job_config((*vm)["config"].as<std::string>());
  if (!config.ok()) {
    std::cerr << "cohort coordinator: " << config.status().message() << "\n";
    return kExitUsage;
  }
  Logger log(std::cerr, log_level_of(*vm), "coordinator");
  RuleRegistry rules;
  register_builtin_rules(rules);
  zmq::context_t context;
  const StartMode mode = vm->count("resume")  ? StartMode::kResume
                         : vm->count("fresh") ? StartMode::kFresh
                                              : StartMode::kAuto;
  auto coordinator = start_coordinator(context, std::move(config).value(), rules, log, mode);
  if (!coordinator.ok()) {
    log.error(coordinator.status().to_string());
    return kExitUsage;
  }
  const bool json = vm->count("json") > 0;
  auto summary = (*coordinator)->run([&](const RoundMetrics& m) {
    if (json) std::cout << m.to_json() << std::endl;
  }, signals.token());
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return kExitFailure;
  }
  if (summary->stopped && !std::filesystem::exists(summary->checkpoint)) {
    log.info("stopped before round 1 finished: nothing was checkpointed; run the same command to start the job");
    return kExitOk;
  }
  if (summary->stopped) {
    log.info("stopped after round " + std::to_string(summary->rounds_completed) + "; model in " +
             summary->checkpoint.string() + "; run the same command to resume");
    return kExitOk;
  }
  log.info("done: " + std::to_string(summary->rounds_completed) + " rounds, test accuracy " +
           std::to_string(summary->test_accuracy) + ", model in " + summary->checkpoint.string());
  return kExitOk;
}

}  // namespace cohort::cli
