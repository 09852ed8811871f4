// "min-sum" (Shejwalkar & Houmansadr NDSS 2021, paper form): every Byzantine
// row is x = mu - gamma p with the largest gamma (authors' search from 10, to
// 1e-5) such that sum_i ||x - x_i||^2 <= max_i sum_j ||x_i - x_j||^2 over the
// honest rows (the authors' notebook compares with the min over i instead).
// Parameter perturbation = unit | sign | std (default std); see perturbed_mean.h.
#include <numeric>

#include "attack_factories.h"
#include "perturbed_mean.h"

namespace cohort {
namespace {

double total(std::span<const double> values) { return std::accumulate(values.begin(), values.end(), 0.0); }

class MinSum final : public Attack {
 public:
  explicit MinSum(Perturbation perturbation) : perturbation_(perturbation) {}
  std::string_view name() const override { return "min-sum"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    return perturbed_mean_rows(name(), honest, f, perturbation_, total);
  }

 private:
  Perturbation perturbation_;
};

}  // namespace

Result<std::unique_ptr<Attack>> make_min_sum_attack(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(Perturbation perturbation, read_perturbation("min-sum", params));
  return std::unique_ptr<Attack>(std::make_unique<MinSum>(perturbation));
}

}  // namespace cohort
