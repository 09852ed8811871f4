// "gaussian" (ByzFL Gaussian; Blades NoiseAdversary with mean 0.1, sigma
// 0.1): every coordinate of every Byzantine row is drawn independently from
// N(mean, sigma^2), generated on the CPU from the seed (so a seed gives the
// same rows on any device) in the honest rows' dtype. Parameters mean
// (default 0) and sigma (default 1, must be > 0).
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include "attack_common.h"
#include "attack_factories.h"
#include "cohort/number_text.h"

namespace cohort {
namespace {

class Gaussian final : public Attack {
 public:
  Gaussian(double mean, double sigma) : mean_(mean), sigma_(sigma) {}
  std::string_view name() const override { return "gaussian"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t seed) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 1));
    at::Generator generator = at::detail::createCPUGenerator(seed);
    at::Tensor noise = at::normal(mean_, sigma_, {f, honest.size(1)}, generator,
                                  honest.options().device(at::kCPU));
    return noise.to(honest.device());
  }

 private:
  double mean_;
  double sigma_;
};

}  // namespace

Result<std::unique_ptr<Attack>> make_gaussian_attack(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(double mean, params.get_double("mean", 0.0));
  COHORT_ASSIGN_OR_RETURN(double sigma, params.get_double("sigma", 1.0));
  if (!(sigma > 0.0)) return Status::invalid_argument("gaussian needs sigma > 0, got sigma=" + number_text(sigma));
  return std::unique_ptr<Attack>(std::make_unique<Gaussian>(mean, sigma));
}

}  // namespace cohort
