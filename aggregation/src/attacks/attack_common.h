// Steps shared by the attacks: input checks and the honest statistics.
// Private to the aggregation library.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string_view>

#include "cohort/status.h"

namespace cohort {

// honest must be a 2-D floating-point [h, d] tensor with h >= min_honest,
// and f >= 0; errors name the attack.
Status check_attack_input(std::string_view attack, const at::Tensor& honest, int f, int64_t min_honest);

// Coordinate-wise mean [d] of the honest rows.
at::Tensor honest_mean(const at::Tensor& honest);
// Coordinate-wise sample standard deviation (ddof = 1) [d] of the honest rows.
at::Tensor honest_std(const at::Tensor& honest);

// f copies of `row` [d] as a contiguous [f, d] tensor.
at::Tensor identical_rows(const at::Tensor& row, int f);

}  // namespace cohort
