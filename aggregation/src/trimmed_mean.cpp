// Coordinate-wise trimmed mean ("trimmed-mean"; Yin et al., ICML 2018, as
// ByzFL TrMean(f), fedlib and epfml): per coordinate drop the f largest and
// the f smallest values and average the other n-2f. Needs n >= 2f+1; at
// f = 0 it is the plain mean. Ignores the weights. Diagnostics: row_weights
// = the share of the averaged values that came from each row.
#include <ATen/ATen.h>

#include <optional>
#include <utility>

#include "coordinatewise_rules.h"
#include "selection.h"

namespace cohort {
namespace {

class TrimmedMean final : public AggregationRule {
 public:
  explicit TrimmedMean(int64_t f) : f_(f) {}
  std::string_view name() const override { return "trimmed-mean"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_rows_for_rule(rows, weights, name(), 2 * f_ + 1, "2f+1", f_));
    const int64_t n = rows.size(0);
    AggregationResult out;
    if (f_ == 0) {  // nothing to trim: no sort
      out.aggregate = rows.mean(0);
      if (context.diagnostics) out.row_weights = normalized_weights({}, n);
      return out;
    }
    std::optional<ColumnMeans> means =
        cpu_column_means(rows, {}, {ColumnWindow::Kind::kTrimmed, f_}, context.diagnostics);
    if (!means.has_value()) means = trimmed_mean_by_sorting(rows, f_, context.diagnostics);
    out.aggregate = std::move(means->values);
    out.row_weights = std::move(means->row_shares);
    return out;
  }

 private:
  int64_t f_;
};

}  // namespace

ColumnMeans trimmed_mean_by_sorting(const at::Tensor& rows, int64_t f, bool row_shares) {
  const int64_t n = rows.size(0);
  auto [sorted, order] = at::sort(rows, /*dim=*/0);
  ColumnMeans out;
  out.values = sorted.narrow(0, f, n - 2 * f).mean(0);
  if (row_shares) out.row_shares = coordinate_shares(order.narrow(0, f, n - 2 * f), n);
  return out;
}

Result<std::unique_ptr<AggregationRule>> make_trimmed_mean(RuleParams& params) {
  return std::unique_ptr<AggregationRule>(std::make_unique<TrimmedMean>(params.f()));
}

}  // namespace cohort
