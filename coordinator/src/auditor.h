// Proof-of-learning audits on the coordinator (docs/PROOF_OF_LEARNING.md):
// a fresh challenge secret per task, the checks of a worker's commitment,
// and a pool of verifier threads that re-execute revealed segments beside
// the round, so that collection never waits for a verification.
//
// Not thread-safe: the coordinator's thread calls every method; only the
// re-executions run on the pool's threads.
#pragma once

#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cohort/dataset.h"
#include "cohort/models.h"
#include "cohort/proof_of_learning.h"
#include "cohort/protocol.h"

namespace cohort {

struct AuditOptions {
  ModelSource model;
  ProofParams params;
  ChallengeParams challenge;
  double reveal_seconds = 60.0;
  int threads = 1;
};

// Tolerant profile: re-execution errors above tau up to this are disputes
// (voided), larger ones are cheating (failed).
inline constexpr double kDisputedError = 0.1;

struct AuditOutcome {
  uint64_t task_id = 0;
  bool passed = false;
  // No fault of the worker shown: the verifier itself failed, or (tolerant
  // profile) the re-execution was off by more than tau, which honest drift
  // can also cause. Not paid, not slashed.
  bool voided = false;
  std::string reason;      // why it failed, naming the segment
  double seconds = 0.0;    // re-execution time
};

class Auditor {
 public:
  // `train_split` is the training data the workers' shards are cut from.
  Auditor(AuditOptions options, const LabeledImages& train_split);
  ~Auditor();  // stops the pool; running re-executions finish first
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  const Digest& dataset_digest() const { return dataset_digest_; }

  // The shard a data selection names, cut from the training split as the
  // worker cuts it (cached per selection).
  Result<std::shared_ptr<const TensorDataset>> shard_for(const DataSelection& selection);

  // Fills task.proof for a task whose shard has `shard_size` samples, with a
  // new challenge secret that stays here until the commitment is in.
  void prepare(Task& task, int64_t shard_size);

  // What a task's training started from besides the announced model: the
  // momentum digest of leaf 0, and the dtype its update travelled in.
  struct TaskStart {
    Digest momentum = fresh_momentum_digest();
    DType update_dtype = DType::kFloat32;
  };

  // Checks the commitment sent with an update against its task: step and
  // segment counts, and leaf 0 (the announced model, `start_momentum`) and
  // the last leaf proven against the root. Returns the challenge for this
  // commitment (unsigned). Errors: InvalidArgument naming the failed check.
  Result<ChallengeMessage> challenge(const Task& task, const PublicKey& worker,
                                     const UpdateCommitment& commitment, const Digest& start_momentum);

  // Queues the re-execution of the revealed segments. `start` is the model
  // the task announced, `delta` the submitted update (both flat float32).
  // Errors: segments other than the challenge selected, a shard that cannot
  // be cut.
  Status verify_later(const Task& task, const UpdateCommitment& commitment, const Challenge& challenge,
                      std::vector<SegmentOpening> openings, at::Tensor start, at::Tensor delta,
                      const TaskStart& task_start);

  // Verifications that finished since the last call.
  std::vector<AuditOutcome> finished();
  size_t running() const;

 private:
  struct Job {
    AuditContext context;
    std::shared_ptr<const TensorDataset> shard;  // keeps context.shard alive
    std::vector<SegmentOpening> openings;
  };

  void serve_jobs();
  AuditOutcome run(Model& scratch, const Job& job) const;
  AuditOutcome run_guarded(Model& scratch, const Job& job) const;  // run(), an exception voiding the audit

  AuditOptions options_;
  const LabeledImages& train_split_;
  Digest dataset_digest_;
  std::map<uint64_t, Digest> secrets_;  // by task id, until challenged
  std::vector<std::pair<DataSelection, std::shared_ptr<const TensorDataset>>> shards_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  std::vector<AuditOutcome> done_;
  size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace cohort
