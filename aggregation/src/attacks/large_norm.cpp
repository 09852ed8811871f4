// "large-norm": every Byzantine row is the honest mean mu rescaled to norm
// scale * max_i ||x_i|| over the honest rows (a model-replacement-sized
// update in the honest direction). Parameter scale (default 1e6) must be
// > 0; needs mu != 0.
#include <ATen/ATen.h>

#include "attack_common.h"
#include "attack_factories.h"
#include "cohort/number_text.h"

namespace cohort {
namespace {

class LargeNorm final : public Attack {
 public:
  explicit LargeNorm(double scale) : scale_(scale) {}
  std::string_view name() const override { return "large-norm"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    at::Tensor mu = honest_mean(honest);
    at::Tensor mu_norm = at::linalg_vector_norm(mu);
    if (!(mu_norm.item<double>() > 0.0)) {
      return Status::failed_precondition("large-norm needs a nonzero honest mean");
    }
    at::Tensor largest_norm = at::linalg_vector_norm(honest, 2, {1}).max();
    return identical_rows(mu * (scale_ * largest_norm / mu_norm), f);
  }

 private:
  double scale_;
};

}  // namespace

Result<std::unique_ptr<Attack>> make_large_norm_attack(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(double scale, params.get_double("scale", 1e6));
  if (!(scale > 0.0)) return Status::invalid_argument("large-norm needs scale > 0, got scale=" + number_text(scale));
  return std::unique_ptr<Attack>(std::make_unique<LargeNorm>(scale));
}

}  // namespace cohort
