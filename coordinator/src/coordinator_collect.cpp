#include <algorithm>

#include "cohort/duration.h"
#include "coordinator_impl.h"

namespace cohort {

// The clock is lent, and a test may move it: no wait outlasts a tenth of a
// second before the loop reads it again.
std::chrono::milliseconds Coordinator::Impl::until(SteadyClock::time_point deadline) const {
  constexpr std::chrono::milliseconds kLongestWait{100};
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_->now());
  return std::clamp(left, std::chrono::milliseconds(0), kLongestWait);
}

Status Coordinator::Impl::wait_for_workers() {
  const auto deadline = steady_deadline(config_.round.registration_timeout_seconds, clock_->now());
  log_.info("waiting for " + std::to_string(config_.round.min_workers) + " worker(s)");
  while (workers_.alive_count() < static_cast<size_t>(config_.round.min_workers) && !stop_.stop_requested()) {
    if (clock_->now() >= deadline) {
      return Status::deadline_exceeded(
          "only " + std::to_string(workers_.alive_count()) + " of " +
          std::to_string(config_.round.min_workers) + " workers registered within " +
          std::to_string(config_.round.registration_timeout_seconds) + " s");
    }
    receive_one(until(deadline), nullptr);
  }
  return Status();
}

void Coordinator::Impl::register_worker(const std::string& routing_id, const Hello& hello, RoundState* state) {
  if (std::optional<std::string> refusal = settlement_->refusal(hello.worker_key)) {
    log_.warn("refused worker " + to_hex(hello.worker_key).substr(0, 12) + ": " + *refusal);
    send_to(routing_id, ErrorReply{ErrorCode::kForbidden, *refusal, 0, 0});
    return;
  }
  const WorkerEntry& entry = workers_.add(routing_id, hello);
  log_.info("worker " + std::to_string(entry.index) + " registered (" +
            to_hex(hello.worker_key).substr(0, 12) + ", " + hello.device.name + ", " +
            std::to_string(hello.dataset.samples) + " samples)");
  Welcome welcome{entry.index, config_.job.name, static_cast<uint32_t>(config_.job.rounds), public_key(),
                  settlement_->latest_receipts(hello.worker_key)};
  send_to(routing_id, std::move(welcome));
  if (state != nullptr) {
    close_abandoned_training(routing_id, hello.worker_key, *state);
    repeat_challenges(routing_id, hello.worker_key, *state);
  }
}

void Coordinator::Impl::close_abandoned_training(const std::string& routing_id, const PublicKey& worker,
                                                 RoundState& state) {
  for (auto& [id, task] : state.tasks) {
    if (task.worker_key != worker || task.routing_id == routing_id || task.stage() != TaskStage::kTraining) continue;
    close_task(task, Verdict::kRejected, "the worker registered again before sending its update");
    log_.warn("worker " + std::to_string(task.worker_index) + " registered again before sending its update for round " +
              std::to_string(state.round) + ": its task is closed");
  }
}

void Coordinator::Impl::repeat_challenges(const std::string& routing_id, const PublicKey& worker, RoundState& state) {
  for (auto& [_, task] : state.tasks) {
    if (task.worker_key != worker || task.stage() != TaskStage::kAwaitingReveal || !task.challenge_message) continue;
    log_.info("worker " + std::to_string(task.worker_index) + " is back: repeating the challenge of task " +
              std::to_string(task.task.task_id));
    if (auto sent = send_to(routing_id, *task.challenge_message)) state.bytes_out += *sent;
  }
}

void Coordinator::Impl::abandon_round(RoundState& state) {
  int voided = 0;
  for (auto& [id, task] : state.tasks) {
    if (task.stage() == TaskStage::kClosed) continue;
    close_task(task, Verdict::kVoided, interrupted_reason(state.round, "stopped"));
    ++voided;
  }
  log_.warn("round " + std::to_string(state.round) + " abandoned on stop: " + std::to_string(voided) +
            " open task(s) voided; it runs again when the coordinator restarts");
}

void Coordinator::Impl::collect(RoundState& state) {
  const auto deadline = steady_deadline(config_.round.deadline_seconds, clock_->now());
  bool stragglers_closed = false;
  while (!state.tasks.all_settled() && settlement_->fatal().ok()) {
    if (stop_.stop_requested()) return;
    if (clock_->now() >= deadline) {
      if (!stragglers_closed) close_stragglers(state);
      stragglers_closed = true;
      if (!state.tasks.audits_outstanding()) break;
    }
    receive_one(poll_interval(state, deadline), &state);
    apply_audit_outcomes(state);
    fail_missing_reveals(state);
  }
  if (!stragglers_closed) close_stragglers(state);
}

void Coordinator::Impl::close_stragglers(RoundState& state) {
  for (auto& [id, task] : state.tasks) {
    if (task.stage() == TaskStage::kTraining) {
      close_task(task, TaskEvent::deadline_passed());
      log_.warn("worker " + std::to_string(task.worker_index) + " sent no update for round " +
                std::to_string(state.round));
    }
  }
}

std::chrono::milliseconds Coordinator::Impl::poll_interval(const RoundState& state, SteadyClock::time_point deadline) const {
  SteadyClock::time_point wake = deadline;
  for (const auto& [id, task] : state.tasks) {
    if (task.stage() == TaskStage::kAwaitingReveal) wake = std::min(wake, task.reveal_deadline);
  }
  auto wait = std::max(until(wake), std::chrono::milliseconds(1));
  if (auditor_ && auditor_->running() > 0) wait = std::min(wait, std::chrono::milliseconds(20));
  return wait;
}

void Coordinator::Impl::apply_audit_outcomes(RoundState& state) {
  if (!auditor_) return;
  for (const AuditOutcome& outcome : auditor_->finished()) {
    OpenTask* task = state.tasks.find(outcome.task_id);
    if (task == nullptr || task->stage() != TaskStage::kVerifying) continue;
    if (outcome.passed) {
      log_.info("worker " + std::to_string(task->worker_index) + ": audit passed (" +
                std::to_string(task->challenge.segments.size()) + " segment(s) re-executed in " +
                std::to_string(outcome.seconds).substr(0, 5) + " s)");
      TaskTable::on(*task, TaskEvent::verified());
    } else if (outcome.voided) {
      close_task(*task, Verdict::kVoided, "audit voided: " + outcome.reason);
    } else {
      fail_audit(*task, outcome.reason);
    }
  }
}

void Coordinator::Impl::fail_missing_reveals(RoundState& state) {
  const auto now = clock_->now();
  for (auto& [id, task] : state.tasks) {
    if (task.stage() == TaskStage::kAwaitingReveal && now >= task.reveal_deadline) {
      fail_audit(task, "no reveal before the reveal deadline");
    }
  }
}

void Coordinator::Impl::fail_audit(OpenTask& task, const std::string& reason) {
  log_.warn("worker " + std::to_string(task.worker_index) + " failed its audit: " + reason);
  close_task(task, Verdict::kFailed, "audit failed: " + reason);
  settlement_->slash(task.worker_key, task.task.task_id, reason);
  workers_.retire(task.worker_key);
}

void Coordinator::Impl::close_task(OpenTask& task, Verdict verdict, std::string outcome) {
  close_task(task, TaskEvent::closed(verdict, std::move(outcome)));
}

void Coordinator::Impl::close_task(OpenTask& task, const TaskEvent& closing) {
  if (TaskTable::on(task, closing)) settlement_->closed(task.task.task_id, task.verdict(), task.outcome());
}

}  // namespace cohort
