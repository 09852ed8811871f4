// "sign-flip" (ByzFL SignFlipping): every Byzantine row is -mu, mu the
// coordinate-wise mean of the honest rows. No parameters.
#include <ATen/ATen.h>

#include "attack_common.h"
#include "attack_factories.h"

namespace cohort {
namespace {

class SignFlip final : public Attack {
 public:
  std::string_view name() const override { return "sign-flip"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    return identical_rows(-honest_mean(honest), f);
  }
};

}  // namespace

Result<std::unique_ptr<Attack>> make_sign_flip_attack(RuleParams& /*params*/) {
  return std::unique_ptr<Attack>(std::make_unique<SignFlip>());
}

}  // namespace cohort
