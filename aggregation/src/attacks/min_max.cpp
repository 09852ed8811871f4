// "min-max" (Shejwalkar & Houmansadr NDSS 2021, their AGR-agnostic attack):
// every Byzantine row is x = mu - gamma p with the largest gamma (authors'
// search from 10, to 1e-5) such that max_i ||x - x_i||^2 <= max_{i,j}
// ||x_i - x_j||^2 over the honest rows. Parameter perturbation = unit | sign |
// std (default std, as Blades); see perturbed_mean.h.
#include <algorithm>

#include "attack_factories.h"
#include "perturbed_mean.h"

namespace cohort {
namespace {

double largest(std::span<const double> values) { return *std::max_element(values.begin(), values.end()); }

class MinMax final : public Attack {
 public:
  explicit MinMax(Perturbation perturbation) : perturbation_(perturbation) {}
  std::string_view name() const override { return "min-max"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    return perturbed_mean_rows(name(), honest, f, perturbation_, largest);
  }

 private:
  Perturbation perturbation_;
};

}  // namespace

Result<std::unique_ptr<Attack>> make_min_max_attack(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(Perturbation perturbation, read_perturbation("min-max", params));
  return std::unique_ptr<Attack>(std::make_unique<MinMax>(perturbation));
}

}  // namespace cohort
