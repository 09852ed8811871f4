// attack_names() and make_attack(): the attacks by name.
#include <algorithm>
#include <array>
#include <string>

#include "attack_factories.h"

namespace cohort {
namespace {

struct NamedAttack {
  std::string_view name;
  AttackFactory make;
};

// Sorted by name.
constexpr std::array<NamedAttack, 10> kAttacks = {{
    {"alie", make_alie_attack},
    {"gaussian", make_gaussian_attack},
    {"inf", make_inf_attack},
    {"ipm", make_ipm_attack},
    {"large-norm", make_large_norm_attack},
    {"mimic", make_mimic_attack},
    {"min-max", make_min_max_attack},
    {"min-sum", make_min_sum_attack},
    {"sign-flip", make_sign_flip_attack},
    {"zero", make_zero_attack},
}};

}  // namespace

std::vector<std::string> attack_names() {
  std::vector<std::string> names;
  for (const NamedAttack& attack : kAttacks) names.emplace_back(attack.name);
  return names;
}

std::vector<std::string> optimal_attack_names() { return {"optimal-alie", "optimal-ipm"}; }

Result<std::unique_ptr<Attack>> make_attack(std::string_view name, RuleParams params,
                                            const AggregationPipeline* target) {
  const std::vector<std::string> optimal = optimal_attack_names();
  if (std::find(optimal.begin(), optimal.end(), name) != optimal.end()) {
    if (target == nullptr) {
      return Status::failed_precondition("attack '" + std::string(name) +
                                         "' is tuned against the server's aggregation pipeline, and none was given");
    }
    COHORT_ASSIGN_OR_RETURN(auto attack, make_optimal_attack(name, params, *target));
    COHORT_RETURN_IF_ERROR(params.check_all_used("attack '" + std::string(name) + "'"));
    return attack;
  }
  auto it = std::find_if(kAttacks.begin(), kAttacks.end(),
                         [&](const NamedAttack& attack) { return attack.name == name; });
  if (it == kAttacks.end()) {
    std::string known;
    for (const std::string& n : attack_names()) known += (known.empty() ? "" : ", ") + n;
    return Status::invalid_argument("unknown attack '" + std::string(name) + "' (known: " + known +
                                    ") or, tuned against the pipeline, optimal-alie, optimal-ipm");
  }
  COHORT_ASSIGN_OR_RETURN(auto attack, it->make(params));
  COHORT_RETURN_IF_ERROR(params.check_all_used("attack '" + std::string(name) + "'"));
  return attack;
}

}  // namespace cohort
