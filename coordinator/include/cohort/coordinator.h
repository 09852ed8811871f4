// The researcher's side of a job: a server that registers workers and runs
// the rounds, over a Channel (channel.h) its caller provides.
//
// One round: announce (send each selected worker a Task and the global
// model) -> collect Updates until every participant answered or the round
// deadline passed -> check each update (round, task, base model, layout,
// finite values) -> run the configured pre-aggregators and rule on the
// accepted ones -> move the global model by the server step
// (aggregation.server_optimizer; by default += server_learning_rate *
// aggregate) -> evaluate on the held-out
// test set -> checkpoint the model atomically -> append the round's metrics
// to <output_dir>/metrics.jsonl -> tell each participant the result.
//
// Every task is signed with the coordinator's key; every update must carry
// its worker's signature. With [proof] on, each task also carries a
// commitment to a fresh challenge secret; an update must come with the
// worker's Merkle commitment; the coordinator then reveals the secret, and
// an audited update waits for the worker's reveal and its re-execution on a
// verifier thread (docs/PROOF_OF_LEARNING.md) before it may be aggregated.
// A failed audit, a missing reveal or an equivocation drops the update and
// slashes and bans the key. At the end of the round the ledger pays the
// round's budget over the settled, paid work and each participant gets a
// signed receipt (docs/LEDGER.md).
//
// The caller builds what the coordinator works with and hands it over
// (CoordinatorParts): the job's lock, the clock, the coordinator's
// identity, the ledger (with [proof]) and the channel. For a real job that channel is listen_router (router_channel.h):
// with network.curve (the default) all traffic is CurveZMQ under the
// coordinator's key, a ZAP handler admits any client key or only those of
// network.allow_list, and a Hello must carry the Ed25519 key whose CURVE key
// the connection authenticated with (cohort/transport.h).
//
// A round with fewer accepted updates than `round.min_updates` keeps the old
// model. Malformed, wrong-round and duplicate messages are answered with a
// typed Error and counted; they never stop the round. A worker that
// disconnects only costs the round its update.
//
// The Coordinator runs on the calling thread and is not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/aggregation.h"
#include "cohort/channel.h"
#include "cohort/clock.h"
#include "cohort/config.h"
#include "cohort/crypto.h"
#include "cohort/file_lock.h"
#include "cohort/ledger.h"
#include "cohort/log.h"
#include "cohort/receipt.h"
#include "cohort/server_optimizer.h"
#include "cohort/status.h"
#include "cohort/tensor_codec.h"

namespace cohort {

struct PhaseSeconds {
  double announce = 0.0;   // encode and send tasks + model
  double collect = 0.0;    // wait for, receive, decode and check updates
  double aggregate = 0.0;  // stack, aggregate, apply
  double evaluate = 0.0;   // test-set evaluation
  double checkpoint = 0.0; // write the model
  double total = 0.0;
};

struct RoundMetrics {
  uint32_t round = 0;
  // Of the new global model on the test set; NaN (null in JSON) in a round
  // that data.eval_every skips.
  double test_accuracy = 0.0;
  double test_loss = 0.0;
  int participants = 0;     // tasks sent
  int accepted = 0;         // updates aggregated
  int rejected = 0;         // messages answered with an Error this round
  int limits_exceeded = 0;  // of them, over a size or rate limit ([network])
  // (worker index, why) for every task whose update was not aggregated:
  // refused (invalid, NaN/Inf, norm), failed or voided audit, left, late.
  std::vector<std::pair<uint32_t, std::string>> not_aggregated;
  bool model_updated = false;
  double mean_local_loss = 0.0;  // over accepted updates
  // (worker index, weight of its update in the aggregate): 0 for an update a
  // robust rule discarded; the weights sum to 1.
  std::vector<std::pair<uint32_t, double>> worker_weights;
  int byzantine = 0;              // simulated Byzantine updates added ([attack])
  double byzantine_weight = 0.0;  // their share of the aggregate
  // Proof of learning ([proof] on): tasks audited and failed this round,
  // and micro-tokens paid and slashed when it was settled.
  int audited = 0;
  int audits_failed = 0;
  int64_t paid = 0;
  int64_t slashed = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  PhaseSeconds seconds;
  // The coordinator thread's CPU time in each phase (its ZeroMQ I/O thread,
  // which encrypts and decrypts with CURVE, is not counted).
  PhaseSeconds cpu_seconds;

