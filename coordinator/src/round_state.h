// What the coordinator knows about one open round: the task each
// participant was sent (task_table.h) and the round's counters. Private to
// the coordinator.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

#include "cohort/protocol.h"
#include "task_table.h"

namespace cohort {

struct RoundState {
  uint32_t round = 0;
  Digest model_digest{};
  at::Tensor start;  // the global model the tasks announced
  TaskTable tasks;
  int rejected = 0;
  int limits_exceeded = 0;  // messages refused by a size or rate limit
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
};

}  // namespace cohort
