// FedAvg ("fedavg", also "mean"): the sample-weighted mean of the updates.
#include <ATen/ATen.h>

#include <cmath>
#include <numeric>

#include "rules.h"

namespace cohort {

Status check_update_stack(const at::Tensor& rows, std::span<const double> weights) {
  if (!rows.defined() || rows.dim() != 2) {
    return Status::invalid_argument("updates must be a 2-D [n, d] tensor");
  }
  if (!at::isFloatingType(rows.scalar_type())) {
    return Status::invalid_argument("updates must be floating point");
  }
  const int64_t n = rows.size(0);
  if (n < 1) return Status::invalid_argument("no updates to aggregate (n = 0)");
  if (rows.size(1) < 1) return Status::invalid_argument("updates have no coordinates (d = 0)");
  if (weights.empty()) return Status();
  if (static_cast<int64_t>(weights.size()) != n) {
    return Status::invalid_argument("got " + std::to_string(weights.size()) + " weights for " +
                                    std::to_string(n) + " updates");
  }
  double sum = 0.0;
  for (double w : weights) {
    if (!std::isfinite(w) || w < 0.0) {
      return Status::invalid_argument("weights must be finite and >= 0");
    }
    sum += w;
  }
  if (sum <= 0.0) return Status::invalid_argument("weights sum to zero");
  if (!std::isfinite(sum)) return Status::invalid_argument("weights sum to infinity");
  return Status();
}

std::vector<double> normalized_weights(std::span<const double> weights, int64_t n) {
  if (weights.empty()) return std::vector<double>(n, 1.0 / static_cast<double>(n));
  double sum = std::accumulate(weights.begin(), weights.end(), 0.0);
  std::vector<double> out(weights.begin(), weights.end());
  for (double& w : out) w /= sum;
  return out;
}

namespace {

class FedAvg final : public AggregationRule {
 public:
  explicit FedAvg(std::string name) : name_(std::move(name)) {}
  std::string_view name() const override { return name_; }
  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& /*context*/) const override {
    return fedavg(rows, weights);
  }

 private:
  std::string name_;
};

}  // namespace

Result<AggregationResult> fedavg(const at::Tensor& rows, std::span<const double> weights) {
  COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
  AggregationResult out;
  out.row_weights = normalized_weights(weights, rows.size(0));
  at::Tensor w = at::tensor(out.row_weights, at::TensorOptions().dtype(at::kDouble))
                     .to(rows.device(), rows.scalar_type());
  out.aggregate = at::matmul(w, rows);  // [n] x [n, d] -> [d]
  return out;
}

void register_mean_rules(RuleRegistry& registry) {
  for (const char* name : {"fedavg", "mean"}) {
    registry.add(name, [name](RuleParams&) -> Result<std::unique_ptr<AggregationRule>> {
      return std::unique_ptr<AggregationRule>(std::make_unique<FedAvg>(name));
    });
  }
}

}  // namespace cohort
