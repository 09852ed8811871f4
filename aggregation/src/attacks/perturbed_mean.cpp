#include "perturbed_mean.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <vector>

#include "attack_common.h"
#include "distances.h"

namespace cohort {
namespace {

at::Tensor perturbation_direction(const at::Tensor& honest, const at::Tensor& mu, Perturbation perturbation) {
  switch (perturbation) {
    case Perturbation::kUnit: {
      at::Tensor norm = at::linalg_vector_norm(mu);
      return at::where(norm > 0, mu / norm, at::zeros_like(mu));
    }
    case Perturbation::kSign:
      return at::sign(mu);
    case Perturbation::kStd:
      return honest_std(honest);
  }
  return at::Tensor();  // unreachable: every enumerator is handled above
}

std::vector<double> to_doubles(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// ||mu - gamma p - x_i||^2 = a_i - 2 gamma b_i + gamma^2 c with a_i = ||mu - x_i||^2,
// b_i = p.(mu - x_i), c = ||p||^2: one pass over the rows, then each gamma the
// search tries costs O(h) on the CPU.
class DistancesToCandidate {
 public:
  DistancesToCandidate(const at::Tensor& honest, const at::Tensor& mu, const at::Tensor& p) {
    at::Tensor offsets = mu.unsqueeze(0) - honest;
    a_ = to_doubles(offsets.square().sum(1));
    b_ = to_doubles(at::matmul(offsets, p));
    c_ = p.square().sum().item<double>();
  }

  std::vector<double> at_gamma(double gamma) const {
    std::vector<double> out(a_.size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = std::max(0.0, a_[i] - 2.0 * gamma * b_[i] + gamma * gamma * c_);
    return out;
  }

 private:
  std::vector<double> a_, b_;
  double c_ = 0.0;
};

// max_i reduce_j D_ij over the honest pairwise squared distances D.
double largest_reduced_row(const at::Tensor& honest, DistanceReduction reduce) {
  at::Tensor dist = pairwise_sq_distances(honest).contiguous();
  const int64_t h = dist.size(0);
  const double* data = dist.data_ptr<double>();
  double largest = 0.0;
  for (int64_t i = 0; i < h; ++i) largest = std::max(largest, reduce({data + i * h, static_cast<size_t>(h)}));
  return largest;
}

// The authors' search (NDSS21-Model-Poisoning notebooks): gamma starts at 10
// with step 10; each try moves gamma up by step/2 if accepted, down by
// step/2 if not, and halves the step; it stops once the step is <= 1e-5
// (their test |gamma_succ - gamma| > 1e-5 is the same, as that gap always
// equals the step). Returns the last accepted gamma, 0 if none was.
template <class Accepts>
double authors_gamma_search(const Accepts& accepts) {
  double gamma = 10.0;
  double step = 10.0;
  double accepted = 0.0;
  while (step > 1e-5) {
    if (accepts(gamma)) {
      accepted = gamma;
      gamma += step / 2.0;
    } else {
      gamma -= step / 2.0;
    }
    step /= 2.0;
  }
  return accepted;
}

}  // namespace

Result<Perturbation> read_perturbation(std::string_view attack, RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(std::string name, params.get_string("perturbation", "std"));
  if (name == "unit") return Perturbation::kUnit;
  if (name == "sign") return Perturbation::kSign;
  if (name == "std") return Perturbation::kStd;
  return Status::invalid_argument(std::string(attack) + "'s perturbation must be unit, sign or std, got '" +
                                  name + "'");
}

Result<at::Tensor> perturbed_mean_rows(std::string_view attack, const at::Tensor& honest, int f,
                                       Perturbation perturbation, DistanceReduction reduce) {
  const int64_t min_honest = perturbation == Perturbation::kStd ? 2 : 1;
  COHORT_RETURN_IF_ERROR(check_attack_input(attack, honest, f, min_honest));
  at::Tensor mu = honest_mean(honest);
  at::Tensor p = perturbation_direction(honest, mu, perturbation);
  const double threshold = largest_reduced_row(honest, reduce);
  const DistancesToCandidate distances(honest, mu, p);
  const double gamma = authors_gamma_search([&](double g) { return reduce(distances.at_gamma(g)) <= threshold; });
  return identical_rows(mu - gamma * p, f);
}

}  // namespace cohort
