// Steps shared by the rules that keep a subset of the rows and average it
// (Krum, Multi-Krum, Bulyan, MDA, DnC, SignGuard). Private to the
// aggregation library.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "cohort/aggregation.h"

namespace cohort {

// check_update_stack, then the rule's lower bound on n:
// "<rule> needs n >= <condition>, got n=<n>, f=<f>" (FailedPrecondition:
// the input is well formed but the round has too few updates for f).
Status check_rows_for_rule(const at::Tensor& rows, std::span<const double> weights,
                           std::string_view rule, int64_t min_n, std::string_view condition,
                           int64_t f);

// The entries of a 1-D tensor (any dtype, any device) as doubles.
std::vector<double> to_doubles(const at::Tensor& values);

// The indices of the `count` smallest entries of a 1-D tensor (any dtype,
// any device), ascending by value; equal values keep the lower index first.
std::vector<int64_t> lowest_entries(const at::Tensor& values, int64_t count);

// sum_i coefficients[i] * rows[i] as a [d] tensor in the rows' dtype and on
// their device: one matrix-vector product.
at::Tensor combine_rows(const at::Tensor& rows, const std::vector<double>& coefficients);

// The mean of the selected rows, weighted by `weights` (uniform when empty),
// each first multiplied by its entry of `scales` (none when empty), with
// row_weights (the normalised weights, 0 off the selection) and `selected`
// (sorted) filled in when the context asks for diagnostics. An empty
// selection gives a zero aggregate and all-zero row_weights.
// Errors: FailedPrecondition when the selected rows' weights sum to 0.
Result<AggregationResult> mean_of_selected(const at::Tensor& rows,
                                           std::vector<int64_t> selected,
                                           std::span<const double> weights,
                                           const AggregationContext& context,
                                           std::string_view rule,
                                           std::span<const double> scales = {});

}  // namespace cohort
