#include "sorting_network.h"

namespace cohort {
namespace {

// Batcher's odd-even merge sort for the next power of two >= m, less the
// comparators that touch a wire >= m: those wires would hold +inf, which
// never moves. Its first `*block_stages` comparators sort each aligned block
// of kSortedBlock wires.
std::vector<Comparator> odd_even_merge_sort(int64_t m, size_t* block_stages) {
  int64_t size = 1;
  while (size < m) size *= 2;
  std::vector<Comparator> network;
  *block_stages = 0;
  for (int64_t p = 1; p < size; p *= 2) {
    if (p == kSortedBlock) *block_stages = network.size();
    for (int64_t k = p; k >= 1; k /= 2) {
      for (int64_t j = k % p; j + k < size; j += 2 * k) {
        for (int64_t i = 0; i < k && i + j + k < m; ++i) {
          if ((i + j) / (2 * p) == (i + j + k) / (2 * p)) {
            network.push_back({static_cast<int32_t>(i + j), static_cast<int32_t>(i + j + k)});
          }
        }
      }
    }
  }
  if (size <= kSortedBlock) *block_stages = network.size();
  return network;
}

// `ends` passes that carry the largest remaining value to the top and `ends`
// that carry the smallest to the bottom: the `ends` smallest and largest
// values end sorted at the two ends. 2 ends m comparators, fewer than
// Batcher's network for a trimmed mean with small f.
std::vector<Comparator> bubble_ends(int64_t m, int64_t ends) {
  std::vector<Comparator> network;
  for (int64_t t = 0; t < ends; ++t) {
    for (int64_t p = t; p + 1 < m - t; ++p) {
      network.push_back({static_cast<int32_t>(p), static_cast<int32_t>(p + 1)});
    }
    for (int64_t p = m - 2 - t; p > t; --p) {
      network.push_back({static_cast<int32_t>(p - 1), static_cast<int32_t>(p)});
    }
  }
  return network;
}

// Marks the comparators that can change what the window reads. The window
// reads the values of some sorted positions exactly (groups of one) and of
// others only as a set (a group of consecutive positions, e.g. the kept
// middle of a trimmed mean). Working backwards: a comparator whose two wires
// no later kept comparator touches carries its values straight to their
// final positions, so when both lie in one group it only reorders that group
// and goes. (Putting such a comparator back never harms for the same
// reason.)
std::vector<char> needed_comparators(const std::vector<Comparator>& network,
                                     const std::vector<int32_t>& group) {
  std::vector<char> touched(group.size(), 0);
  std::vector<char> needed(network.size(), 0);
  for (size_t i = network.size(); i-- > 0;) {
    const Comparator c = network[i];
    if (!touched[c.low] && !touched[c.high] && group[c.low] == group[c.high]) continue;
    touched[c.low] = touched[c.high] = 1;
    needed[i] = 1;
  }
  return needed;
}

std::vector<Comparator> kept(const std::vector<Comparator>& network,
                             const std::vector<char>& needed) {
  std::vector<Comparator> out;
  for (size_t i = 0; i < network.size(); ++i) {
    if (needed[i]) out.push_back(network[i]);
  }
  return out;
}

}  // namespace

WindowPlan plan_window(int64_t m, ColumnWindow window) {
  WindowPlan plan{window.kind, m, window.drop, 0, 0, (m - 1) / 2, m / 2, {}, 0, {}};
  // Groups: a cut before position p starts a new group there.
  std::vector<char> cut(static_cast<size_t>(m + 1), 0);
  auto exact = [&](int64_t p) {
    if (p < 0 || p >= m) return;
    cut[p] = 1;
    cut[p + 1] = 1;
  };
  switch (window.kind) {
    case ColumnWindow::Kind::kMedian:
      plan.width = plan.mid_high - plan.mid_low + 1;
      plan.start = plan.mid_low;
      exact(plan.mid_low);
      exact(plan.mid_high);
      break;
    case ColumnWindow::Kind::kTrimmed:
      plan.width = m - 2 * window.drop;
      plan.start = window.drop;
      cut[window.drop] = 1;
      cut[m - window.drop] = 1;
      break;
    case ColumnWindow::Kind::kNearMedian:
      // The start is found from positions [0, drop) and [m - drop, m) and
      // the median; the window's first and last values (row credits) lie in
      // [0, drop] and [m - drop - 1, m).
      plan.width = m - window.drop;
      for (int64_t p = 0; p <= window.drop; ++p) {
        exact(p);
        exact(m - 1 - p);
      }
      exact(plan.mid_low);
      exact(plan.mid_high);
      break;
  }
  std::vector<int32_t> group(static_cast<size_t>(m), 0);
  for (int64_t p = 1; p < m; ++p) group[p] = group[p - 1] + (cut[p] ? 1 : 0);
  size_t block_stages = 0;
  const std::vector<Comparator> batcher = odd_even_merge_sort(m, &block_stages);
  std::vector<char> needed = needed_comparators(batcher, group);
  plan.network = kept(batcher, needed);
  if (window.kind == ColumnWindow::Kind::kTrimmed) {
    const std::vector<Comparator> bubble = bubble_ends(m, window.drop);
    std::vector<Comparator> ends = kept(bubble, needed_comparators(bubble, group));
    if (ends.size() < plan.network.size()) {
      plan.network = std::move(ends);
      plan.network_after_blocks = plan.network;
      return plan;
    }
  }
  plan.sorted_blocks = m / kSortedBlock;
  for (size_t i = 0; i < block_stages; ++i) {
    if (batcher[i].high < kSortedBlock * plan.sorted_blocks) needed[i] = 0;
  }
  plan.network_after_blocks = kept(batcher, needed);
  return plan;
}

}  // namespace cohort
