// "ipm", inner-product manipulation (Xie et al. UAI 2019): every Byzantine
// row is -epsilon * mu, mu the coordinate-wise mean of the honest rows.
// Parameter epsilon (default 0.1, as Karimireddy et al.; ByzFL's
// InnerProductManipulation(tau) is epsilon = tau, default 2) must be > 0.
#include <ATen/ATen.h>

#include "attack_common.h"
#include "attack_factories.h"
#include "cohort/number_text.h"

namespace cohort {
namespace {

class Ipm final : public Attack {
 public:
  explicit Ipm(double epsilon) : epsilon_(epsilon) {}
  std::string_view name() const override { return "ipm"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    return identical_rows(-epsilon_ * honest_mean(honest), f);
  }

 private:
  double epsilon_;
};

}  // namespace

Result<std::unique_ptr<Attack>> make_ipm_attack(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(double epsilon, params.get_double("epsilon", 0.1));
  if (!(epsilon > 0.0)) return Status::invalid_argument("ipm needs epsilon > 0, got epsilon=" + number_text(epsilon));
  return std::unique_ptr<Attack>(std::make_unique<Ipm>(epsilon));
}

}  // namespace cohort
