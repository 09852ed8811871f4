// Steps shared by the rules that keep a subset of the rows and average it
// (Krum, Multi-Krum, Bulyan, MDA, DnC, SignGuard), and the CPU selection
// kernel of the coordinate-wise rules (median, trimmed mean, meamed,
// Bulyan's second step). Private to the aggregation library.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
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

// Which of the m sorted values of each coordinate a coordinate-wise rule
// averages.
struct ColumnWindow {
  enum class Kind {
    kMedian,      // the middle value; for even m the two middle values
    kTrimmed,     // all but the `drop` smallest and the `drop` largest (m >= 2 drop + 1)
    kNearMedian,  // the m - drop values closest to the median (m >= drop + 1); of two
                  // values equally far from it, the smaller
  };
  Kind kind = Kind::kMedian;
  int64_t drop = 0;
};

// Per coordinate, the mean of the values in the window, and each row's share
// of the averaged values: (number of coordinates at which one of the row's
// values was averaged) / (window size x d), so the shares sum to 1.
struct ColumnMeans {
  at::Tensor values;               // [d], the rows' dtype and device
  std::vector<double> row_shares;  // one per row of the stack; empty unless asked for
};

// The rows a column kernel call takes at most (beyond, the sorting network
// and its scratch outgrow the caches; callers take their ATen path).
inline constexpr int64_t kMaxKernelRows = 4096;

// The instruction set of the CPU kernel: the best the CPU has (AVX2 where
// it has it, else SSE2 on x86-64, plain C++ elsewhere) or the baseline one
// (SSE2, plain C++), which the tests check as well.
enum class KernelIsa { kBest, kBaseline };

// The CPU selection kernel: the window means of rows[subset] (all rows when
// `subset` is empty) of a [n, d] stack, with row_shares (n entries, 0 for the
// rows outside the subset) when `row_shares` is set. Columns are processed in
// tiles of 256 bytes on ATen's intra-op threads; each tile goes through a
// sorting network (Batcher's odd-even merge sort, reduced to what the window
// needs) applied to all its columns at once with SIMD min and max.
// A window's values are summed in double and rounded once to the rows'
// dtype (in float64 the last bit of a trimmed mean or meamed may depend on
// the order of the rows). The median of two middle values a, b is
// (a + b) / 2, and distances to the median are computed in the rows' dtype,
// as in the ATen forms. Of rows holding equal values at the window's edge,
// the ones listed first get the credit.
// Returns nullopt, having done nothing or discarded its work, when the
// kernel does not take the stack: not on the CPU, not float32 or float64, a
// subset of more than kMaxKernelRows rows, or a NaN among the values (the
// callers' ATen forms sort NaN above every number). Throws c10::Error when
// the window does not fit m rows or a subset index is out of range.
// Thread-safe.
std::optional<ColumnMeans> cpu_column_means(const at::Tensor& rows,
                                            std::span<const int64_t> subset,
                                            ColumnWindow window, bool row_shares,
                                            KernelIsa isa = KernelIsa::kBest);

// Bulyan's coordinate step in ATen (topk along dim 0, any device and
// floating dtype), for the rows the kernel does not take: per coordinate the
// mean of the `beta` values of rows[selected] nearest their median (of two
// values equally far from it, either), with row_shares when asked for.
// Defined in bulyan.cpp.
ColumnMeans bulyan_step_by_topk(const at::Tensor& rows, const std::vector<int64_t>& selected,
                                int64_t beta, bool row_shares);

}  // namespace cohort
