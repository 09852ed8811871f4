#include "attack_common.h"

#include <ATen/ATen.h>

#include <string>

namespace cohort {

Status check_attack_input(std::string_view attack, const at::Tensor& honest, int f, int64_t min_honest) {
  const std::string name(attack);
  if (!honest.defined() || honest.dim() != 2 || !at::isFloatingType(honest.scalar_type())) {
    return Status::invalid_argument(name + ": the honest updates must be a 2-D floating-point [h, d] tensor");
  }
  if (f < 0) return Status::invalid_argument(name + " needs f >= 0, got f=" + std::to_string(f));
  if (honest.size(0) < min_honest) {
    return Status::failed_precondition(name + " needs h >= " + std::to_string(min_honest) +
                                       " honest updates, got h=" + std::to_string(honest.size(0)));
  }
  return Status();
}

at::Tensor honest_mean(const at::Tensor& honest) { return honest.mean(0); }

at::Tensor honest_std(const at::Tensor& honest) { return honest.std(0, /*unbiased=*/true); }

at::Tensor identical_rows(const at::Tensor& row, int f) {
  return row.unsqueeze(0).expand({f, row.size(0)}).contiguous();
}

}  // namespace cohort
