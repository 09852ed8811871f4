#include "selection.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

namespace cohort {

Status check_rows_for_rule(const at::Tensor& rows, std::span<const double> weights,
                           std::string_view rule, int64_t min_n, std::string_view condition,
                           int64_t f) {
  COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
  const int64_t n = rows.size(0);
  if (n >= min_n) return Status();
  return Status::failed_precondition(std::string(rule) + " needs n >= " + std::string(condition) +
                                     ", got n=" + std::to_string(n) +
                                     ", f=" + std::to_string(f));
}

std::vector<double> to_doubles(const at::Tensor& values) {
  at::Tensor v = values.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(v.data_ptr<double>(), v.data_ptr<double>() + v.numel());
}

std::vector<int64_t> lowest_entries(const at::Tensor& values, int64_t count) {
  at::Tensor order = std::get<1>(at::sort(values.to(at::kCPU, at::kDouble), /*stable=*/true,
                                          /*dim=*/0, /*descending=*/false));
  const int64_t* first = order.data_ptr<int64_t>();
  return std::vector<int64_t>(first, first + count);
}

at::Tensor combine_rows(const at::Tensor& rows, const std::vector<double>& coefficients) {
  at::Tensor c = at::tensor(coefficients, at::TensorOptions().dtype(at::kDouble))
                     .to(rows.device(), rows.scalar_type());
  return at::matmul(c, rows);  // [n] x [n, d] -> [d]
}

Result<AggregationResult> mean_of_selected(const at::Tensor& rows,
                                           std::vector<int64_t> selected,
                                           std::span<const double> weights,
                                           const AggregationContext& context,
                                           std::string_view rule,
                                           std::span<const double> scales) {
  std::sort(selected.begin(), selected.end());
  std::vector<double> coefficients(rows.size(0), 0.0);
  double total = 0.0;
  for (int64_t i : selected) {
    coefficients[i] = weights.empty() ? 1.0 : weights[i];
    total += coefficients[i];
  }
  if (!selected.empty() && total <= 0.0) {
    return Status::failed_precondition(std::string(rule) + ": the " +
                                       std::to_string(selected.size()) +
                                       " selected rows all have weight 0");
  }
  if (total > 0.0) {
    for (double& c : coefficients) c /= total;
  }
  AggregationResult out;
  if (scales.empty()) {
    out.aggregate = combine_rows(rows, coefficients);
  } else {
    std::vector<double> scaled = coefficients;
    for (size_t i = 0; i < scaled.size(); ++i) scaled[i] *= scales[i];
    out.aggregate = combine_rows(rows, scaled);
  }
  if (context.diagnostics) {
    out.row_weights = std::move(coefficients);
    out.selected = std::move(selected);
  }
  return out;
}

}  // namespace cohort
