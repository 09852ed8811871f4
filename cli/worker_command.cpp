// `cohort worker --coordinator ENDPOINT`: contribute this machine.
#include <ATen/Parallel.h>

#include <iostream>
#include <optional>

#include "cohort/duration.h"
#include "cohort/endpoint.h"
#include "cohort/ledger.h"
#include "cohort/misbehaviour.h"
#include "cohort/proof_of_learning.h"
#include "cohort/worker.h"
#include "cohort/worker_connection.h"
#include "commands.h"
#include "options.h"
#include "shutdown_signals.h"

namespace cohort::cli {

int worker_command(const std::vector<std::string>& args) {
  WorkerOptions defaults;
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("coordinator", po::value<std::string>()->default_value(defaults.coordinator),
       "coordinator endpoint: tcp://HOST:PORT or ipc://PATH")
      ("device", po::value<std::string>()->default_value(defaults.device), "cpu, cuda or cuda:N")
      ("threads", po::value<int>()->default_value(0), "training threads (0 = LibTorch's default)")
      ("data-dir", po::value<std::string>()->default_value(defaults.data_dir.string()),
       "directory with MNIST-format IDX files (the training split is used)")
      ("images", po::value<std::string>(), "your own IDX image file (with --labels)")
      ("labels", po::value<std::string>(), "your own IDX label file (with --images)")
      ("idle-timeout", po::value<double>()->default_value(600.0, "600"),
       "seconds to wait for work before leaving (at most a year)")
      ("wire-dtype", po::value<std::string>()->default_value("float32"),
       "dtype of updates on the wire: float32, float64, float16 or bfloat16")
      ("key", po::value<std::string>(),
       "this worker's secret key file (`cohort keygen`); its public key is the account that "
       "is paid. Without it a key is made for this session only")
      ("coordinator-key", po::value<std::string>(),
       "the coordinator's public key (hex, or the coordinator.pub file in its output directory); required "
       "with CURVE: it authenticates the coordinator, and tasks signed by any other key are refused")
      ("no-curve", "connect without CurveZMQ, to a coordinator with [network] curve = false (plaintext)")
      ("state-dir", po::value<std::string>()->default_value(""),
       "where checkpoints of unsettled tasks and receipts are kept (default: "
       "~/.cache/cohort/worker-<key>)")
      ("models-from", po::value<std::vector<std::string>>()->composing(),
       "a TorchScript archive (or a directory of *.pt archives) this worker may train; repeatable. Tasks "
       "naming any other archive are refused (docs/THREAT_MODEL.md#model-archives)")
      ("accept-models", "train any TorchScript archive the (pinned) coordinator names in a signed task: it is "
       "fetched once, checked against the task's digest and cached in the state directory. Loading an "
       "archive runs its code in this process (docs/THREAT_MODEL.md#model-archives)")
      ("flip-labels", "Byzantine experiments only: train on flipped labels (y -> 9 - y)")
      ("cheat", po::value<std::string>()->default_value("none"),
       ("audit demonstrations and tests only: a dishonest prover (docs/PROOF_OF_LEARNING.md#cheats): " +
        cheat_names()).c_str())
      ("crash-before-reveal", "crash-safety tests only: exit abruptly when the first audit's challenge "
       "arrives, as if killed between the update and the reveal")
      ("quiet,q", "log warnings and errors only")
      ("verbose,v", "log debugging detail");
  int exit_code = kExitOk;
  auto vm = parse_args("worker",
                       "Trains tasks from a coordinator on local data; only updates leave "
                       "this machine.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  // First: before any thread exists (they inherit the blocked signals).
  ShutdownSignals signals("cohort worker");

  WorkerOptions worker;
  worker.coordinator = (*vm)["coordinator"].as<std::string>();
  if (Status address = check_endpoint(worker.coordinator, EndpointUse::kConnect); !address.ok()) {
    std::cerr << "cohort worker: --coordinator: " << address.message() << "\n";
    return kExitUsage;
  }
  const double idle_timeout = (*vm)["idle-timeout"].as<double>();
  if (const std::string problem = duration_problem(idle_timeout); !problem.empty()) {
    std::cerr << "cohort worker: --idle-timeout: " << problem << "\n";
    return kExitUsage;
  }
  worker.device = (*vm)["device"].as<std::string>();
  const int threads = (*vm)["threads"].as<int>();
  worker.data_dir = (*vm)["data-dir"].as<std::string>();
  if (vm->count("images")) worker.images = (*vm)["images"].as<std::string>();
  if (vm->count("labels")) worker.labels = (*vm)["labels"].as<std::string>();
  worker.idle_timeout = std::chrono::milliseconds(static_cast<int64_t>(idle_timeout * 1000.0));
  if (threads < 0) {
    std::cerr << "cohort worker: --threads must be >= 0\n";
    return kExitUsage;
  }
  auto wire_dtype = parse_dtype((*vm)["wire-dtype"].as<std::string>());
  if (!wire_dtype.ok()) {
    std::cerr << "cohort worker: --wire-dtype: " << wire_dtype.status().message() << "\n";
    return kExitUsage;
  }
  worker.wire_dtype = *wire_dtype;
  MisbehaviourOptions misbehaving;
  misbehaving.flip_labels = vm->count("flip-labels") > 0;
  auto cheat = parse_cheat((*vm)["cheat"].as<std::string>());
  if (!cheat.ok()) {
    std::cerr << "cohort worker: --cheat: " << cheat.status().message() << "\n";
    return kExitUsage;
  }
  misbehaving.cheat = *cheat;
  misbehaving.crash_before_reveal = vm->count("crash-before-reveal") > 0;
  // The test-only flags: installed only when asked for, so that an honest
  // worker runs without any hook.
  std::optional<ScriptedMisbehaviour> misbehaviour;
  if (misbehaving.any()) worker.misbehaviour = &misbehaviour.emplace(misbehaving);
  worker.state_dir = (*vm)["state-dir"].as<std::string>();
  if (vm->count("models-from")) {
    for (const std::string& path : (*vm)["models-from"].as<std::vector<std::string>>()) {
      worker.models_from.emplace_back(path);
    }
  }
  worker.accept_models = vm->count("accept-models") > 0;
  worker.curve = vm->count("no-curve") == 0;
  if (vm->count("coordinator-key")) {
    Result<PublicKey> key = read_public_key((*vm)["coordinator-key"].as<std::string>());
    if (!key.ok()) {
      std::cerr << "cohort worker: --coordinator-key: " << key.status().message() << "\n";
      return kExitUsage;
    }
    worker.coordinator_key = *key;
  }

  if (Status s = init_crypto(); !s.ok()) {
    std::cerr << "cohort worker: " << s.to_string() << "\n";
    return kExitFailure;
  }
  Logger log(std::cerr, log_level_of(*vm), "worker");
  // First, before any tensor operation: proof-of-learning tasks need
  // bitwise-reproducible training (it pins ATen's CPU kernels).
  if (Status s = use_deterministic_cpu_training(); !s.ok()) {
    log.error(s.to_string());
    return kExitFailure;
  }
  Result<Identity> identity =
      vm->count("key") ? read_identity((*vm)["key"].as<std::string>()) : Result<Identity>(Identity::generate());
  if (!identity.ok()) {
    std::cerr << "cohort worker: --key: " << identity.status().message() << "\n";
    return kExitUsage;
  }
  if (!vm->count("key")) log.warn("no --key: rewards go to a key made for this session only");
  log.info("worker key " + to_hex(identity->public_key()));
  // Process state is main's to set: the library trains with what it finds.
  if (threads > 0) at::set_num_threads(threads);
  zmq::context_t context;
  Result<CoordinatorConnector> connector = zeromq_connector(context, worker, *identity, log);
  if (!connector.ok()) {
    log.error(connector.status().to_string());
    return exit_code_for(connector.status());
  }
  auto summary = run_worker(*connector, worker, *identity, log, signals.token());
  if (!summary.ok()) {
    log.error(summary.status().to_string());
    return exit_code_for(summary.status());
  }
  log.info("leaving after " + std::to_string(summary->tasks_completed) + " task(s), " +
           std::to_string(summary->receipts) + " receipt(s), " + format_amount(summary->reward) +
           " tokens earned: " + summary->exit_reason);
  return kExitOk;
}

}  // namespace cohort::cli
