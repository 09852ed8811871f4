// Registers the distance- and selection-based rules.
#include "distance_rules.h"

#include "rules.h"

namespace cohort {

void register_distance_rules(RuleRegistry& registry) {
  registry.add("krum", make_krum);
  registry.add("multi-krum", make_multi_krum);
  registry.add("bulyan", make_bulyan);
  registry.add("mda", make_mda);
  registry.add("dnc", make_dnc);
  registry.add("signguard", make_signguard);
}

}  // namespace cohort
