// Factories of the distance- and selection-based rules, one per source
// file, registered by register_distance_rules. Private to the aggregation
// library. Each validates its parameters and fails with InvalidArgument.
#pragma once

#include <memory>

#include "cohort/aggregation.h"

namespace cohort {

Result<std::unique_ptr<AggregationRule>> make_krum(RuleParams& params);        // krum.cpp
Result<std::unique_ptr<AggregationRule>> make_multi_krum(RuleParams& params);  // multi_krum.cpp
Result<std::unique_ptr<AggregationRule>> make_bulyan(RuleParams& params);      // bulyan.cpp
Result<std::unique_ptr<AggregationRule>> make_mda(RuleParams& params);         // mda.cpp
Result<std::unique_ptr<AggregationRule>> make_dnc(RuleParams& params);         // dnc.cpp
Result<std::unique_ptr<AggregationRule>> make_signguard(RuleParams& params);   // signguard.cpp

}  // namespace cohort
