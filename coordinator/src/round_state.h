// What the coordinator knows about one open round: the task each
// participant was sent and how it is going. Private to the coordinator.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cohort/protocol.h"

namespace cohort {

using Clock = std::chrono::steady_clock;

// A task's way through the round. Without proof of learning an accepted
// update goes straight to kReady.
enum class TaskStage {
  kTraining,        // sent; no update yet
  kAwaitingReveal,  // update and commitment in, audited, reveal not yet in
  kVerifying,       // reveal in, re-execution queued or running
  kReady,           // will be aggregated (unaudited, or verified)
  kClosed,          // will not be aggregated; `outcome` says why
};

struct OpenTask {
  Task task;                  // as sent (without its payload)
  PublicKey worker_key{};
  uint32_t worker_index = 0;  // kept here: the connection may be retired mid-round
  TaskStage stage = TaskStage::kTraining;
  std::string outcome;        // why the update was not aggregated, when it was not
  Verdict verdict = Verdict::kPending;  // set when closed

  // Set once a valid update arrived.
  at::Tensor row;             // the decoded update
  double weight = 0.0;        // samples it was trained on
  double local_loss = 0.0;
  std::optional<UpdateCommitment> commitment;
  Digest start_momentum{};    // leaf 0's momentum digest the commitment was checked against
  DType update_dtype = DType::kFloat32;
  Challenge challenge;
  // The signed challenge of an audited task, repeated to a worker that
  // registers again before revealing (it may have restarted meanwhile).
  std::optional<ChallengeMessage> challenge_message;
  Clock::time_point reveal_deadline;
  bool in_ledger = false;     // a submission row exists for it

  bool settled() const { return stage == TaskStage::kReady || stage == TaskStage::kClosed; }
};

struct RoundState {
  uint32_t round = 0;
  Digest model_digest{};
  at::Tensor start;                          // the global model the tasks announced
  std::map<std::string, OpenTask> tasks;     // by routing id
  int rejected = 0;
  int limits_exceeded = 0;  // messages refused by a size or rate limit
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;

  bool all_settled() const {
    for (const auto& [id, task] : tasks) {
      if (!task.settled()) return false;
    }
    return true;
  }
  OpenTask* find_task(uint64_t task_id) {
    for (auto& [id, task] : tasks) {
      if (task.task.task_id == task_id) return &task;
    }
    return nullptr;
  }
};

}  // namespace cohort