  // One line of JSON (the format of metrics.jsonl).
  std::string to_json() const;
};

struct JobSummary {
  int rounds_completed = 0;
  double test_accuracy = 0.0;
  double test_loss = 0.0;
  double seconds = 0.0;     // from the first task sent to the last round closed
  std::filesystem::path checkpoint;
  // Stopped on request before the job finished; starting the coordinator
  // again resumes it after round `rounds_completed`.
  bool stopped = false;
};

using RoundCallback = std::function<void(const RoundMetrics&)>;

// How a coordinator starts: a new job (kFresh); the job whose checkpoint is
// in its output directory (kResume), continuing after the last checkpointed
// round with that model, aggregator state and worker indices, after
// finishing that round's settlement in the ledger and voiding what a crash
// interrupted (metrics.jsonl is kept and appended to); or (kAuto) kResume
// when the output directory holds a checkpoint and kFresh when it does not.
enum class StartMode { kFresh, kResume, kAuto };

// The job's lock, <output_dir>/coordinator.lock (the directory is made if
// needed): one coordinator per job. Take it before anything else touches
// the job's files or its endpoint (docs/OPERATIONS.md, "One instance per
// job"). Errors: FailedPrecondition naming the process that holds it;
// IoError.
Result<FileLock> lock_job(const JobConfig& config);

// The coordinator's key: the file [ledger] key, or <output_dir>/coordinator.key,
// made on first use. Tasks are always signed and the ledger is bound to the
// key, so it is kept across restarts. Errors: an unreadable or malformed
// key file, or one that cannot be written.
Result<Identity> load_coordinator_identity(const JobConfig& config, Logger& log);

// The job's ledger: the file [ledger] path, or <output_dir>/ledger.db,
// opened (or created) and locked under the coordinator's key (ledger.h);
// `identity` is borrowed and must outlive it. Only a job with [proof]
// keeps a ledger. Errors: Ledger::open's (FailedPrecondition naming the
// process that holds it, or the key that created it; Corruption; IoError).
Result<std::unique_ptr<Ledger>> open_job_ledger(const JobConfig& config, const Identity& identity);

// What the caller builds, in this order, and hands a coordinator for its
// whole life.
struct CoordinatorParts {
  FileLock job_lock;  // lock_job(config)
  // Every deadline (registration, round, reveal), the rate limit's refill
  // and the task deadline workers are told; SystemClock in a real job.
  std::shared_ptr<const Clock> clock;
  // load_coordinator_identity(config); shared with the ledger it signs.
  std::shared_ptr<const Identity> identity;
  // With [proof]: open_job_ledger(config, *identity). Null without.
  std::unique_ptr<Ledger> ledger;
  std::unique_ptr<Channel> channel;  // listen_router(..., *identity) or an InProcessChannel
};

class Coordinator {
 public:
  // Validates the job, loads the test set (and checks that it fits the
  // model), builds the initial model (or loads the checkpoint, for
  // kResume) and the aggregation rule, publishes the public key in
  // <output_dir>/coordinator.pub and, with [proof], settles what the
  // ledger left open. A fresh job over its own ledger that closed rounds of
  // an earlier run keeps that ledger whole as <stem>-until-<unix ms>.db and
  // begins a new one at the same path (docs/LEDGER.md). With [proof] on,
  // use_deterministic_cpu_training() (proof_of_learning.h) must have been
  // called first thing in the process. Errors: no clock, identity or channel, no
  // ledger with [proof] or one without (InvalidArgument); an unknown rule
  // or bad rule parameter, unreadable test data or data that does not fit
  // the model; for kResume, no checkpoint (NotFound) or one of another model
  // (FailedPrecondition); a ledger that disagrees with the checkpoint
  // (FailedPrecondition naming the first difference), or one configured
  // elsewhere that closed rounds of an earlier job (FailedPrecondition).
  static Result<std::unique_ptr<Coordinator>> create(JobConfig config, CoordinatorParts parts,
                                                     const RuleRegistry& rules, Logger& log,
                                                     StartMode mode = StartMode::kFresh);
  ~Coordinator();
  Coordinator(const Coordinator&) = delete;
  Coordinator& operator=(const Coordinator&) = delete;

