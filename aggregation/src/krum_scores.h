// Krum scoring and selection, shared by Krum, Multi-Krum and Bulyan.
// Private to the aggregation library.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "cohort/aggregation.h"

namespace cohort {

// The neighbour count of the Krum paper, n - f - 2, kept within [1, n - 1]
// as Flower's aggregate_krum does (Bulyan's last rounds have n - f - 2 < 1).
// 0 when n = 1.
int64_t krum_neighbours(int64_t n, int64_t f);

// score(i) = the sum of the `neighbours` smallest entries of row i of
// `sq_dist` [m, m] (float64 CPU) leaving out the diagonal, as an [m] float64
// CPU tensor. Requires 0 <= neighbours <= m - 1.
at::Tensor krum_scores(const at::Tensor& sq_dist, int64_t neighbours);

// Multi-Krum: checks n >= 2f+3 and m <= n (m unset: n - f), scores every
// row against its n-f-2 nearest others, and averages the m lowest-scoring
// rows (score ties: the lower index) weighted by `weights` (empty:
// uniformly). Diagnostics: scores, row_weights, selected. `rule` names the
// caller in error messages.
Result<AggregationResult> multi_krum(const at::Tensor& rows, std::span<const double> weights,
                                     int64_t f, std::optional<int64_t> m,
                                     const AggregationContext& context, std::string_view rule);

}  // namespace cohort
