// The CPU selection kernel of the coordinate-wise rules (cpu_column_means,
// aggregation/src/selection.h) against two references on many shapes:
//  - a per-column oracle written from the definitions (std::stable_sort of
//    each column), which it must match value for value and share for share,
//    ties included;
//  - the ATen forms the rules keep for CUDA (median_by_sorting,
//    trimmed_mean_by_sorting, meamed_by_sorting, bulyan_step_by_topk), on
//    inputs without ties, where both are defined to give the same rows.
// Shapes: n in {1, 2, 3, 4, 5, 10, 33, 100}, d not a multiple of the tile
// (64 float32 or 32 float64 columns) and large enough for several threads,
// f at its limits, float32 and float64.
#include <ATen/ATen.h>
#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "cohort/random.h"
#include "coordinatewise_rules.h"
#include "coordinatewise_test_util.h"
#include "selection.h"

namespace cohort {
namespace {

using coordinatewise_test::random_rows;
using coordinatewise_test::values_of;
using Kind = ColumnWindow::Kind;

constexpr int64_t kRowCounts[] = {1, 2, 3, 4, 5, 10, 33, 100};

std::string describe(const at::Tensor& rows, ColumnWindow window, size_t subset) {
  const char* kind = window.kind == Kind::kMedian    ? "median"
                     : window.kind == Kind::kTrimmed ? "trimmed"
                                                     : "near-median";
  return std::string(kind) + " drop=" + std::to_string(window.drop) +
         " n=" + std::to_string(rows.size(0)) + " d=" + std::to_string(rows.size(1)) +
         " subset=" + std::to_string(subset) + " " + std::string(c10::toString(rows.scalar_type()));
}

// Entries drawn from {-2, -1, 0, 1, 2}: ties in every column, and some
// columns of one value only.
at::Tensor tied_rows(int64_t n, int64_t d, uint64_t seed, at::ScalarType dtype) {
  Rng rng(seed);
  std::vector<double> values(static_cast<size_t>(n * d));
  for (double& v : values) v = static_cast<double>(rng.uniform_below(5)) - 2.0;
  at::Tensor rows = at::tensor(values, at::kDouble).reshape({n, d});
  if (d > 3) rows.select(1, 3).fill_(1.0);
  return rows.to(dtype);
}

struct Expected {
  std::vector<double> values;
  std::vector<double> shares;
};

// The definitions, one column at a time. The window's values are summed in
// double in ascending order and rounded once to T; the median of a, b and
// the distances to the median are computed in T. Where values tie at the
// window's edge, the rows listed first in `subset` get the credit.
template <typename T>
Expected oracle(const at::Tensor& rows, const std::vector<int64_t>& subset, ColumnWindow window) {
  const int64_t n = rows.size(0);
  const int64_t d = rows.size(1);
  const auto m = static_cast<int64_t>(subset.size());
  at::Tensor c = rows.contiguous();
  const T* x = c.data_ptr<T>();
  std::vector<int64_t> credits(static_cast<size_t>(n), 0);
  Expected out;
  int64_t width = 0;
  for (int64_t j = 0; j < d; ++j) {
    std::vector<T> sorted;
    for (int64_t r : subset) sorted.push_back(x[r * d + j]);
    std::stable_sort(sorted.begin(), sorted.end());
    std::vector<int64_t> window_positions;
    if (window.kind == Kind::kMedian || window.kind == Kind::kTrimmed) {
      const int64_t start = window.kind == Kind::kMedian ? (m - 1) / 2 : window.drop;
      width = window.kind == Kind::kMedian ? 2 - m % 2 : m - 2 * window.drop;
      for (int64_t p = start; p < start + width; ++p) window_positions.push_back(p);
    } else {
      width = m - window.drop;
      const T median = m % 2 == 1 ? sorted[(m - 1) / 2]
                                  : (sorted[(m - 1) / 2] + sorted[m / 2]) / static_cast<T>(2);
      std::vector<int64_t> by_distance(static_cast<size_t>(m));
      std::iota(by_distance.begin(), by_distance.end(), 0);
      std::stable_sort(by_distance.begin(), by_distance.end(), [&](int64_t a, int64_t b) {
        return std::abs(static_cast<T>(sorted[a] - median)) <
               std::abs(static_cast<T>(sorted[b] - median));
      });
      window_positions.assign(by_distance.begin(), by_distance.begin() + width);
      std::sort(window_positions.begin(), window_positions.end());
    }
    double sum = 0.0;
    for (int64_t p : window_positions) sum += static_cast<double>(sorted[p]);
    out.values.push_back(static_cast<double>(static_cast<T>(sum / static_cast<double>(width))));
    const T low = sorted[window_positions.front()];
    const T high = sorted[window_positions.back()];
    int64_t need_low = 0;
    int64_t need_high = 0;
    for (int64_t p : window_positions) {
      need_low += sorted[p] == low ? 1 : 0;
      need_high += sorted[p] == high && high != low ? 1 : 0;
    }
    for (int64_t r : subset) {
      const T v = x[r * d + j];
      if (v > low && v < high) {
        ++credits[r];
      } else if (v == low && need_low > 0) {
        ++credits[r];
        --need_low;
      } else if (v == high && need_high > 0) {
        ++credits[r];
        --need_high;
      }
    }
  }
  const double total = static_cast<double>(width) * static_cast<double>(d);
  for (int64_t r = 0; r < n; ++r) out.shares.push_back(static_cast<double>(credits[r]) / total);
  return out;
}

std::vector<int64_t> all_rows(int64_t n) {
  std::vector<int64_t> rows(static_cast<size_t>(n));
  std::iota(rows.begin(), rows.end(), 0);
  return rows;
}

// The kernel's window means equal the oracle's: exactly for the median (its
// window is two known values), within a few units in the last place for the
// others (the kernel may add a window's middle values in another order).
// The shares are equal exactly.
void expect_matches_oracle_with(const at::Tensor& rows, ColumnWindow window,
                                std::vector<int64_t> subset, KernelIsa isa) {
  const std::string what =
      describe(rows, window, subset.size()) + (isa == KernelIsa::kBaseline ? " baseline" : " best");
  std::optional<ColumnMeans> got = cpu_column_means(rows, subset, window, /*row_shares=*/true, isa);
  ASSERT_TRUE(got.has_value()) << what;
  if (subset.empty()) subset = all_rows(rows.size(0));
  const bool is_float = rows.scalar_type() == at::kFloat;
  const Expected want =
      is_float ? oracle<float>(rows, subset, window) : oracle<double>(rows, subset, window);
  EXPECT_EQ(got->values.scalar_type(), rows.scalar_type()) << what;
  const std::vector<double> values = values_of(got->values);
  ASSERT_EQ(values.size(), want.values.size()) << what;
  const double ulp = is_float ? 1.2e-7 : 2.3e-16;
  for (size_t j = 0; j < values.size(); ++j) {
    const double tol =
        window.kind == Kind::kMedian ? 0.0 : 4 * ulp * (1.0 + std::abs(want.values[j]));
    ASSERT_NEAR(values[j], want.values[j], tol) << what << ", coordinate " << j;
  }
  ASSERT_EQ(got->row_shares.size(), want.shares.size()) << what;
  for (size_t r = 0; r < want.shares.size(); ++r) {
    EXPECT_EQ(got->row_shares[r], want.shares[r]) << what << ", row " << r;
  }
  EXPECT_NEAR(std::accumulate(got->row_shares.begin(), got->row_shares.end(), 0.0), 1.0, 1e-12)
      << what;
  // Without shares: the same values, no shares.
  std::optional<ColumnMeans> bare =
      cpu_column_means(rows, subset, window, /*row_shares=*/false, isa);
  ASSERT_TRUE(bare.has_value());
  EXPECT_TRUE(bare->row_shares.empty());
  EXPECT_TRUE(at::equal(bare->values, got->values)) << what;
}

// The same with both instruction sets: the best one here (AVX2 on most
// x86-64 CPUs) and the baseline one.
void expect_matches_oracle(const at::Tensor& rows, ColumnWindow window,
                           std::vector<int64_t> subset = {}) {
  for (KernelIsa isa : {KernelIsa::kBest, KernelIsa::kBaseline}) {
    expect_matches_oracle_with(rows, window, subset, isa);
  }
}

// Windows at the limits of m rows: every allowed drop at the ends and a
// middle one.
std::vector<ColumnWindow> windows_for(int64_t m) {
  std::vector<ColumnWindow> windows = {{Kind::kMedian, 0}};
  for (int64_t f : {int64_t{0}, int64_t{1}, (m - 1) / 4, (m - 1) / 2}) {
    if (2 * f + 1 <= m) windows.push_back({Kind::kTrimmed, f});
  }
  for (int64_t drop : {int64_t{0}, int64_t{1}, m / 3, m / 2, m - 2, m - 1}) {
    if (drop >= 0 && drop + 1 <= m) windows.push_back({Kind::kNearMedian, drop});
  }
  return windows;
}

TEST(SelectionKernelTest, MatchesTheDefinitionsOnRandomRows) {
  uint64_t seed = 100;
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (int64_t n : kRowCounts) {
      for (int64_t d : {int64_t{1}, int64_t{63}, int64_t{97}, int64_t{1000}}) {
        const at::Tensor rows = random_rows(n, d, ++seed, dtype);
        for (ColumnWindow window : windows_for(n)) expect_matches_oracle(rows, window);
      }
    }
  }
}

TEST(SelectionKernelTest, MatchesTheDefinitionsWithTies) {
  uint64_t seed = 200;
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (int64_t n : kRowCounts) {
      const at::Tensor rows = tied_rows(n, 131, ++seed, dtype);
      for (ColumnWindow window : windows_for(n)) expect_matches_oracle(rows, window);
    }
  }
}

