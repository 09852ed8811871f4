// Registration of the built-in rules, one function per family; private to
// the aggregation library. Each rule lives in its own source file; a
// family's registration function lives in <family>.cpp.
#pragma once

#include "cohort/aggregation.h"

namespace cohort {

void register_mean_rules(RuleRegistry& registry);            // fedavg.cpp: fedavg, mean
void register_coordinatewise_rules(RuleRegistry& registry);  // median, trimmed-mean, meamed,
                                                             // geometric-median,
                                                             // centered-clipping, fltrust
void register_distance_rules(RuleRegistry& registry);        // krum, multi-krum, bulyan, mda,
                                                             // dnc, signguard
void register_pre_aggregators(RuleRegistry& registry);       // clip, nnm, bucketing, arc

}  // namespace cohort
