// "optimal-alie" and "optimal-ipm": ByzFL's Optimal_ALittleIsEnough and
// Optimal_InnerProductManipulation. Each round the attack strength tau is
// chosen by a line search that maximises ||F(honest + f x byz(tau)) - mu||,
// F the server's own pipeline (pre-aggregators and rule):
//   optimal-alie: byz(tau) = mu + sign * tau * sigma   (ByzFL: sign "+")
//   optimal-ipm:  byz(tau) = -tau * mu
// The search is ByzFL's: evaluate tau = start; expansion: try best + delta,
// doubling delta while the distance grows; at the first miss delta *= ratio
// and the contraction phase tries best + delta, delta *= ratio after every
// try, until `evals` evaluations are spent. Only tau >= start is explored.
#include <ATen/ATen.h>

#include <string>
#include <utility>

#include "attack_common.h"
#include "attack_factories.h"
#include "cohort/number_text.h"

namespace cohort {
namespace {

struct LineSearch {
  int64_t evals = 20;
  double start = 0.0;
  double delta = 10.0;
  double ratio = 0.8;
};

class OptimalAttack final : public Attack {
 public:
  // byz(tau) = base + tau * direction; ALIE's base is mu, IPM's is 0.
  enum class Family { kAlie, kIpm };

  OptimalAttack(Family family, double sign, LineSearch search, const AggregationPipeline& target)
      : family_(family), sign_(sign), search_(search), target_(target) {}

  std::string_view name() const override { return family_ == Family::kAlie ? "optimal-alie" : "optimal-ipm"; }

  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t seed) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, family_ == Family::kAlie ? 2 : 1));
    if (f == 0) return at::empty({0, honest.size(1)}, honest.options());
    const at::Tensor mu = honest_mean(honest);
    const at::Tensor base = family_ == Family::kAlie ? mu : at::zeros_like(mu);
    const at::Tensor direction = family_ == Family::kAlie ? sign_ * honest_std(honest) : -mu;
    auto rows_at = [&](double tau) { return identical_rows(base + tau * direction, f); };
    auto distance_at = [&](double tau) -> Result<double> {
      AggregationContext context;
      context.seed = seed;
      context.diagnostics = false;
      COHORT_ASSIGN_OR_RETURN(AggregationResult result,
                              target_.run(at::cat({honest, rows_at(tau)}), {}, context));
      return (result.aggregate - mu).norm().item<double>();
    };
    COHORT_ASSIGN_OR_RETURN(double best_tau, search(distance_at));
    return rows_at(best_tau);
  }

 private:
  template <class Distance>
  Result<double> search(const Distance& distance_at) const {
    double best_tau = search_.start;
    COHORT_ASSIGN_OR_RETURN(double best, distance_at(best_tau));
    double delta = search_.delta;
    int64_t remaining = search_.evals - 1;
    bool expanding = true;
    while (remaining > 0) {
      const double tau = best_tau + delta;
      COHORT_ASSIGN_OR_RETURN(double distance, distance_at(tau));
      --remaining;
      const bool better = distance > best;
      if (better) {
        best_tau = tau;
        best = distance;
      }
      if (expanding && better) {
        delta *= 2.0;
      } else {
        expanding = false;
        delta *= search_.ratio;
      }
    }
    return best_tau;
  }

  Family family_;
  double sign_;
  LineSearch search_;
  const AggregationPipeline& target_;
};

Result<LineSearch> read_line_search(std::string_view attack, RuleParams& params) {
  LineSearch search;
  COHORT_ASSIGN_OR_RETURN(search.evals, params.get_int("evals", search.evals));
  COHORT_ASSIGN_OR_RETURN(search.start, params.get_double("start", search.start));
  COHORT_ASSIGN_OR_RETURN(search.delta, params.get_double("delta", search.delta));
  COHORT_ASSIGN_OR_RETURN(search.ratio, params.get_double("ratio", search.ratio));
  const std::string prefix = std::string(attack) + " needs ";
  if (search.evals < 1) return Status::invalid_argument(prefix + "evals >= 1, got " + std::to_string(search.evals));
  if (search.delta == 0.0) return Status::invalid_argument(prefix + "delta != 0");
  if (!(search.ratio > 0.5 && search.ratio < 1.0)) {
    return Status::invalid_argument(prefix + "ratio in (0.5, 1), got " + number_text(search.ratio));
  }
  return search;
}

}  // namespace

Result<std::unique_ptr<Attack>> make_optimal_attack(std::string_view name, RuleParams& params,
                                                    const AggregationPipeline& target) {
  const bool alie = name == "optimal-alie";
  COHORT_ASSIGN_OR_RETURN(LineSearch search, read_line_search(name, params));
  double sign = 1.0;
  if (alie) {
    COHORT_ASSIGN_OR_RETURN(sign, read_alie_sign(params));
  }
  const auto family = alie ? OptimalAttack::Family::kAlie : OptimalAttack::Family::kIpm;
  return std::unique_ptr<Attack>(std::make_unique<OptimalAttack>(family, sign, search, target));
}

}  // namespace cohort
