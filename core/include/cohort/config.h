// A researcher's job description: what to train, on what, how, and where.
//
// A job is written as TOML (docs/CONFIG.md documents every key and its
// default). Parsing is strict: an unknown table or key, a value of the wrong
// type, or a value out of range is an error whose message names the key
// (e.g. "training.batch_size: must be >= 1, got 0"). Every field below has
// the documented default, so an empty file is a valid job.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/amount.h"
#include "cohort/status.h"

namespace cohort {

struct JobSection {
  std::string name = "cohort-job";         // non-empty
  uint64_t seed = 1;                       // seeds model init, partitions, batch order
  int rounds = 5;                          // >= 1
  std::filesystem::path output_dir = "runs/cohort-job";  // metrics.jsonl, checkpoints; non-empty
  bool operator==(const JobSection&) const = default;
};

struct ModelSection {
  std::string name = "cnn";  // "cnn" | "mlp" | "mlp-wide"; "torchscript" when path is set
  // A TorchScript archive (docs/MODELS.md) instead of a built-in; "" = none.
  std::filesystem::path path;
  bool operator==(const ModelSection&) const = default;
};

struct DataSection {
  // "fashion-mnist": IDX files in `dir`; "idx": explicit IDX paths below.
  std::string dataset = "fashion-mnist";
  std::filesystem::path dir = "/usr/share/datasets/fashion-mnist";  // non-empty for fashion-mnist
  // Used and required when dataset == "idx" (the coordinator's held-out test set).
  std::filesystem::path test_images;
  std::filesystem::path test_labels;
  // The training split workers cut their shards from, when dataset == "idx";
  // the coordinator needs it to re-execute audited work ([proof]).
  std::filesystem::path train_images;
  std::filesystem::path train_labels;
  // How each worker's local dataset is split into the shard it trains on:
  // "iid" | "dirichlet" (by label, `alpha`) | "gamma" (label-sorted mix with
  // IID share `gamma`) | "none" (every worker uses all of its own data).
  std::string partition = "iid";
  double alpha = 0.5;   // dirichlet concentration, > 0
  double gamma = 1.0;   // in [0, 1]; 1 = IID, 0 = label-sorted
  int eval_samples = 0; // test samples the coordinator evaluates on; 0 = all
  int eval_every = 1;   // evaluate every K rounds (and after the last); >= 1
  bool operator==(const DataSection&) const = default;
};

struct TrainingSection {
  // Exactly one of local_steps (> 0) or local_epochs (> 0) drives local
  // training; when both are 0 the default is one local epoch.
  int local_steps = 0;         // >= 0
  double local_epochs = 0.0;   // >= 0; fractions allowed (0.5 = half a pass)
  int batch_size = 32;         // >= 1
  double learning_rate = 0.05; // > 0
  double momentum = 0.9;       // in [0, 1)
  double weight_decay = 0.0;   // >= 0
  // Keep each worker's SGD momentum buffers from one round to the next
  // (distributed SGD as in the robustness literature) instead of starting
  // every task with fresh momentum (FedAvg).
  bool keep_momentum = false;
  std::string loss = "cross-entropy";  // cohort/loss.h: "cross-entropy" | "nll" | "mse" | "bce-with-logits"
  bool operator==(const TrainingSection&) const = default;
};

struct AggregationSection {
  // Pre-aggregators applied in order before the rule, e.g. ["clip", "nnm"].
  std::vector<std::string> pre;
  // Name in the aggregation RuleRegistry, kept exactly as written; non-empty.
  // Whether the registry knows it is checked where the rule is looked up.
  std::string rule = "fedavg";
  double server_learning_rate = 1.0; // the server step's rate (sgd: global += lr * aggregate); > 0
  int f = 0;                         // assumed Byzantine workers per round, >= 0
  // Trusted samples (the first ones of the job's training split) on which
  // the coordinator trains its own root update each round, for rules that
  // need one (fltrust); 0 = none.
  int root_samples = 0;
  // Updates with a larger L2 norm are refused before aggregation (the
  // reason goes to metrics.jsonl and the ledger); 0 = no limit.
  double max_update_norm = 1e6;
  // Rule-specific parameters, kept as text and checked by the rule itself:
  // strings as written, integers in decimal, booleans as "true"/"false",
  // floats in the shortest form that parses back to the same double.
  std::map<std::string, std::string> params;
  // The server step (cohort/server_optimizer.h): "sgd" (global += lr *
  // aggregate), "momentum", "adagrad", "adam" or "yogi", with its
  // parameters kept as text like `params`; both checked where the
  // optimizer is made.
  std::string server_optimizer = "sgd";
  std::map<std::string, std::string> server_params;
  bool operator==(const AggregationSection&) const = default;
};

// Durations (here and in [proof]) are seconds in (0, kMaxDurationSeconds],
// at most a year (cohort/duration.h).
struct RoundSection {
  int min_workers = 1;          // registrations awaited before round 1, >= max(1, min_updates)
  int workers_per_round = 0;    // >= 0; 0 = every registered worker
  // Quorum: fewer accepted updates = no new model. >= 1, and
  // <= workers_per_round when that is > 0.
  int min_updates = 1;
  double deadline_seconds = 120.0;               // per round
  double registration_timeout_seconds = 120.0;   // wait for min_workers
  bool operator==(const RoundSection&) const = default;
};

struct NetworkSection {
  // ZeroMQ endpoint: tcp://HOST:PORT (PORT 1-65535 or *), ipc:// or inproc://
  // (cohort/endpoint.h).
  std::string listen = "tcp://127.0.0.1:5555";
  int64_t max_message_bytes = int64_t{1} << 30;  // per ZeroMQ frame, >= 1 MiB
  // Tensor payload frame size, >= 4 KiB and <= max_message_bytes.
  int64_t chunk_bytes = int64_t{16} << 20;
  int64_t max_model_bytes = int64_t{2} << 30;    // largest model/update accepted, >= 1
  // Per worker: messages per second on average and at once (a token
  // bucket); more are refused with rateLimited. 0 = no limit.
  double messages_per_second = 50.0;
  int message_burst = 100;                       // >= 1
  // Per worker: messages ZeroMQ queues before it stops reading from that
  // peer (its receive high-water mark), so one peer cannot fill memory.
  int max_pending_messages = 64;                 // >= 1
  // CurveZMQ for all worker traffic (transport.h); needs tcp:// or ipc://.
  bool curve = true;
  // A file of worker public keys (hex, one per line) admitted to connect;
  // "" = open registration (any key). Needs curve.
  std::filesystem::path allow_list;
  bool operator==(const NetworkSection&) const = default;
};

// Simulated Byzantine workers, for robustness experiments: each round the
// coordinator adds `byzantine` updates computed by the named attack from the
// round's honest updates (an omniscient adversary) before aggregating. Off
// when `byzantine` is 0.
struct AttackSection {
  std::string name = "sign-flip";  // an attack from cohort/attacks.h
  int byzantine = 0;               // >= 0
  // Attack parameters, kept as text like aggregation.params.
  std::map<std::string, std::string> params;
  bool operator==(const AttackSection&) const = default;
};

// Proof of learning (docs/PROOF_OF_LEARNING.md): each worker commits to its
// training trajectory in segments of `segment_steps` SGD steps; the
// coordinator audits a random share of tasks by re-executing segments, and
// pays from the ledger ([ledger]) only for work that passed or was not
// drawn for audit. Off when segment_steps is 0; then nothing is paid.
struct ProofSection {
  int segment_steps = 0;              // k, >= 0; 0 = off
  double audit_probability = 0.1;     // rho, in (0, 1]
  int segments_per_audit = 7;         // s random segments (>= 1), plus always the last
  std::string profile = "cpu-exact";  // "cpu-exact" (bitwise) | "tolerant"
  double tolerance = 0.0;             // tau for "tolerant": relative L2 error, in (0, 0.05]
  double reveal_seconds = 60.0;       // a challenged worker's time to reveal (a duration)
  int verifier_threads = 1;           // re-executions running beside the round, >= 1
  bool operator==(const ProofSection&) const = default;
};

// Stake, rewards and slashing (docs/LEDGER.md); used when [proof] is on.
// Amounts are micro-tokens, written in the file as tokens with at most 6
// decimals and read exactly with parse_amount (cohort/amount.h).
struct LedgerSection {
  std::filesystem::path path;       // SQLite file; "" = <job.output_dir>/ledger.db
  std::filesystem::path key;        // coordinator's secret key; "" = <job.output_dir>/coordinator.key (made if absent)
  Amount reward_per_round = 100 * kMicrosPerToken;  // split over the round's paid work by samples
  Amount min_stake = 1000 * kMicrosPerToken;        // stake a worker needs to be given tasks
  double slash_fraction = 1.0;                      // of the stake, taken on a failed audit, in (0, 1]
  // Stake credited to each new account at registration (a test network's
  // faucet; 0 in production, where stake comes from `cohort ledger deposit`).
  Amount registration_grant = 0;
  bool operator==(const LedgerSection&) const = default;
};

struct JobConfig {
  JobSection job;
  ModelSection model;
  DataSection data;
  TrainingSection training;
  AggregationSection aggregation;
  RoundSection round;
  NetworkSection network;
  AttackSection attack;
  ProofSection proof;
  LedgerSection ledger;
  bool operator==(const JobConfig&) const = default;
};

// The least stake that makes cheating a loss in expectation (the stake rule
// S >= C / (rho * d) - R of docs/LEDGER.md, in tokens), taking the worst
// case that a task costs as much as the whole round's reward (C = R =
// reward_per_round) and d = 1 for cpu-exact, 0.9 for tolerant audits.
double minimum_slashable_stake(const JobConfig& config);

// Parses TOML text. `origin` names the source in error messages (a path).
// Returns the config, or InvalidArgument "<origin>: <key>: <problem>" for the
// first unknown key, wrong type, out-of-range value or contradiction, and
// "<origin>: line L, column C: <problem>" for TOML syntax errors. Never
// throws for bad input. Thread-safe: no shared state.
Result<JobConfig> parse_job_config(std::string_view toml_text,
                                   std::string_view origin = "<config>");

// Reads and parses a TOML file; errors name the file (as `origin` above).
// NotFound when the file does not exist, IoError when it cannot be read.
Result<JobConfig> load_job_config(const std::filesystem::path& path);

}  // namespace cohort