TEST(SelectionKernelTest, MatchesTheDefinitionsOnManyTilesAndThreads) {
  // 100 rows: 12 sorted blocks of 8 plus 4 copied rows per tile; d spans
  // hundreds of tiles, several threads' worth, and ends in a partial tile.
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    const at::Tensor rows = random_rows(100, 20'011, 7, dtype);
    for (ColumnWindow window : {ColumnWindow{Kind::kMedian, 0}, ColumnWindow{Kind::kTrimmed, 24},
                                ColumnWindow{Kind::kNearMedian, 24}}) {
      expect_matches_oracle(rows, window);
    }
    expect_matches_oracle(tied_rows(33, 5'003, 8, dtype), {Kind::kTrimmed, 16});
  }
}

TEST(SelectionKernelTest, SubsetsOfRows) {
  // Bulyan's coordinate step: the rows Krum selected, beta = theta - 2f of
  // them nearest their median.
  const at::Tensor rows = random_rows(11, 300, 9, at::kFloat);
  expect_matches_oracle(rows, {Kind::kNearMedian, 2}, {0, 2, 3, 5, 6, 9, 10});
  expect_matches_oracle(rows, {Kind::kNearMedian, 0}, {4});
  expect_matches_oracle(rows, {Kind::kMedian, 0}, {10, 1, 7, 3});  // any order
  expect_matches_oracle(tied_rows(23, 77, 10, at::kDouble), {Kind::kNearMedian, 10},
                        {1, 2, 3, 5, 8, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22});
}

TEST(SelectionKernelTest, InfinitiesSortToTheEnds) {
  at::Tensor rows = random_rows(9, 70, 11, at::kFloat);
  rows[0].fill_(std::numeric_limits<float>::infinity());
  rows[5].narrow(0, 0, 30).fill_(-std::numeric_limits<float>::infinity());
  expect_matches_oracle(rows, {Kind::kMedian, 0});
  expect_matches_oracle(rows, {Kind::kTrimmed, 1});
  expect_matches_oracle(rows, {Kind::kNearMedian, 2});
}

TEST(SelectionKernelTest, TakesAnyLayout) {
  // A transposed view and a column slice: copied to a contiguous stack first.
  const at::Tensor base = random_rows(40, 13, 12, at::kDouble);
  expect_matches_oracle(base.t(), {Kind::kTrimmed, 3});
  expect_matches_oracle(random_rows(9, 200, 13, at::kFloat).narrow(1, 5, 150),
                        {Kind::kNearMedian, 4});
}

// The ATen forms on rows without ties: the same values (the median exactly,
// the means to the rounding of their float32 or float64 sums) and the same
// shares.
void expect_matches_aten(const ColumnMeans& aten, const ColumnMeans& kernel,
                         const std::string& what, bool exact) {
  const bool is_float = kernel.values.scalar_type() == at::kFloat;
  const std::vector<double> want = values_of(aten.values);
  const std::vector<double> got = values_of(kernel.values);
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t j = 0; j < got.size(); ++j) {
    const double tol = exact ? 0.0 : (is_float ? 2e-6 : 1e-14) * (1.0 + std::abs(want[j]));
    ASSERT_NEAR(got[j], want[j], tol) << what << ", coordinate " << j;
  }
  ASSERT_EQ(kernel.row_shares.size(), aten.row_shares.size()) << what;
  for (size_t r = 0; r < aten.row_shares.size(); ++r) {
    EXPECT_NEAR(kernel.row_shares[r], aten.row_shares[r], 1e-15) << what << ", row " << r;
  }
}

TEST(SelectionKernelTest, MatchesTheAtenForms) {
  uint64_t seed = 300;
  for (at::ScalarType dtype : {at::kFloat, at::kDouble}) {
    for (int64_t n : kRowCounts) {
      const at::Tensor rows = random_rows(n, 517, ++seed, dtype);
      const std::string what = "n=" + std::to_string(n) + " " + c10::toString(dtype);
      std::optional<ColumnMeans> median = cpu_column_means(rows, {}, {Kind::kMedian, 0}, true);
      ASSERT_TRUE(median.has_value());
      expect_matches_aten(median_by_sorting(rows, true), *median, "median " + what, true);
      for (int64_t f : {int64_t{1}, (n - 1) / 4, (n - 1) / 2}) {
        if (f < 1 || 2 * f + 1 > n) continue;
        std::optional<ColumnMeans> trimmed = cpu_column_means(rows, {}, {Kind::kTrimmed, f}, true);
        ASSERT_TRUE(trimmed.has_value());
        expect_matches_aten(trimmed_mean_by_sorting(rows, f, true), *trimmed,
                            "trimmed f=" + std::to_string(f) + " " + what, false);
      }
      for (int64_t f : {int64_t{0}, int64_t{1}, n / 2, n - 1}) {
        if (f + 1 > n) continue;
        std::optional<ColumnMeans> meamed =
            cpu_column_means(rows, {}, {Kind::kNearMedian, f}, true);
        ASSERT_TRUE(meamed.has_value());
        expect_matches_aten(meamed_by_sorting(rows, f, true), *meamed,
                            "meamed f=" + std::to_string(f) + " " + what, false);
      }
      // Bulyan's step on the rows with an even index: theta of them, beta kept.
      std::vector<int64_t> selected;
      for (int64_t i = 0; i < n; i += 2) selected.push_back(i);
      const auto theta = static_cast<int64_t>(selected.size());
      for (int64_t beta : {int64_t{1}, (theta + 1) / 2, theta}) {
        // For even theta the two middle values are equally far from their
        // mean, and ATen's topk may keep either when beta = 1.
        if (theta % 2 == 0 && beta == 1) continue;
        std::optional<ColumnMeans> bulyan =
            cpu_column_means(rows, selected, {Kind::kNearMedian, theta - beta}, true);
        ASSERT_TRUE(bulyan.has_value());
        expect_matches_aten(bulyan_step_by_topk(rows, selected, beta, true), *bulyan,
                            "bulyan beta=" + std::to_string(beta) + " " + what, false);
      }
    }
  }
}

TEST(SelectionKernelTest, TiedValuesGiveTheAtenValues) {
  // With ties the two may credit different rows holding equal values, but
  // the values agree (the median, trimmed mean and meamed windows hold the
  // same multiset of values).
  for (int64_t n : {4, 5, 10, 33}) {
    const at::Tensor rows = tied_rows(n, 300, static_cast<uint64_t>(n), at::kFloat);
    std::optional<ColumnMeans> median = cpu_column_means(rows, {}, {Kind::kMedian, 0}, false);
    EXPECT_TRUE(at::equal(median->values, median_by_sorting(rows, false).values)) << n;
    const int64_t f = (n - 1) / 2;
    std::optional<ColumnMeans> trimmed = cpu_column_means(rows, {}, {Kind::kTrimmed, f}, false);
    EXPECT_TRUE(
        at::allclose(trimmed->values, trimmed_mean_by_sorting(rows, f, false).values, 1e-6, 1e-6))
        << n;
    std::optional<ColumnMeans> meamed =
        cpu_column_means(rows, {}, {Kind::kNearMedian, n / 2}, false);
    EXPECT_TRUE(
        at::allclose(meamed->values, meamed_by_sorting(rows, n / 2, false).values, 1e-6, 1e-6))
        << n;
  }
}

TEST(SelectionKernelTest, LeavesNanToTheAtenForms) {
  // A NaN anywhere (a sorted block, a copied row, the last partial tile:
  // rows 0-15 are loaded as sorted blocks, 16-19 copied)
  // makes the kernel decline; the rule then gives the ATen result.
  for (auto [row, column] :
       {std::pair{0, 0}, std::pair{13, 70}, std::pair{17, 5}, std::pair{19, 199}}) {
    at::Tensor rows = random_rows(20, 200, 14, at::kFloat);
    rows[row][column] = std::numeric_limits<float>::quiet_NaN();
    for (KernelIsa isa : {KernelIsa::kBest, KernelIsa::kBaseline}) {
      EXPECT_FALSE(cpu_column_means(rows, {}, {Kind::kMedian, 0}, true, isa).has_value())
          << row << ", " << column;
    }
    const ColumnMeans median = coordinatewise_median(rows, true);
    const ColumnMeans aten = median_by_sorting(rows, true);
    EXPECT_TRUE(at::equal(median.values.isnan(), aten.values.isnan()));
    EXPECT_EQ(median.row_shares, aten.row_shares);
  }
}

TEST(SelectionKernelTest, DeclinesOtherDtypesAndTooManyRows) {
  const at::Tensor rows = random_rows(5, 10, 15, at::kFloat);
  for (at::ScalarType dtype : {at::kHalf, at::kBFloat16}) {
    EXPECT_FALSE(cpu_column_means(rows.to(dtype), {}, {Kind::kMedian, 0}, false).has_value());
    // The rules still work, through ATen, in that dtype.
    const ColumnMeans median = coordinatewise_median(rows.to(dtype), false);
    EXPECT_EQ(median.values.scalar_type(), dtype);
    EXPECT_TRUE(at::allclose(median.values.to(at::kFloat), median_by_sorting(rows, false).values,
                             1e-2, 1e-2));
  }
  EXPECT_FALSE(cpu_column_means(at::zeros({kMaxKernelRows + 1, 2}), {}, {Kind::kMedian, 0}, false)
                   .has_value());
  EXPECT_TRUE(
      cpu_column_means(at::zeros({kMaxKernelRows, 2}), {}, {Kind::kMedian, 0}, false).has_value());
}

TEST(SelectionKernelTest, RefusesWindowsThatDoNotFit) {
  const at::Tensor rows = random_rows(5, 3, 16, at::kFloat);
  EXPECT_THROW(cpu_column_means(rows, {}, {Kind::kTrimmed, 3}, false), c10::Error);
  EXPECT_THROW(cpu_column_means(rows, {}, {Kind::kNearMedian, 5}, false), c10::Error);
  EXPECT_THROW(cpu_column_means(rows, {}, {Kind::kTrimmed, -1}, false), c10::Error);
  const std::vector<int64_t> outside = {0, 5};
  EXPECT_THROW(cpu_column_means(rows, outside, {Kind::kMedian, 0}, false), c10::Error);
  EXPECT_NO_THROW(cpu_column_means(rows, {}, {Kind::kTrimmed, 2}, false));
  EXPECT_NO_THROW(cpu_column_means(rows, {}, {Kind::kNearMedian, 4}, false));
}

TEST(SelectionKernelTest, RulesTakeTheKernelOnCpu) {
  // The rules' aggregates and row weights are the kernel's.
  const at::Tensor rows = random_rows(15, 129, 17, at::kFloat);
  const auto check = [&](const std::string& rule, int f, ColumnWindow window,
                         std::vector<int64_t> subset = {}) {
    AggregationResult r =
        coordinatewise_test::must_aggregate(*coordinatewise_test::make_rule(rule, f), rows);
    std::optional<ColumnMeans> kernel = cpu_column_means(rows, subset, window, true);
    ASSERT_TRUE(kernel.has_value());
    EXPECT_TRUE(at::equal(r.aggregate, kernel->values)) << rule;
    EXPECT_EQ(r.row_weights, kernel->row_shares) << rule;
  };
  check("median", 0, {Kind::kMedian, 0});
  check("trimmed-mean", 4, {Kind::kTrimmed, 4});
  check("meamed", 6, {Kind::kNearMedian, 6});
  // Bulyan with f = 3: theta = 9 rows selected, beta = 3 averaged.
  AggregationResult bulyan =
      coordinatewise_test::must_aggregate(*coordinatewise_test::make_rule("bulyan", 3), rows);
  ASSERT_EQ(bulyan.selected.size(), 9u);
  std::optional<ColumnMeans> step =
      cpu_column_means(rows, bulyan.selected, {Kind::kNearMedian, 6}, true);
  ASSERT_TRUE(step.has_value());
  EXPECT_TRUE(at::equal(bulyan.aggregate, step->values));
  EXPECT_EQ(bulyan.row_weights, step->row_shares);
}

}  // namespace
}  // namespace cohort
