// Coordinate-wise median ("median"; Yin et al., ICML 2018): per coordinate
// the middle value of the n rows, and for even n the mean of the two middle
// values (numpy, Flower, ByzFL's quantile(0.5); not torch.median's lower
// one). Any n >= 1; ignores f and the weights. Diagnostics: row_weights =
// the share of coordinates at which the row's value was used (for even n
// each of the two middle values gets half credit).
#include <ATen/ATen.h>

#include "coordinatewise_rules.h"

namespace cohort {
namespace {

class Median final : public AggregationRule {
 public:
  std::string_view name() const override { return "median"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    CoordinateMedian median = coordinatewise_median(rows);
    AggregationResult out;
    out.aggregate = std::move(median.values);
    if (context.diagnostics) out.row_weights = coordinate_shares(median.used_rows, rows.size(0));
    return out;
  }
};

}  // namespace

CoordinateMedian coordinatewise_median(const at::Tensor& rows) {
  if (rows.size(0) % 2 == 1) {
    // One middle value: a selection, about twice as fast as a full sort.
    auto [values, indices] = at::median(rows, /*dim=*/0);
    return {values, indices.unsqueeze(0)};
  }
  auto [sorted, order] = at::sort(rows, /*dim=*/0);
  return {middle_of_sorted(sorted).mean(0), middle_of_sorted(order)};
}

Result<std::unique_ptr<AggregationRule>> make_median(RuleParams& /*params*/) {
  return std::unique_ptr<AggregationRule>(std::make_unique<Median>());
}

}  // namespace cohort
