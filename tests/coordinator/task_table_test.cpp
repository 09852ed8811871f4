// The task table's stage machine: every legal transition, and every other
// event refused with the task left as it was.
#include "task_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace cohort {
namespace {

using Kind = TaskEvent::Kind;

OpenTask task_with_id(uint64_t id, uint8_t key = 1) {
  OpenTask task;
  task.task.task_id = id;
  task.worker_key.fill(key);
  return task;
}

TaskEvent event_of(Kind kind) {
  if (kind == Kind::kClosed) return TaskEvent::closed(Verdict::kRejected, "why");
  if (kind == Kind::kDeadlinePassed) return TaskEvent::deadline_passed();
  return TaskEvent{kind, Verdict::kPending, {}};
}

// A task brought to `stage` by legal events.
OpenTask task_in(TaskStage stage) {
  OpenTask task = task_with_id(7);
  switch (stage) {
    case TaskStage::kTraining:
      break;
    case TaskStage::kAwaitingReveal:
      EXPECT_TRUE(TaskTable::on(task, TaskEvent::awaiting_reveal()));
      break;
    case TaskStage::kVerifying:
      EXPECT_TRUE(TaskTable::on(task, TaskEvent::awaiting_reveal()));
      EXPECT_TRUE(TaskTable::on(task, TaskEvent::revealed()));
      break;
    case TaskStage::kReady:
      EXPECT_TRUE(TaskTable::on(task, TaskEvent::accepted()));
      break;
    case TaskStage::kClosed:
      EXPECT_TRUE(TaskTable::on(task, TaskEvent::closed(Verdict::kVoided, "first")));
      break;
  }
  EXPECT_EQ(task.stage(), stage);
  return task;
}

struct Transition {
  TaskStage from;
  Kind event;
  TaskStage to;
};

constexpr Transition kLegal[] = {
    {TaskStage::kTraining, Kind::kAccepted, TaskStage::kReady},
    {TaskStage::kTraining, Kind::kAwaitingReveal, TaskStage::kAwaitingReveal},
    {TaskStage::kAwaitingReveal, Kind::kRevealed, TaskStage::kVerifying},
    {TaskStage::kVerifying, Kind::kVerified, TaskStage::kReady},
    {TaskStage::kTraining, Kind::kDeadlinePassed, TaskStage::kClosed},
    {TaskStage::kTraining, Kind::kClosed, TaskStage::kClosed},
    {TaskStage::kAwaitingReveal, Kind::kClosed, TaskStage::kClosed},
    {TaskStage::kVerifying, Kind::kClosed, TaskStage::kClosed},
    {TaskStage::kReady, Kind::kClosed, TaskStage::kClosed},
};

constexpr TaskStage kStages[] = {TaskStage::kTraining, TaskStage::kAwaitingReveal, TaskStage::kVerifying,
                                 TaskStage::kReady, TaskStage::kClosed};
constexpr Kind kEvents[] = {Kind::kAccepted, Kind::kAwaitingReveal, Kind::kRevealed,
                            Kind::kVerified, Kind::kDeadlinePassed, Kind::kClosed};

TEST(TaskTableTest, EveryLegalTransitionMovesTheTask) {
  for (const Transition& t : kLegal) {
    OpenTask task = task_in(t.from);
    EXPECT_TRUE(TaskTable::on(task, event_of(t.event))) << static_cast<int>(t.from) << " " << static_cast<int>(t.event);
    EXPECT_EQ(task.stage(), t.to);
  }
}

TEST(TaskTableTest, EveryOtherEventIsRefusedAndChangesNothing) {
  int refused = 0;
  for (TaskStage from : kStages) {
    for (Kind event : kEvents) {
      const bool legal = std::any_of(std::begin(kLegal), std::end(kLegal),
                                     [&](const Transition& t) { return t.from == from && t.event == event; });
      if (legal) continue;
      OpenTask task = task_in(from);
      const std::string outcome = task.outcome();
      const Verdict verdict = task.verdict();
      EXPECT_FALSE(TaskTable::on(task, event_of(event))) << static_cast<int>(from) << " " << static_cast<int>(event);
      EXPECT_EQ(task.stage(), from);
      EXPECT_EQ(task.outcome(), outcome);
      EXPECT_EQ(task.verdict(), verdict);
      ++refused;
    }
  }
  EXPECT_EQ(refused, 30 - 9);
}

TEST(TaskTableTest, ClosingKeepsTheVerdictAndTheReasonOfTheFirstClose) {
  OpenTask task = task_in(TaskStage::kTraining);
  ASSERT_TRUE(TaskTable::on(task, TaskEvent::closed(Verdict::kFailed, "audit failed: segment 3")));
  EXPECT_EQ(task.verdict(), Verdict::kFailed);
  EXPECT_EQ(task.outcome(), "audit failed: segment 3");
  EXPECT_FALSE(TaskTable::on(task, TaskEvent::closed(Verdict::kVoided, "later")));
  EXPECT_EQ(task.verdict(), Verdict::kFailed);
  EXPECT_EQ(task.outcome(), "audit failed: segment 3");
}

// A late update is told the deadline passed; a task closed for another
// reason is not taken for a missed deadline.
TEST(TaskTableTest, OnlyADeadlinePassedWhileTrainingIsAMissedDeadline) {
  OpenTask late = task_in(TaskStage::kTraining);
  ASSERT_TRUE(TaskTable::on(late, TaskEvent::deadline_passed()));
  EXPECT_TRUE(late.missed_deadline());
  EXPECT_EQ(late.verdict(), Verdict::kRejected);
  EXPECT_EQ(late.outcome(), "no update before the deadline");

  OpenTask left = task_in(TaskStage::kTraining);
  ASSERT_TRUE(TaskTable::on(left, TaskEvent::closed(Verdict::kRejected, "no update before the deadline")));
  EXPECT_FALSE(left.missed_deadline());
  OpenTask ready = task_in(TaskStage::kReady);
  EXPECT_FALSE(TaskTable::on(ready, TaskEvent::deadline_passed()));
  EXPECT_FALSE(ready.missed_deadline());
}

TEST(TaskTableTest, TasksAreFoundByIdAndByWorkerAndListedInIdOrder) {
  TaskTable table;
  table.add(task_with_id(0x0000000100000002, 3));
  table.add(task_with_id(0x0000000100000000, 1));
  table.add(task_with_id(0x0000000100000001, 2));
  std::vector<uint64_t> order;
  for (const auto& [id, task] : table) order.push_back(id);
  EXPECT_EQ(order, (std::vector<uint64_t>{0x0000000100000000, 0x0000000100000001, 0x0000000100000002}));
  ASSERT_NE(table.find(0x0000000100000001), nullptr);
  EXPECT_EQ(table.find(0x0000000100000001)->worker_key[0], 2);
  EXPECT_EQ(table.find(42), nullptr);
  PublicKey key;
  key.fill(3);
  ASSERT_NE(table.find_for(key), nullptr);
  EXPECT_EQ(table.find_for(key)->task.task_id, 0x0000000100000002u);
}

TEST(TaskTableTest, TheRoundIsSettledWhenEveryTaskIsReadyOrClosed) {
  TaskTable table;
  OpenTask& first = table.add(task_with_id(1));
  OpenTask& second = table.add(task_with_id(2));
  EXPECT_FALSE(table.all_settled());
  TaskTable::on(first, TaskEvent::accepted());
  TaskTable::on(second, TaskEvent::awaiting_reveal());
  EXPECT_FALSE(table.all_settled());
  EXPECT_TRUE(table.audits_outstanding());
  TaskTable::on(second, TaskEvent::revealed());
  EXPECT_TRUE(table.audits_outstanding());
  TaskTable::on(second, TaskEvent::closed(Verdict::kVoided, "audit voided"));
  EXPECT_TRUE(table.all_settled());
  EXPECT_FALSE(table.audits_outstanding());
}

}  // namespace
}  // namespace cohort
