// Pre-aggregators in order, then a rule; diagnostics mapped back to the
// input rows through the composed mixing matrix.
#include <ATen/ATen.h>

#include "cohort/aggregation.h"
#include "cohort/finite.h"

namespace cohort {
namespace {

// Input-row weights = output-row weights x mixing, renormalised to sum to 1
// (a clipped row contributes in proportion to what is left of it).
std::vector<double> map_back(const std::vector<double>& row_weights, const at::Tensor& mixing) {
  at::Tensor w = at::tensor(row_weights, at::kDouble).unsqueeze(0);
  at::Tensor mapped = at::matmul(w, mixing).squeeze(0).abs_();
  double total = mapped.sum().item<double>();
  if (total > 0.0) mapped.div_(total);
  return std::vector<double>(mapped.data_ptr<double>(), mapped.data_ptr<double>() + mapped.numel());
}

}  // namespace

AggregationPipeline::AggregationPipeline(std::vector<std::unique_ptr<PreAggregator>> pre,
                                         std::unique_ptr<AggregationRule> rule)
    : pre_(std::move(pre)), rule_(std::move(rule)) {}

std::string AggregationPipeline::description() const {
  std::string out;
  for (const auto& step : pre_) out += std::string(step->name()) + " -> ";
  return out + std::string(rule_->name());
}

Result<AggregationResult> AggregationPipeline::run(const at::Tensor& rows,
                                                   std::span<const double> weights,
                                                   const AggregationContext& context) const {
  COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
  if (!all_finite(rows)) {
    return Status::invalid_argument("the updates contain NaN or Inf values");
  }
  UpdateStack stack{rows, std::vector<double>(weights.begin(), weights.end()), at::Tensor()};
  for (const auto& step : pre_) {
    COHORT_ASSIGN_OR_RETURN(stack, step->apply(std::move(stack), context));
  }
  COHORT_ASSIGN_OR_RETURN(AggregationResult result,
                          rule_->aggregate(stack.rows, stack.weights, context));
  if (stack.mixing.defined() && !result.row_weights.empty()) {
    result.row_weights = map_back(result.row_weights, stack.mixing);
  }
  return result;
}

}  // namespace cohort
