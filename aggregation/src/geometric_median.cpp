// Geometric median by smoothed Weiszfeld ("geometric-median"; RFA, Pillutla,
// Kakade, Harchaoui 2022; as ByzFL GeometricMedian and epfml RFA):
// z <- sum_i beta_i x_i / sum_i beta_i, beta_i = alpha_i / max(nu, ||z - x_i||),
// alpha = the weights normalised (uniform when none), `iters` times from
// `start`, stopping early once ||z_new - z|| <= tol * max(1, ||z||) when
// tol > 0. Parameters: nu 0.1 (> 0), iters 3 (>= 1), start zero | mean |
// median (zero, as ByzFL; mean is weighted), tol 0 (>= 0; 0 = off). Ignores
// f. Diagnostics: row_weights = the last beta, normalised.
#include <ATen/ATen.h>

#include <algorithm>

#include "coordinatewise_rules.h"
#include "cohort/number_text.h"
#include "selection.h"

namespace cohort {
namespace {

struct GeometricMedianParams {
  double nu = 0.1;
  int64_t iters = 3;
  StartPoint start = StartPoint::kZero;
  double tol = 0.0;
};

bool has_converged(const at::Tensor& next, const at::Tensor& z, double tol) {
  const double step = at::linalg_vector_norm(next - z).item<double>();
  return step <= tol * std::max(1.0, at::linalg_vector_norm(z).item<double>());
}

class GeometricMedian final : public AggregationRule {
 public:
  explicit GeometricMedian(GeometricMedianParams params) : params_(params) {}
  std::string_view name() const override { return "geometric-median"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    COHORT_ASSIGN_OR_RETURN(at::Tensor z,
                            start_point(params_.start, rows, weights, context, name()));
    at::Tensor alpha = at::tensor(normalized_weights(weights, rows.size(0)), at::kDouble)
                           .to(rows.device(), rows.scalar_type());
    at::Tensor beta;
    for (int64_t t = 0; t < params_.iters; ++t) {
      beta = alpha / at::linalg_vector_norm(rows - z, 2, {1}).clamp_min(params_.nu);
      at::Tensor next = at::matmul(beta, rows) / beta.sum();
      const bool converged = params_.tol > 0.0 && has_converged(next, z, params_.tol);
      z = std::move(next);
      if (converged) break;
    }
    AggregationResult out;
    out.aggregate = std::move(z);
    if (context.diagnostics) out.row_weights = to_doubles(beta / beta.sum());
    return out;
  }

 private:
  GeometricMedianParams params_;
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_geometric_median(RuleParams& params) {
  GeometricMedianParams p;
  COHORT_ASSIGN_OR_RETURN(p.nu, params.get_double("nu", p.nu));
  COHORT_ASSIGN_OR_RETURN(p.iters, params.get_int("iters", p.iters));
  COHORT_ASSIGN_OR_RETURN(p.start, read_start_point(params, "geometric-median", p.start,
                                                    /*allow_previous=*/false));
  COHORT_ASSIGN_OR_RETURN(p.tol, params.get_double("tol", p.tol));
  if (!(p.nu > 0.0)) {
    return Status::invalid_argument("geometric-median needs nu > 0, got nu=" + number_text(p.nu));
  }
  if (p.iters < 1) {
    return Status::invalid_argument("geometric-median needs iters >= 1, got iters=" +
                                    std::to_string(p.iters));
  }
  if (!(p.tol >= 0.0)) {
    return Status::invalid_argument("geometric-median needs tol >= 0, got tol=" +
                                    number_text(p.tol));
  }
  return std::unique_ptr<AggregationRule>(std::make_unique<GeometricMedian>(p));
}

}  // namespace cohort
