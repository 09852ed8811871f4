// Mean around the median ("meamed"; ByzFL Meamed(f)): per coordinate the
// mean of the n-f values closest to the coordinate-wise median (the mean of
// the two middle values for even n). Equal distances go to the smaller
// value, which gives ByzFL's docstring vector. Needs n >= f+1; ignores the
// weights. Diagnostics: row_weights = the share of the averaged values that
// came from each row.
#include <ATen/ATen.h>

#include <optional>
#include <utility>

#include "coordinatewise_rules.h"
#include "selection.h"

namespace cohort {
namespace {

class Meamed final : public AggregationRule {
 public:
  explicit Meamed(int64_t f) : f_(f) {}
  std::string_view name() const override { return "meamed"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_rows_for_rule(rows, weights, name(), f_ + 1, "f+1", f_));
    std::optional<ColumnMeans> means =
        cpu_column_means(rows, {}, {ColumnWindow::Kind::kNearMedian, f_}, context.diagnostics);
    if (!means.has_value()) means = meamed_by_sorting(rows, f_, context.diagnostics);
    AggregationResult out;
    out.aggregate = std::move(means->values);
    out.row_weights = std::move(means->row_shares);
    return out;
  }

 private:
  int64_t f_;
};

}  // namespace

ColumnMeans meamed_by_sorting(const at::Tensor& rows, int64_t f, bool row_shares) {
  const int64_t n = rows.size(0);
  auto [sorted, order] = at::sort(rows, /*dim=*/0);
  at::Tensor distance = (sorted - middle_of_sorted(sorted).mean(0)).abs_();
  // Positions in `sorted` by distance. The stable sort keeps equal
  // distances in value order, so the smaller value comes first (`stable`
  // is passed as an optional: a plain bool would select sort(dim, descending)).
  at::Tensor by_distance = std::get<1>(at::sort(distance, std::optional<bool>(true), /*dim=*/0));
  at::Tensor closest = by_distance.narrow(0, 0, n - f);
  ColumnMeans out;
  out.values = sorted.gather(0, closest).mean(0);
  if (row_shares) out.row_shares = coordinate_shares(order.gather(0, closest), n);
  return out;
}

Result<std::unique_ptr<AggregationRule>> make_meamed(RuleParams& params) {
  return std::unique_ptr<AggregationRule>(std::make_unique<Meamed>(params.f()));
}

}  // namespace cohort
