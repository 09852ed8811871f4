// Factories of the built-in rules, one per source file; private to the
// aggregation library.
#pragma once

#include "cohort/aggregation.h"

namespace cohort {

Result<std::unique_ptr<AggregationRule>> make_fedavg(RuleParams& params);

}  // namespace cohort
