// "zero" (a lazy worker): every Byzantine row is the zero vector. No
// parameters.
#include <ATen/ATen.h>

#include "attack_common.h"
#include "attack_factories.h"

namespace cohort {
namespace {

class Zero final : public Attack {
 public:
  std::string_view name() const override { return "zero"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    return at::zeros({f, honest.size(1)}, honest.options());
  }
};

}  // namespace

Result<std::unique_ptr<Attack>> make_zero_attack(RuleParams& /*params*/) {
  return std::unique_ptr<Attack>(std::make_unique<Zero>());
}

}  // namespace cohort
