// Pre-aggregators ("clip", "nnm", "bucketing", "arc"): their factories and
// the steps they share. Private to the aggregation library. Every
// pre-aggregator is linear in its input rows; each step reports its
// [n_out, n_in] matrix through UpdateStack::mixing (see aggregation.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string_view>
#include <vector>

#include "cohort/aggregation.h"

namespace cohort {

Result<std::unique_ptr<PreAggregator>> make_clip(RuleParams& params);       // clip.cpp
Result<std::unique_ptr<PreAggregator>> make_nnm(RuleParams& params);        // nnm.cpp
Result<std::unique_ptr<PreAggregator>> make_bucketing(RuleParams& params);  // bucketing.cpp
Result<std::unique_ptr<PreAggregator>> make_arc(RuleParams& params);        // arc.cpp

// check_update_stack, plus a mixing matrix that is undefined or has one row
// per update; errors name the step.
Status check_pre_stack(std::string_view step, const UpdateStack& stack);

// For steps that take f: f >= 0 (in the factory) and f < n (in apply).
Status check_f_nonnegative(std::string_view step, int f);
Status check_f_below_n(std::string_view step, int f, int64_t n);

// rows <- step x rows, mixing <- step x mixing, weights <- `weights`, for an
// [n_out, n] float64 CPU matrix `step`.
UpdateStack mix_rows(UpdateStack stack, const at::Tensor& step, std::vector<double> weights);

// L2 norm of each row, [n] in the rows' dtype and device.
at::Tensor row_norms(const at::Tensor& rows);

// x <- x * min(1, bound / ||x||) for every row (a row of norm 0 is kept);
// `norms` are the rows' norms and `bound` a 0-d tensor, both in the rows'
// dtype and device. Weights are kept.
UpdateStack clip_rows_to_norm(UpdateStack stack, const at::Tensor& norms, const at::Tensor& bound);

}  // namespace cohort
