// Sorting networks for the column kernel (column_kernel.cpp): Batcher's
// odd-even merge sort, pruned to the comparators that can change what a
// column window reads. Private to aggregation.
#pragma once

#include <cstdint>
#include <vector>

#include "selection.h"

namespace cohort {

// Wires sorted in registers as a tile is loaded (AVX2).
inline constexpr int64_t kSortedBlock = 16;

// After the comparator, wire `low` holds the smaller of the two values and
// wire `high` (> low) the larger.
struct Comparator {
  int32_t low;
  int32_t high;
};

// What a call computes for m values per column: the window has `width`
// values starting at sorted position `start` (kMedian, kTrimmed) or at a
// per-column position in [0, drop] (kNearMedian).
struct WindowPlan {
  ColumnWindow::Kind kind;
  int64_t m;
  int64_t drop;
  int64_t width;
  int64_t start;    // kMedian, kTrimmed
  int64_t mid_low;  // the middle positions, (m - 1) / 2 and m / 2
  int64_t mid_high;
  std::vector<Comparator> network;  // for a block filled by plain copies
  // For a block whose first `sorted_blocks` groups of kSortedBlock wires
  // are loaded already sorted (AVX2): the network less the comparators inside
  // them.
  int64_t sorted_blocks;
  std::vector<Comparator> network_after_blocks;
};

// The sorting network and window of a call on m values per column.
WindowPlan plan_window(int64_t m, ColumnWindow window);

}  // namespace cohort
