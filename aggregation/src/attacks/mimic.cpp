// "mimic" (Karimireddy et al. ICLR 2022; ByzFL Mimic): every Byzantine row
// copies honest row `index` (0-based, default 0 as ByzFL; must be < h),
// over-representing one honest worker's data.
#include <ATen/ATen.h>

#include <string>

#include "attack_common.h"
#include "attack_factories.h"

namespace cohort {
namespace {

class Mimic final : public Attack {
 public:
  explicit Mimic(int64_t index) : index_(index) {}
  std::string_view name() const override { return "mimic"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    if (index_ >= honest.size(0)) {
      return Status::failed_precondition("mimic needs index < h, got index=" + std::to_string(index_) +
                                         ", h=" + std::to_string(honest.size(0)));
    }
    return identical_rows(honest[index_], f);
  }

 private:
  int64_t index_;
};

}  // namespace

Result<std::unique_ptr<Attack>> make_mimic_attack(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(int64_t index, params.get_int("index", 0));
  if (index < 0) return Status::invalid_argument("mimic needs index >= 0, got index=" + std::to_string(index));
  return std::unique_ptr<Attack>(std::make_unique<Mimic>(index));
}

}  // namespace cohort
