// The construction shared by "min-max" and "min-sum" (Shejwalkar &
// Houmansadr NDSS 2021): x = mu - gamma * p, with gamma as large as the
// authors' search finds while x stays as close to the honest rows as they
// are to each other. Private to the aggregation library.
#pragma once

#include <ATen/core/Tensor.h>

#include <span>
#include <string_view>

#include "cohort/aggregation.h"

namespace cohort {

// p: "unit" = mu / ||mu|| (0 when mu = 0), "sign" = sign(mu), "std" = the
// coordinate-wise sample standard deviation (ddof = 1) of the honest rows.
enum class Perturbation { kUnit, kSign, kStd };

// Reads parameter `perturbation` (unit | sign | std, default std).
Result<Perturbation> read_perturbation(std::string_view attack, RuleParams& params);

// Reduces one row of squared distances (to x, or from one honest row to
// all): the max for min-max, the sum for min-sum.
using DistanceReduction = double (*)(std::span<const double> sq_distances);

// f copies of x = mu - gamma p, gamma the largest value the authors' search
// accepts where gamma is accepted when
//   reduce_i ||x - x_i||^2 <= max_i reduce_j ||x_i - x_j||^2
// over the honest rows. Needs h >= 2 for p = std, h >= 1 otherwise.
Result<at::Tensor> perturbed_mean_rows(std::string_view attack, const at::Tensor& honest, int f,
                                       Perturbation perturbation, DistanceReduction reduce);

}  // namespace cohort