  // The channel's endpoint (a RouterChannel resolves "tcp://127.0.0.1:*"
  // to the chosen port).
  std::string endpoint() const;

  // The key that signs tasks, challenges, receipts and the ledger and
  // (with CURVE) authenticates the coordinator; published in
  // <output_dir>/coordinator.pub.
  // Workers pin it with `cohort worker --coordinator-key`.
  const PublicKey& public_key() const;

  // Waits for round.min_workers registrations, runs every round, then sends
  // Bye to all workers. `on_round` is called after each round closes. A job
  // resumed after its last round returns at once. When `stop` is requested
  // (SIGTERM), the round being collected is abandoned: its open tasks are
  // voided in the ledger and it runs again after a restart; a round past
  // collection finishes and is checkpointed; then workers get Bye and the
  // summary says `stopped`. Errors: too few workers registered in time; a
  // failed checkpoint, metrics or ledger write.
  Result<JobSummary> run(const RoundCallback& on_round = {}, std::stop_token stop = {});

 private:
  class Impl;
  explicit Coordinator(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// A saved global model: the checkpoint written after every round. It is the
// round's commit point (docs/OPERATIONS.md, "Crash safety"): besides the
// model it records what a restarted coordinator needs to finish settling
// the round and to go on with the same workers.
struct Checkpoint {
  uint32_t round = 0;
  std::string model_name;
  Layout layout;
  at::Tensor flat;  // float32
  Digest digest{};
  // The aggregation rule's state for the next round (the last aggregate,
  // where centered clipping starts); undefined when there is none.
  at::Tensor previous_aggregate;
  // The job it belongs to: a coordinator resumes only its own job. Empty
  // name in checkpoints written before these fields existed.
  std::string job_name;
  uint64_t job_seed = 0;
  // Worker keys by index: a worker keeps its index (its data shard, its
  // task ids) across a restart.
  std::vector<PublicKey> workers;
  // The ledger verdict (passed or unaudited) of each task aggregated this
  // round, by task id: the ledger pays them after the checkpoint is written.
  std::vector<std::pair<uint64_t, Verdict>> settlement;
  // The round's metrics.jsonl line as of the checkpoint (paid, slashed and
  // audit counts come from the ledger), for a restart that finds it missing.
  // A checkpoint that was read holds a JSON object here (or nothing).
  std::string metrics_json;
  // The same line's test accuracy and loss (what a resumed job reports before
  // its first new round), decoded when a checkpoint is read; 0 where the line
  // has no such field, NaN where it is null (a round not evaluated).
  double test_accuracy = 0.0;
  double test_loss = 0.0;
  // With training.keep_momentum and proof of learning: the momentum digest
  // each worker's last commitment ended with, which its next task names.
  std::vector<std::pair<PublicKey, Digest>> carried_momentum;
  // The server optimizer (aggregation.server_optimizer) and its state for
  // the next round; "" in checkpoints written before it was kept, which all
  // stepped with plain "sgd".
  std::string server_optimizer;
  ServerOptimizerState server_state;
  // The TorchScript archive the model came from (model.path); zero for a
  // built-in: a resumed job must train the same archive.
  Digest model_archive{};
};

// Writes atomically: a temporary file, fsync, rename over `path`, fsync of
// the directory. A crash leaves either the old or the new file, never a mix.
Status write_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);

// Errors: a missing file, a bad magic or version, truncation, a digest that
// does not match the contents.
Result<Checkpoint> read_checkpoint(const std::filesystem::path& path);

// The same from the file's bytes; `where` names them in errors (fuzz/).
Result<Checkpoint> parse_checkpoint(std::string_view bytes, const std::string& where);

}  // namespace cohort
