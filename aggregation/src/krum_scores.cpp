#include "krum_scores.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <string>

#include "distances.h"
#include "selection.h"

namespace cohort {

int64_t krum_neighbours(int64_t n, int64_t f) {
  return std::min(std::max<int64_t>(1, n - f - 2), n - 1);
}

at::Tensor krum_scores(const at::Tensor& sq_dist, int64_t neighbours) {
  // pairwise_sq_distances is exactly symmetric, so the two rows of a mutual
  // nearest pair tie exactly.
  at::Tensor others = sq_dist.clone();
  others.fill_diagonal_(std::numeric_limits<double>::infinity());
  // Sorted ascending, so rows holding the same distances sum them in the
  // same order and tie exactly.
  at::Tensor nearest = std::get<0>(at::topk(others, neighbours, /*dim=*/1, /*largest=*/false,
                                            /*sorted=*/true));
  return nearest.sum(1);
}

Result<AggregationResult> multi_krum(const at::Tensor& rows, std::span<const double> weights,
                                     int64_t f, std::optional<int64_t> m,
                                     const AggregationContext& context, std::string_view rule) {
  COHORT_RETURN_IF_ERROR(check_rows_for_rule(rows, weights, rule, 2 * f + 3, "2f+3", f));
  const int64_t n = rows.size(0);
  const int64_t keep = m.value_or(n - f);
  if (keep > n) {
    return Status::invalid_argument(std::string(rule) + " needs m <= n, got m=" +
                                    std::to_string(keep) + ", n=" + std::to_string(n));
  }
  at::Tensor scores = krum_scores(pairwise_sq_distances(rows), n - f - 2);
  COHORT_ASSIGN_OR_RETURN(
      AggregationResult out,
      mean_of_selected(rows, lowest_entries(scores, keep), weights, context, rule));
  if (context.diagnostics) out.scores = to_doubles(scores);
  return out;
}

}  // namespace cohort
