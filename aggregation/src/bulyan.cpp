// Bulyan (El Mhamdi et al., ICML 2018; Flower's aggregate_bulyan): pick theta = n-2f rows by Krum
// on the n' rows left (max(1, n'-f-2) neighbours; ties: lowest index), theta times; per coordinate
// average the beta = theta-2f picked values nearest their median (even count: mean of the middle
// two). Needs n >= 4f+3; ignores weights. scores: Krum over all n; row_weights: share of values.
#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <optional>
#include <utility>
#include <vector>

#include "distance_rules.h"
#include "distances.h"
#include "krum_scores.h"
#include "selection.h"

namespace cohort {
namespace {

at::Tensor index_tensor(const std::vector<int64_t>& indices) {
  return at::tensor(at::ArrayRef<int64_t>(indices), at::TensorOptions().dtype(at::kLong));
}

// Iterated Krum on the one distance matrix: each round scores the remaining
// rows against each other only. Returns the winners in ascending order.
std::vector<int64_t> select_by_iterated_krum(const at::Tensor& sq_dist, int64_t f, int64_t theta) {
  std::vector<int64_t> remaining(sq_dist.size(0));
  std::iota(remaining.begin(), remaining.end(), 0);
  std::vector<int64_t> winners;
  while (static_cast<int64_t>(winners.size()) < theta) {
    at::Tensor idx = index_tensor(remaining);
    at::Tensor sub = sq_dist.index_select(0, idx).index_select(1, idx);
    const int64_t n_left = static_cast<int64_t>(remaining.size());
    const int64_t winner = lowest_entries(krum_scores(sub, krum_neighbours(n_left, f)), 1)[0];
    winners.push_back(remaining[winner]);
    remaining.erase(remaining.begin() + winner);
  }
  std::sort(winners.begin(), winners.end());
  return winners;
}

class Bulyan final : public AggregationRule {
 public:
  explicit Bulyan(int64_t f) : f_(f) {}
  std::string_view name() const override { return "bulyan"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_rows_for_rule(rows, weights, "bulyan", 4 * f_ + 3, "4f+3", f_));
    const int64_t n = rows.size(0);
    const int64_t theta = n - 2 * f_;
    const int64_t beta = theta - 2 * f_;
    at::Tensor sq_dist = pairwise_sq_distances(rows);
    std::vector<int64_t> selected = select_by_iterated_krum(sq_dist, f_, theta);
    // Per coordinate, the beta selected values nearest their median.
    std::optional<ColumnMeans> means = cpu_column_means(
        rows, selected, {ColumnWindow::Kind::kNearMedian, theta - beta}, context.diagnostics);
    if (!means.has_value()) {
      means = bulyan_step_by_topk(rows, selected, beta, context.diagnostics);
    }
    AggregationResult out;
    out.aggregate = std::move(means->values);
    if (context.diagnostics) {
      out.scores = to_doubles(krum_scores(sq_dist, n - f_ - 2));
      out.row_weights = std::move(means->row_shares);
      out.selected = std::move(selected);
    }
    return out;
  }

 private:
  int64_t f_;
};

// Coordinate-wise median of the rows of `values` [m, d]; for even m the mean
// of the two middle values. One selection pass yields both middle values.
at::Tensor coordinate_median(const at::Tensor& values) {
  const int64_t m = values.size(0);
  at::Tensor lower_half = std::get<0>(at::topk(values, m / 2 + 1, /*dim=*/0, /*largest=*/false,
                                               /*sorted=*/true));
  return (lower_half[(m - 1) / 2] + lower_half[m / 2]) / 2;
}

}  // namespace

ColumnMeans bulyan_step_by_topk(const at::Tensor& rows, const std::vector<int64_t>& selected,
                                int64_t beta, bool row_shares) {
  at::Tensor chosen = rows.index_select(0, index_tensor(selected).to(rows.device()));
  // Which of two values equally far from the median is taken is unspecified.
  at::Tensor nearest = std::get<1>(at::topk((chosen - coordinate_median(chosen)).abs(), beta,
                                            /*dim=*/0, /*largest=*/false, /*sorted=*/false));
  ColumnMeans out;
  out.values = chosen.gather(0, nearest).mean(0);
  if (!row_shares) return out;
  // Row i's share of the beta x d averaged values (uniform over the
  // selected rows when d = 0).
  const auto theta = static_cast<int64_t>(selected.size());
  std::vector<double> counts =
      to_doubles(at::bincount(nearest.flatten(), /*weights=*/{}, /*minlength=*/theta));
  const double total = static_cast<double>(nearest.numel());
  out.row_shares.assign(static_cast<size_t>(rows.size(0)), 0.0);
  for (int64_t k = 0; k < theta; ++k) {
    out.row_shares[selected[k]] =
        total > 0.0 ? counts[k] / total : 1.0 / static_cast<double>(theta);
  }
  return out;
}

Result<std::unique_ptr<AggregationRule>> make_bulyan(RuleParams& params) {
  return std::unique_ptr<AggregationRule>(std::make_unique<Bulyan>(params.f()));
}

}  // namespace cohort
