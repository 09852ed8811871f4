// Adaptive robust clipping ("arc", Allouah et al. 2024, ByzFL ARC): the
// k = floor(2 (f/n) (n - f)) rows with the largest L2 norms are clipped to the
// norm of the largest remaining row (ties in norm change nothing: a row is
// clipped only if its norm exceeds that bound). Needs 0 <= f < n. Weights are
// passed through unchanged.
#include <ATen/ATen.h>

#include "pre_aggregators.h"

namespace cohort {
namespace {

class Arc final : public PreAggregator {
 public:
  explicit Arc(int f) : f_(f) {}
  std::string_view name() const override { return "arc"; }

  Result<UpdateStack> apply(UpdateStack stack, const AggregationContext& /*context*/) const override {
    COHORT_RETURN_IF_ERROR(check_pre_stack(name(), stack));
    const int64_t n = stack.rows.size(0);
    COHORT_RETURN_IF_ERROR(check_f_below_n(name(), f_, n));
    // Integer arithmetic gives the floor exactly; k < n for every 0 <= f < n.
    const int64_t clipped = 2 * f_ * (n - f_) / n;
    at::Tensor norms = row_norms(stack.rows);
    // The (k+1)-th largest norm is the (n-k)-th smallest.
    at::Tensor bound = std::get<0>(at::kthvalue(norms, n - clipped));
    return clip_rows_to_norm(std::move(stack), norms, bound);
  }

 private:
  int f_;
};

}  // namespace

Result<std::unique_ptr<PreAggregator>> make_arc(RuleParams& params) {
  COHORT_RETURN_IF_ERROR(check_f_nonnegative("arc", params.f()));
  return std::unique_ptr<PreAggregator>(std::make_unique<Arc>(params.f()));
}

}  // namespace cohort
