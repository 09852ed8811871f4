// Coordinate-wise median ("median"; Yin et al., ICML 2018): per coordinate
// the middle value of the n rows, and for even n the mean of the two middle
// values (numpy, Flower, ByzFL's quantile(0.5); not torch.median's lower
// one). Any n >= 1; ignores f and the weights. Diagnostics: row_weights =
// the share of coordinates at which the row's value was used (for even n
// each of the two middle values gets half credit).
#include <ATen/ATen.h>

#include <optional>
#include <utility>

#include "coordinatewise_rules.h"
#include "selection.h"

namespace cohort {
namespace {

class Median final : public AggregationRule {
 public:
  std::string_view name() const override { return "median"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    ColumnMeans median = coordinatewise_median(rows, context.diagnostics);
    AggregationResult out;
    out.aggregate = std::move(median.values);
    out.row_weights = std::move(median.row_shares);
    return out;
  }
};

}  // namespace

ColumnMeans coordinatewise_median(const at::Tensor& rows, bool row_shares) {
  std::optional<ColumnMeans> fast =
      cpu_column_means(rows, {}, {ColumnWindow::Kind::kMedian, 0}, row_shares);
  if (fast.has_value()) return *std::move(fast);
  return median_by_sorting(rows, row_shares);
}

ColumnMeans median_by_sorting(const at::Tensor& rows, bool row_shares) {
  ColumnMeans out;
  at::Tensor used_rows;  // [1 or 2, d]: the rows whose values were averaged
  if (rows.size(0) % 2 == 1) {
    // One middle value: a selection, about twice as fast as a full sort.
    auto [values, indices] = at::median(rows, /*dim=*/0);
    out.values = values;
    used_rows = indices.unsqueeze(0);
  } else {
    auto [sorted, order] = at::sort(rows, /*dim=*/0);
    out.values = middle_of_sorted(sorted).mean(0);
    used_rows = middle_of_sorted(order);
  }
  if (row_shares) out.row_shares = coordinate_shares(used_rows, rows.size(0));
  return out;
}

Result<std::unique_ptr<AggregationRule>> make_median(RuleParams& /*params*/) {
  return std::unique_ptr<AggregationRule>(std::make_unique<Median>());
}

}  // namespace cohort
