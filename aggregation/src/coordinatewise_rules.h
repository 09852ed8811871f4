// Factories of the coordinate-wise and iterative rules (median,
// trimmed-mean, meamed, geometric-median, centered-clipping, fltrust), one
// per source file, registered by register_coordinatewise_rules, and the
// steps they share. Private to the aggregation library. Factories validate
// their parameters and fail with InvalidArgument.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "cohort/aggregation.h"
#include "selection.h"

namespace cohort {

// Each defined in the source file named after the rule (median.cpp, ...).
Result<std::unique_ptr<AggregationRule>> make_median(RuleParams& params);
Result<std::unique_ptr<AggregationRule>> make_trimmed_mean(RuleParams& params);
Result<std::unique_ptr<AggregationRule>> make_meamed(RuleParams& params);
Result<std::unique_ptr<AggregationRule>> make_geometric_median(RuleParams& params);
Result<std::unique_ptr<AggregationRule>> make_centered_clipping(RuleParams& params);
Result<std::unique_ptr<AggregationRule>> make_fltrust(RuleParams& params);

// The coordinate-wise median of rows [n, d]: the middle value, or for even
// n the mean of the two middle values, with row_shares when asked for (each
// of two middle values gets half credit). The CPU kernel (selection.h)
// where it takes the rows, median_by_sorting otherwise. Defined in
// median.cpp.
ColumnMeans coordinatewise_median(const at::Tensor& rows, bool row_shares);

// The ATen forms of the coordinate-wise rules (median / sort along dim 0, on
// any device and floating dtype), for the rows the CPU kernel does not take:
// CUDA tensors, float16 and bfloat16, NaN. The tests check the kernel
// against them. Each defined in the source file of its rule.
ColumnMeans median_by_sorting(const at::Tensor& rows, bool row_shares);
ColumnMeans trimmed_mean_by_sorting(const at::Tensor& rows, int64_t f, bool row_shares);
ColumnMeans meamed_by_sorting(const at::Tensor& rows, int64_t f, bool row_shares);

// The rows of a stack sorted along dim 0 that hold the median of each
// column: the middle one for odd n, the two middle ones for even n.
at::Tensor middle_of_sorted(const at::Tensor& sorted);

// row_weights of a rule that averages, per coordinate, the values of the k
// rows listed in used_rows [k, d] (int64): row i gets (number of entries
// equal to i) / (k d), so the n weights sum to 1.
std::vector<double> coordinate_shares(const at::Tensor& used_rows, int64_t n);

// A vector the rule takes from the context (context.<field>) as a [d]
// tensor in the rows' dtype and on their device. FailedPrecondition naming
// the rule and the field when it is undefined or does not have d elements.
Result<at::Tensor> context_vector(const at::Tensor& vector, const at::Tensor& rows,
                                  std::string_view rule, std::string_view field);

// Where an iterative rule (geometric-median, centered-clipping) starts.
enum class StartPoint {
  kZero,      // the zero vector
  kMean,      // the mean of the rows, weighted by the weights the rule is given
  kMedian,    // the coordinate-wise median
  kPrevious,  // context.previous, or zero when it is undefined
};

// Reads parameter "start" ("zero", "mean", "median", and "previous" when
// allow_previous), `fallback` when absent. InvalidArgument listing the
// choices otherwise.
Result<StartPoint> read_start_point(RuleParams& params, std::string_view rule, StartPoint fallback,
                                    bool allow_previous);

// The [d] starting vector in the rows' dtype and device; errors those of
// context_vector for kPrevious with a defined context.previous.
Result<at::Tensor> start_point(StartPoint start, const at::Tensor& rows,
                               std::span<const double> weights, const AggregationContext& context,
                               std::string_view rule);

}  // namespace cohort
