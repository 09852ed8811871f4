// The worker's half of proof of learning: trains a task with a Merkle
// commitment over its checkpoints, keeps what it needs until the task is
// settled, and answers the coordinator's challenge with the revealed
// segments (docs/PROOF_OF_LEARNING.md). What it keeps is on disk, under
// "<state_dir>/task-<id>/" (the checkpoints, the task and the commitment), so
// that a worker killed between its update and its reveal can still reveal
// after a restart. Resource type; one thread.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "cohort/proof_of_learning.h"
#include "cohort/protocol.h"
#include "cohort/reveal_payload.h"
#include "cohort/worker.h"

namespace cohort {

class Prover {
 public:
  // At most this many unsettled tasks are kept; older ones are dropped
  // (their audits then fail, which only a vanished coordinator leaves
  // pending this long).
  static constexpr size_t kMaxPendingTasks = 8;

  // Takes up the unsettled tasks a previous run left in `state_dir` (their
  // challenges may still come) and deletes the directories of tasks whose
  // training did not finish. With a `misbehaviour` (not owned; it must
  // outlive the prover), its train_with_proof trains: for tests and demos
  // of dishonest provers (worker.h).
  Prover(const Identity& identity, std::filesystem::path state_dir, Misbehaviour* misbehaviour = nullptr);

  // Task ids of the unsettled tasks, oldest first.
  std::vector<uint64_t> pending_tasks() const;

  // Trains `task` on `shard` from the parameters already in `model` and
  // returns the local result with the commitment the update must carry.
  // Errors: the task's step count does not match the shard, training fails,
  // checkpoints, the task or the commitment cannot be written.
  struct Trained {
    LocalTraining training;
    UpdateCommitment commitment;
  };
  Result<Trained> train(const Task& task, Model& model, const TensorDataset& shard,
                        MomentumBuffers* momentum);

  // The reveal for a challenge, or nullopt when the task was not audited.
  // Errors: an unknown task, a secret that does not match the task's
  // commitment, segments other than the secret selects (the coordinator
  // may not choose them), unreadable checkpoints.
  struct Answer {
    Reveal reveal;
    PackedStates states;
  };
  Result<std::optional<Answer>> answer(const ChallengeMessage& challenge);

  // Forgets a settled task and deletes its checkpoints.
  void settle(uint64_t task_id);

 private:
  struct Pending {
    Task task;
    Commitment commitment;
    std::filesystem::path dir;
  };

  const Identity& identity_;
  std::filesystem::path state_dir_;
  Misbehaviour* misbehaviour_;  // null: honest
  std::map<uint64_t, Pending> pending_;  // by task id
};

}  // namespace cohort
