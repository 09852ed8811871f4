// A volunteer's or data holder's side of a job: connect to a coordinator,
// register, and for each task train the received model on local data and
// send back the update. Raw data never leaves the worker; only updates do.
//
// Every task must carry the coordinator's signature (the key comes from the
// Welcome, or is pinned with `coordinator_key`); unsigned or forged tasks
// are refused. When a task asks for proof of learning, the worker trains
// deterministically, keeps a checkpoint every k steps under `state_dir`,
// sends a signed Merkle commitment with its update, answers the
// coordinator's challenge by revealing the challenged segments, and keeps
// the coordinator-signed receipt of each settled task in
// `state_dir/receipts.jsonl` (checkpoints are deleted once settled).
//
// A Worker runs on the calling thread until the coordinator says the job is
// done (Bye), or no message arrived for `idle_timeout`, or a fatal error
// occurs. Malformed or unexpected messages from the coordinator are logged
// and skipped. Not thread-safe: one thread drives one Worker.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>

#include "cohort/channel.h"
#include "cohort/crypto.h"
#include "cohort/dataset.h"
#include "cohort/log.h"
#include "cohort/proof_of_learning.h"
#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

// The points where a worker can be made to misbehave, for tests, demos and
// experiments; an honest worker has none (WorkerOptions::misbehaviour is
// null). The worker calls each at the point it names, and the defaults do
// what an honest worker does. The ones `cohort worker --flip-labels`,
// `--cheat` and `--crash-before-reveal` install live in the worker_testing
// library (cohort/misbehaviour.h, cohort/cheats.h), which the production
// worker does not link. Called on the worker's thread only.
class Misbehaviour {
 public:
  virtual ~Misbehaviour() = default;

  // The local data as loaded, after its digest (the one announced for
  // proof of learning) was taken; it may change it.
  virtual void on_data_loaded(LabeledImages& /*data*/) {}

  // Trains a task with proof of learning: the same arguments and contract
  // as train_with_proof (proof_of_learning.h), which the default calls.
  virtual Result<ProvenTraining> train_with_proof(Model& model, const TensorDataset& shard,
                                                  const Hyperparameters& hyper, uint64_t seed, uint64_t task_id,
                                                  const ProofParams& params,
                                                  const std::filesystem::path& checkpoint_dir,
                                                  MomentumBuffers* momentum);

  // Whether an update with NaN or Inf parameters is sent (and slashed as
  // fraud) instead of being reported as a failed task.
  virtual bool sends_non_finite_updates() const { return false; }

  // The challenge of audited task `task_id` was checked; its reveal is next.
  virtual void before_reveal(uint64_t /*task_id*/, Logger& /*log*/) {}
};

struct WorkerOptions {
  // Where the coordinator is: tcp://HOST:PORT, ipc://PATH (endpoint.h) for
  // zeromq_connector (worker_connection.h); a name in logs otherwise.
  std::string coordinator = "tcp://127.0.0.1:5555";
  std::string device = "cpu";         // cpu | cuda | cuda:N
  // Local data: the training split of an MNIST-format directory, or a data
  // holder's own IDX pair when `images` and `labels` are both set.
  std::filesystem::path data_dir = kDefaultFashionMnistDir;
  std::filesystem::path images;
  std::filesystem::path labels;
  // The same data already in memory: `cohort simulate` reads the training
  // split once for all its workers. When set, the files above are not read
  // (they still name the data in messages).
  std::shared_ptr<const LabeledImages> loaded_data;
  std::chrono::milliseconds idle_timeout{600'000};  // give up waiting for work; at most a year (duration.h)
  size_t chunk_bytes = size_t{16} << 20;
  DType wire_dtype = DType::kFloat32;              // dtype of updates on the wire
  // Tests, demos and experiments only (Misbehaviour above); null for an
  // honest worker. Not owned: it must outlive run_worker, and serves one
  // worker at a time.
  Misbehaviour* misbehaviour = nullptr;
  // Checkpoints of tasks awaiting settlement, and receipts; empty = the
  // key's own directory, $XDG_CACHE_HOME (or ~/.cache)/cohort/worker-<key>.
  std::filesystem::path state_dir;
  // The TorchScript archives this worker may train (files, or directories
  // of *.pt), and whether it trains any archive its coordinator names
  // (fetched and cached in state_dir/models): docs/THREAT_MODEL.md.
  std::vector<std::filesystem::path> models_from;
  bool accept_models = false;
  // The coordinator's public key. Required with `curve`: it authenticates
  // the server in the CURVE handshake. Without CURVE it may be left out,
  // and the key in the coordinator's Welcome is trusted for the session
  // (and logged).
  std::optional<PublicKey> coordinator_key;
  // CurveZMQ to the coordinator ([network] curve), with the transport key
  // derived from the worker's identity (cohort/transport.h); for
  // zeromq_connector.
  bool curve = true;
};

// Opens the worker's connection to its coordinator: zeromq_connector
// (worker_connection.h) for a real one, or a function that hands over an
// InProcessChannel's peer (channel.h). Called once.
using CoordinatorConnector = std::function<Result<std::unique_ptr<ClientChannel>>()>;

struct WorkerSummary {
  int tasks_completed = 0;
  int tasks_failed = 0;
  int receipts = 0;            // settled tasks with a valid receipt
  int64_t reward = 0;          // micro-tokens, summed over receipts
  std::string exit_reason;  // the coordinator's Bye reason, or why we stopped
};

// Loads the worker's local training data as configured in `options` (or
// takes options.loaded_data), passed through
// options.misbehaviour->on_data_loaded (on a copy), when set, and checks
// that it fits the built-in models (models.h: 28x28 images, labels 0-9, at
// least one sample; InvalidArgument naming the file otherwise). When
// `digest` is given it receives digest_of() the data as loaded, before the
// misbehaviour saw it.
Result<std::shared_ptr<const LabeledImages>> load_worker_data(const WorkerOptions& options,
                                                              Digest* digest = nullptr);

// Where a worker with `key` keeps its state when options.state_dir is empty.
std::filesystem::path default_state_dir(const PublicKey& key);

// Loads the local data, connects with `connect`, registers and serves
// tasks. `identity` is the worker's account.
// Proof-of-learning tasks need use_deterministic_cpu_training()
// (proof_of_learning.h) to have been called first thing in the process.
// The worker leaves process state alone: it trains with LibTorch's
// intra-op thread count as the caller set it (at::set_num_threads; `cohort
// worker --threads`), and reports that count in its Hello.
// A worker whose connection was lost and made again (the coordinator
// restarted) registers again, as it does when the coordinator answers
// NotRegistered; the Welcome repeats its latest receipts and it keeps the
// ones missing from receipts.jsonl. When `stop` is requested (SIGTERM) it
// trains no new task, waits for the result of an update it sent (an audit
// may still challenge it), says Bye and returns.
// A task whose training throws (a LibTorch error) fails with the error
// reported to the coordinator; the worker goes on serving. When nothing has
// answered for a few seconds it says so in the log, once.
// Errors: the device is unavailable, local data that cannot be read or
// does not fit the models, receipts.jsonl cannot be read, the connector's
// (zeromq_connector: the CURVE handshake failed or never completed), no
// coordinator ever answered within idle_timeout (DeadlineExceeded), the
// coordinator rejected the registration.
Result<WorkerSummary> run_worker(const CoordinatorConnector& connect, const WorkerOptions& options,
                                 const Identity& identity, Logger& log, std::stop_token stop = {});

}  // namespace cohort
