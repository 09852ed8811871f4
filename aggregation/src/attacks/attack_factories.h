// One factory per attack, each defined in attacks/<name>.cpp and listed by
// attack_registry.cpp. Private to the aggregation library. A factory reads
// and range-checks its parameters; make_attack then rejects unused ones.
#pragma once

#include <memory>
#include <string_view>

#include "cohort/attacks.h"

namespace cohort {

using AttackFactory = Result<std::unique_ptr<Attack>> (*)(RuleParams& params);

Result<std::unique_ptr<Attack>> make_alie_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_gaussian_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_inf_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_ipm_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_large_norm_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_mimic_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_min_max_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_min_sum_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_sign_flip_attack(RuleParams& params);
Result<std::unique_ptr<Attack>> make_zero_attack(RuleParams& params);

// "optimal-alie" or "optimal-ipm" (attacks/optimal.cpp), tuned against `target`.
Result<std::unique_ptr<Attack>> make_optimal_attack(std::string_view name, RuleParams& params,
                                                    const AggregationPipeline& target);

// ALIE's parameter `sign`: "+" (default) gives +1, "-" gives -1.
Result<double> read_alie_sign(RuleParams& params);

}  // namespace cohort
