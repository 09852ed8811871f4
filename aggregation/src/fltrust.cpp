// FLTrust ("fltrust"; Cao, Fang, Liu, Gong, NDSS 2021): with g0 =
// context.root_update (the server's update on its small root dataset), each
// row gets the trust score TS_i = ReLU(cos(x_i, g0)) and is rescaled to
// g0's norm; the output is sum_i TS_i x_i ||g0|| / ||x_i|| / sum_i TS_i. A
// zero row has TS 0; when every TS is 0 the output is the zero vector (and
// scores and row_weights are all 0). Ignores f and the weights.
// FailedPrecondition without a root update of d values. Diagnostics: scores
// = TS, row_weights = TS / sum TS.
#include <ATen/ATen.h>

#include <limits>

#include "coordinatewise_rules.h"
#include "selection.h"

namespace cohort {
namespace {

class FLTrust final : public AggregationRule {
 public:
  std::string_view name() const override { return "fltrust"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    COHORT_ASSIGN_OR_RETURN(at::Tensor root,
                            context_vector(context.root_update, rows, name(), "root_update"));
    // Clamping the norms keeps zero vectors at cos = 0 rather than 0/0.
    const double tiny = std::numeric_limits<float>::min();
    at::Tensor row_norms = at::linalg_vector_norm(rows, 2, {1}).clamp_min(tiny);
    at::Tensor root_norm = at::linalg_vector_norm(root).clamp_min(tiny);
    at::Tensor trust = (at::matmul(rows, root) / row_norms / root_norm).relu_();
    at::Tensor total = trust.sum();
    // With every score 0 the sum below is 0 too, and 0 / tiny = 0.
    at::Tensor coefficients = trust * root_norm / row_norms;
    AggregationResult out;
    out.aggregate = at::matmul(coefficients, rows) / total.clamp_min(tiny);
    if (context.diagnostics) {
      out.scores = to_doubles(trust);
      out.row_weights = to_doubles(trust / total.clamp_min(tiny));
    }
    return out;
  }
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_fltrust(RuleParams& /*params*/) {
  return std::unique_ptr<AggregationRule>(std::make_unique<FLTrust>());
}

}  // namespace cohort
