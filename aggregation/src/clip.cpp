// Static norm clipping ("clip", ByzFL Clipping): every row x becomes
// x * min(1, c / ||x||), so no row has an L2 norm above c; a zero row stays
// zero. Parameter c (default 2.0, ByzFL's default) must be > 0. Weights are
// passed through unchanged.
#include <ATen/ATen.h>

#include "cohort/number_text.h"
#include "pre_aggregators.h"

namespace cohort {
namespace {

class Clip final : public PreAggregator {
 public:
  explicit Clip(double c) : c_(c) {}
  std::string_view name() const override { return "clip"; }

  Result<UpdateStack> apply(UpdateStack stack, const AggregationContext& /*context*/) const override {
    COHORT_RETURN_IF_ERROR(check_pre_stack(name(), stack));
    at::Tensor norms = row_norms(stack.rows);
    at::Tensor bound = at::scalar_tensor(c_, norms.options());
    return clip_rows_to_norm(std::move(stack), norms, bound);
  }

 private:
  double c_;
};

}  // namespace

Result<std::unique_ptr<PreAggregator>> make_clip(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(double c, params.get_double("c", 2.0));
  if (!(c > 0.0)) return Status::invalid_argument("clip needs c > 0, got c=" + number_text(c));
  return std::unique_ptr<PreAggregator>(std::make_unique<Clip>(c));
}

}  // namespace cohort
