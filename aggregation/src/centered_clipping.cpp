// Centered clipping ("centered-clipping"; Karimireddy, He, Jaggi, ICML 2021;
// as ByzFL CenteredClipping): v <- v + (1/n) sum_i (x_i - v) min(1, tau / ||x_i - v||),
// `iters` times. Parameters: tau 100 (> 0), iters 1 (>= 1), start previous |
// zero | mean | median (previous: context.previous, last round's aggregate,
// or zero when the context has none, as on ByzFL's first call). Ignores f
// and the weights: a self-reported sample count must not buy a longer step.
// Diagnostics: scores = each row's clipping factor averaged over the
// iterations (1 = never clipped); row_weights = the scores normalised.
#include <ATen/ATen.h>

#include "coordinatewise_rules.h"
#include "cohort/number_text.h"
#include "selection.h"

namespace cohort {
namespace {

struct CenteredClippingParams {
  double tau = 100.0;
  int64_t iters = 1;
  StartPoint start = StartPoint::kPrevious;
};

class CenteredClipping final : public AggregationRule {
 public:
  explicit CenteredClipping(CenteredClippingParams params) : params_(params) {}
  std::string_view name() const override { return "centered-clipping"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    COHORT_ASSIGN_OR_RETURN(at::Tensor v, start_point(params_.start, rows, {}, context, name()));
    const int64_t n = rows.size(0);
    at::Tensor factor_sum = at::zeros({n}, rows.options());
    for (int64_t t = 0; t < params_.iters; ++t) {
      at::Tensor offsets = rows - v;
      // tau / 0 = inf for a row at v, which the clamp turns into 1.
      at::Tensor factors = (params_.tau / at::linalg_vector_norm(offsets, 2, {1})).clamp_max_(1.0);
      v = v + at::matmul(factors, offsets).div_(static_cast<double>(n));
      factor_sum.add_(factors);
    }
    AggregationResult out;
    out.aggregate = std::move(v);
    if (context.diagnostics) {
      at::Tensor mean_factors = factor_sum / static_cast<double>(params_.iters);
      out.scores = to_doubles(mean_factors);
      out.row_weights = to_doubles(mean_factors / mean_factors.sum());
    }
    return out;
  }

 private:
  CenteredClippingParams params_;
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_centered_clipping(RuleParams& params) {
  CenteredClippingParams p;
  COHORT_ASSIGN_OR_RETURN(p.tau, params.get_double("tau", p.tau));
  COHORT_ASSIGN_OR_RETURN(p.iters, params.get_int("iters", p.iters));
  COHORT_ASSIGN_OR_RETURN(p.start, read_start_point(params, "centered-clipping", p.start,
                                                    /*allow_previous=*/true));
  if (!(p.tau > 0.0)) {
    return Status::invalid_argument("centered-clipping needs tau > 0, got tau=" +
                                    number_text(p.tau));
  }
  if (p.iters < 1) {
    return Status::invalid_argument("centered-clipping needs iters >= 1, got iters=" +
                                    std::to_string(p.iters));
  }
  return std::unique_ptr<AggregationRule>(std::make_unique<CenteredClipping>(p));
}

}  // namespace cohort
