// `cohort coordinator --config JOB.toml`: serve one job.
#include <iostream>

#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {

int coordinator_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("config,c", po::value<std::string>()->required(), "job description (TOML, see docs/CONFIG.md)")
      ("resume", "continue the job from the checkpoint in its output directory (model, aggregator "
                 "state, round number) instead of starting afresh")
      ("json", "print each round's metrics as one JSON line on stdout")
      ("quiet,q", "log warnings and errors only")
      ("verbose,v", "log debugging detail");
  int exit_code = kExitOk;
  auto vm = parse_args("coordinator", "Serves the federated job described by a TOML file.",
                       options, args, exit_code);
  if (!vm) return exit_code;

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
  const StartMode mode = vm->count("resume") ? StartMode::kResume : StartMode::kFresh;
  auto coordinator = Coordinator::create(context, std::move(config).value(), rules, log, mode);
  if (!coordinator.ok()) {
    log.error(coordinator.status().to_string());
    return kExitUsage;
  }
  const bool json = vm->count("json") > 0;
  auto summary = (*coordinator)->run([&](const RoundMetrics& m) {
    if (json) std::cout << m.to_json() << std::endl;
  });
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return kExitFailure;
  }
  log.info("done: " + std::to_string(summary->rounds_completed) + " rounds, test accuracy " +
           std::to_string(summary->test_accuracy) + ", model in " + summary->checkpoint.string());
  return kExitOk;
}

}  // namespace cohort::cli
