// The tasks of one round, keyed by task id (attempt included), and the one
// place their stage changes: TaskTable::on(). Private to the coordinator.
//
// A task's way through the round (without proof of learning an accepted
// update goes straight to kReady):
//
//   kTraining --accepted--> kReady
//   kTraining --awaiting_reveal--> kAwaitingReveal --revealed--> kVerifying --verified--> kReady
//   kTraining --deadline_passed--> kClosed (rejected: no update before the deadline)
//   any stage but kClosed --closed(verdict, reason)--> kClosed
//
// Any other event is refused and leaves the task as it was.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cohort/protocol.h"

namespace cohort {

using SteadyClock = std::chrono::steady_clock;

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
  std::string routing_id;     // the connection the task was sent on

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
  SteadyClock::time_point reveal_deadline;

  TaskStage stage() const { return stage_; }
  Verdict verdict() const { return verdict_; }  // kPending until closed
  const std::string& outcome() const { return outcome_; }  // why it was not aggregated, once closed
  // Closed because the round's deadline passed before any update came (a
  // late update is told so, not called a duplicate).
  bool missed_deadline() const { return missed_deadline_; }
  bool settled() const { return stage_ == TaskStage::kReady || stage_ == TaskStage::kClosed; }

 private:
  friend class TaskTable;  // on() alone changes these
  TaskStage stage_ = TaskStage::kTraining;
  Verdict verdict_ = Verdict::kPending;
  std::string outcome_;
  bool missed_deadline_ = false;
};

struct TaskEvent {
  enum class Kind { kAccepted, kAwaitingReveal, kRevealed, kVerified, kDeadlinePassed, kClosed };
  Kind kind;
  Verdict verdict = Verdict::kPending;  // kClosed: rejected, failed or voided
  std::string reason;                   // kClosed: why it will not be aggregated

  static TaskEvent accepted() { return {Kind::kAccepted, Verdict::kPending, {}}; }
  static TaskEvent awaiting_reveal() { return {Kind::kAwaitingReveal, Verdict::kPending, {}}; }
  static TaskEvent revealed() { return {Kind::kRevealed, Verdict::kPending, {}}; }
  static TaskEvent verified() { return {Kind::kVerified, Verdict::kPending, {}}; }
  static TaskEvent deadline_passed() {
    return {Kind::kDeadlinePassed, Verdict::kRejected, "no update before the deadline"};
  }
  static TaskEvent closed(Verdict verdict, std::string reason) { return {Kind::kClosed, verdict, std::move(reason)}; }
};

class TaskTable {
 public:
  // Adds a task just sent; a task id already in the table is replaced.
  OpenTask& add(OpenTask task);

  // Applies `event` to `task`: the only code that changes a task's stage.
  // Returns false, and changes nothing, when the event is not legal in the
  // task's stage.
  static bool on(OpenTask& task, const TaskEvent& event);

  OpenTask* find(uint64_t task_id);
  // The task of `worker` in this round, if it was sent one.
  OpenTask* find_for(const PublicKey& worker);

  bool empty() const { return tasks_.empty(); }
  size_t size() const { return tasks_.size(); }
  bool all_settled() const;
  // Whether an audit still waits for a reveal or a re-execution.
  bool audits_outstanding() const;

  // In task id order, which is worker index order within a round.
  auto begin() { return tasks_.begin(); }
  auto end() { return tasks_.end(); }
  auto begin() const { return tasks_.begin(); }
  auto end() const { return tasks_.end(); }

 private:
  std::map<uint64_t, OpenTask> tasks_;
};

}  // namespace cohort
