// "inf" (ByzFL Inf): every coordinate of every Byzantine row is +infinity,
// to test how the coordinator handles non-finite updates. No parameters.
#include <ATen/ATen.h>

#include <limits>

#include "attack_common.h"
#include "attack_factories.h"

namespace cohort {
namespace {

class Inf final : public Attack {
 public:
  std::string_view name() const override { return "inf"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    return at::full({f, honest.size(1)}, std::numeric_limits<double>::infinity(), honest.options());
  }
};

}  // namespace

Result<std::unique_ptr<Attack>> make_inf_attack(RuleParams& /*params*/) {
  return std::unique_ptr<Attack>(std::make_unique<Inf>());
}

}  // namespace cohort
