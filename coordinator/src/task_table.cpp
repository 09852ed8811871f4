#include "task_table.h"

namespace cohort {
namespace {

// The stage `event` moves a task in `from` to, or nullopt when it may not.
std::optional<TaskStage> next_stage(TaskStage from, TaskEvent::Kind event) {
  using Kind = TaskEvent::Kind;
  switch (event) {
    case Kind::kAccepted:
      return from == TaskStage::kTraining ? std::optional(TaskStage::kReady) : std::nullopt;
    case Kind::kAwaitingReveal:
      return from == TaskStage::kTraining ? std::optional(TaskStage::kAwaitingReveal) : std::nullopt;
    case Kind::kRevealed:
      return from == TaskStage::kAwaitingReveal ? std::optional(TaskStage::kVerifying) : std::nullopt;
    case Kind::kVerified:
      return from == TaskStage::kVerifying ? std::optional(TaskStage::kReady) : std::nullopt;
    case Kind::kDeadlinePassed:
      return from == TaskStage::kTraining ? std::optional(TaskStage::kClosed) : std::nullopt;
    case Kind::kClosed:
      return from != TaskStage::kClosed ? std::optional(TaskStage::kClosed) : std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

OpenTask& TaskTable::add(OpenTask task) {
  const uint64_t id = task.task.task_id;
  return tasks_.insert_or_assign(id, std::move(task)).first->second;
}

bool TaskTable::on(OpenTask& task, const TaskEvent& event) {
  const std::optional<TaskStage> next = next_stage(task.stage_, event.kind);
  if (!next) return false;
  task.stage_ = *next;
  if (*next == TaskStage::kClosed) {
    task.verdict_ = event.verdict;
    task.outcome_ = event.reason;
    task.missed_deadline_ = event.kind == TaskEvent::Kind::kDeadlinePassed;
  }
  return true;
}

OpenTask* TaskTable::find(uint64_t task_id) {
  auto it = tasks_.find(task_id);
  return it == tasks_.end() ? nullptr : &it->second;
}

OpenTask* TaskTable::find_for(const PublicKey& worker) {
  for (auto& [id, task] : tasks_) {
    if (task.worker_key == worker) return &task;
  }
  return nullptr;
}

bool TaskTable::all_settled() const {
  for (const auto& [id, task] : tasks_) {
    if (!task.settled()) return false;
  }
  return true;
}

bool TaskTable::audits_outstanding() const {
  for (const auto& [id, task] : tasks_) {
    if (task.stage() == TaskStage::kAwaitingReveal || task.stage() == TaskStage::kVerifying) return true;
  }
  return false;
}

}  // namespace cohort
