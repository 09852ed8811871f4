// How the coordinator numbers tasks: round << 32 | attempt << 24 | worker
// index. A round that a crash or a stop interrupted runs again as its next
// attempt: the same work (the task seed leaves the attempt out) under task
// ids the ledger has not seen. Private to the coordinator library.
#pragma once

#include <cstdint>

namespace cohort {

inline constexpr int kAttemptShift = 24;
inline constexpr uint32_t kMaxAttempt = 255;
inline constexpr uint32_t kMaxWorkerIndex = (1u << kAttemptShift) - 1;

// The round and worker index without the attempt: what seeds the task.
inline uint64_t task_slot(uint32_t round, uint32_t worker_index) { return (uint64_t{round} << 32) | worker_index; }

inline uint64_t task_id_of(uint32_t round, uint32_t attempt, uint32_t worker_index) {
  return task_slot(round, worker_index) | (uint64_t{attempt} << kAttemptShift);
}

inline uint32_t attempt_of_task(uint64_t task_id) {
  return static_cast<uint32_t>(task_id >> kAttemptShift) & kMaxAttempt;
}

}  // namespace cohort
