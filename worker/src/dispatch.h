// The worker's dispatch loop: what it does with each message from the
// coordinator (a Task is trained and answered with an Update, a Challenge
// with a Reveal, a Welcome or a RoundResult brings receipts to keep, an
// error or a Bye may end the session), and when it stops (stop requested,
// Bye, the coordinator silent for idle_timeout). It keeps what a worker
// keeps between tasks: its data, the shard the last task selected, one
// model per architecture, (when tasks ask for it) the SGD momentum of its
// previous task, the commitments awaiting settlement (prover.h) and the
// receipts (receipt_store.h). Resource type; one thread.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stop_token>
#include <string>
#include <vector>

#include "cohort/models.h"
#include "cohort/protocol.h"
#include "cohort/training.h"
#include "cohort/worker.h"
#include "coordinator_session.h"
#include "model_archives.h"
#include "momentum_store.h"
#include "prover.h"
#include "receipt_store.h"

namespace cohort {

// The local data a worker trains on, as load_worker_data gave it.
struct WorkerData {
  IdxFiles files;
  std::shared_ptr<const LabeledImages> data;  // never null
  Digest digest{};  // digest_of() the data as loaded
};

class Dispatcher {
 public:
  // `session`, `options`, `identity` and `log` are borrowed and must
  // outlive the dispatcher.
  Dispatcher(CoordinatorSession& session, const WorkerOptions& options, const Identity& identity,
             WorkerData data, at::Device device, ReceiptStore receipts, ModelArchives archives, Logger& log);

  // Serves messages until the job ends for this worker; as run_worker
  // (worker.h) from its Hello on.
  Result<WorkerSummary> run(std::stop_token stop);

 private:
  // Handles one message. Returns true when the session is over (Bye).
  Result<bool> dispatch(Incoming& incoming, const std::stop_token& stop);

  // An update was sent and its round has not closed: a challenge may still
  // come for it, so a stopping worker stays.
  bool awaiting_result() const { return awaiting_round_.has_value(); }

  // Accepts the coordinator's key from its Welcome, unless another one was
  // pinned. Errors: a pinned key that differs.
  Status set_coordinator(const PublicKey& key);

  // Trains on one task and sends the update. Errors are reported to the
  // coordinator and returned.
  Status serve(const Task& task, Frames payload);
  // A task whose model archive this worker may train but does not hold:
  // asks the coordinator for it and keeps the task until it arrives.
  // Returns false when the task can be served (or refused) now.
  bool park_until_archive_arrives(const Task& task, Frames& payload);
  // The archive for the parked task arrived: checks and caches it, then
  // serves the task. Returns whether the task was served.
  Result<bool> serve_parked(const ModelArchiveMessage& archive, Frames payload);
  // Refuses a task without training it (the worker is stopping).
  void decline(const Task& task, std::string why);

  // A (new) registration: whatever was in flight belongs to a coordinator
  // session that is gone; the Welcome's receipts are kept.
  // Returns the receipts that were new.
  Result<std::vector<Receipt>> welcome(const Welcome& welcome);

  // Answers a challenge: reveals the challenged segments, or nothing when
  // the task was not audited.
  Status answer(const ChallengeMessage& challenge);

  // The round closed: keeps the receipt it carries, if any. Returns the
  // receipt when it is valid and new.
  std::optional<Receipt> settle(const RoundResult& result);

  // Checks a settlement receipt, keeps it unless the store holds it
  // already (a Welcome repeats receipts), and drops the task's
  // checkpoints. Returns it when it was new.
  std::optional<Receipt> keep(const Receipt& receipt);
  void count(const Receipt& receipt);

  // The coordinator's signature over the task, bound to this worker's key.
  bool signed_by_coordinator(const Task& task) const;
  Status refuse(const Task& task, ErrorCode code, Status status);
  Status check_data(const Task& task);
  Status try_serve(const Task& task, Frames payload);
  // The momentum buffers the task continues, from the store; fresh ones when
  // they are not kept (this worker restarted without its state directory):
  // the coordinator accepts a restart from fresh momentum.
  MomentumBuffers momentum_named_by(const Task& task, const Model& model);
  // One model per built-in name or archive digest (model_key).
  Result<Model*> model_for(const Task& task);
  // Builds the task's model from `source` (an archive's first runs on a
  // batch of the local data) and keeps it under the task's model_key.
  Result<Model*> add_model(const Task& task, const ModelSource& source);
  Result<const TensorDataset*> shard_for(const DataSelection& selection);

  CoordinatorSession& session_;
  const WorkerOptions& options_;
  const Identity& identity_;
  WorkerData data_;
  at::Device device_;
  Logger& log_;
  Prover prover_;
  MomentumStore momentum_store_;
  ReceiptStore receipts_;
  ModelArchives archives_;
  struct ParkedTask {
    Task task;
    Frames payload;
  };
  std::optional<ParkedTask> parked_;  // waiting for its model archive
  WorkerSummary summary_;
  std::optional<PublicKey> coordinator_key_;
  std::optional<uint32_t> awaiting_round_;  // round of the update sent last, until it closes
  std::set<std::string> fitting_models_;    // models the local data was checked against
  std::map<std::string, std::unique_ptr<Model>> models_;
  std::map<std::string, MomentumBuffers> momentum_;  // per model, for keep_momentum
  std::optional<TensorDataset> shard_;
  std::optional<DataSelection> shard_selection_;
};

}  // namespace cohort
