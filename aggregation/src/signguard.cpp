// SignGuard (Xu et al., ICDCS 2022; fedlib Signguard): M = median norm, S1 = {0.1 M <= |x_i| <=
// 3 M} (unclipped norms), S2 = larger cluster of a 2-means on (positive, negative, zero) coordinate
// fractions (farthest-pair seeds; ties: the lexicographically larger seed's); output = mean of the
// S1 & S2 rows clipped to norm M (zeros if none). Ignores weights; deterministic.
#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <numeric>
#include <string>

#include "distance_rules.h"
#include "selection.h"

namespace cohort {
namespace {

using Point = std::array<double, 3>;

constexpr double kLowerNormRatio = 0.1;
constexpr double kUpperNormRatio = 3.0;
constexpr int kMaxTwoMeansIterations = 100;

double median_of(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t m = values.size();
  return (values[(m - 1) / 2] + values[m / 2]) / 2.0;
}

double sq_distance(const Point& a, const Point& b) {
  double s = 0.0;
  for (size_t k = 0; k < a.size(); ++k) s += (a[k] - b[k]) * (a[k] - b[k]);
  return s;
}

// Per row: the fractions of positive, negative and zero coordinates, from
// two passes over the rows: the sum of the signs (positive - negative) and
// the count of nonzeros (positive + negative).
std::vector<Point> sign_features(const at::Tensor& rows) {
  const double d = static_cast<double>(rows.size(1));
  std::vector<double> balance = to_doubles(at::sign(rows).sum(1));
  std::vector<double> nonzero = to_doubles(at::linalg_vector_norm(rows, 0, {1}));
  std::vector<Point> points(rows.size(0));
  for (size_t i = 0; i < points.size(); ++i) {
    const double positive = (nonzero[i] + balance[i]) / 2;
    const double negative = (nonzero[i] - balance[i]) / 2;
    points[i] = {positive / d, negative / d, (d - nonzero[i]) / d};
  }
  return points;
}

// The two points farthest apart, the lexicographically larger first; among
// equally distant pairs the one that is larger in that order, so that the
// choice depends on the points' values and not on their order.
std::array<Point, 2> farthest_pair(const std::vector<Point>& points) {
  std::array<Point, 2> best{points[0], points[0]};
  double best_distance = 0.0;
  for (size_t i = 0; i < points.size(); ++i) {
    for (size_t j = i + 1; j < points.size(); ++j) {
      const std::array<Point, 2> pair{std::max(points[i], points[j]),
                                      std::min(points[i], points[j])};
      const double distance = sq_distance(pair[0], pair[1]);
      if (distance > best_distance || (distance == best_distance && pair > best)) {
        best_distance = distance;
        best = pair;
      }
    }
  }
  return best;
}

// Lloyd's 2-means seeded with the farthest pair: cluster 0 starts at the
// lexicographically larger point and takes the points equally near both
// centres. Returns each point's cluster; all 0 when the points coincide.
// Depends only on the points' values, so reordering them reorders the labels.
std::vector<int> two_means(const std::vector<Point>& points) {
  const size_t n = points.size();
  std::array<Point, 2> centre = farthest_pair(points);
  std::vector<int> label(n, 0);
  if (centre[0] == centre[1]) return label;
  // Centres are summed in value order, so they round alike in any row order.
  std::vector<size_t> by_value(n);
  std::iota(by_value.begin(), by_value.end(), 0);
  std::stable_sort(by_value.begin(), by_value.end(),
                   [&](size_t a, size_t b) { return points[a] < points[b]; });
  for (int iter = 0; iter < kMaxTwoMeansIterations; ++iter) {
    std::vector<int> next(n);
    for (size_t i = 0; i < n; ++i) {
      next[i] = sq_distance(points[i], centre[1]) < sq_distance(points[i], centre[0]) ? 1 : 0;
    }
    if (iter > 0 && next == label) break;
    label = std::move(next);
    for (int c = 0; c < 2; ++c) {
      Point sum{0.0, 0.0, 0.0};
      double count = 0.0;
      for (size_t i : by_value) {
        if (label[i] != c) continue;
        for (size_t k = 0; k < 3; ++k) sum[k] += points[i][k];
        count += 1.0;
      }
      if (count == 0.0) continue;  // an empty cluster keeps its centre
      for (size_t k = 0; k < 3; ++k) centre[c][k] = sum[k] / count;
    }
  }
  return label;
}

// The label of the larger cluster; on a tie, cluster 0.
int majority_label(const std::vector<int>& label) {
  const auto ones = std::count(label.begin(), label.end(), 1);
  return 2 * ones > static_cast<std::ptrdiff_t>(label.size()) ? 1 : 0;
}

class SignGuard final : public AggregationRule {
 public:
  std::string_view name() const override { return "signguard"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    const int64_t n = rows.size(0);
    std::vector<double> norms = to_doubles(at::linalg_vector_norm(rows, 2, {1}));
    const double m = median_of(norms);
    std::vector<int> label = two_means(sign_features(rows));
    const int majority = majority_label(label);
    std::vector<int64_t> kept;
    std::vector<double> clip(n, 1.0);
    for (int64_t i = 0; i < n; ++i) {
      if (norms[i] > m) clip[i] = m / norms[i];
      const bool plausible_norm =
          norms[i] >= kLowerNormRatio * m && norms[i] <= kUpperNormRatio * m;
      if (plausible_norm && label[i] == majority) kept.push_back(i);
    }
    return mean_of_selected(rows, std::move(kept), {}, context, "signguard", clip);
  }
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_signguard(RuleParams& /*params*/) {
  return std::unique_ptr<AggregationRule>(std::make_unique<SignGuard>());
}

}  // namespace cohort
