// Byzantine behaviours, for tests and experiments: pure functions from the
// round's honest updates to the rows the f Byzantine workers send.
//
// Omniscient attacks see every honest update of the round (the usual threat
// model in the robustness literature). All f Byzantine rows are identical
// unless an attack says otherwise. Conventions (ALIE's z, IPM's epsilon,
// min-max's perturbation, ...) follow docs/AGGREGATION.md; parameters are
// read from RuleParams like a rule's. Data attacks (label flipping) happen
// during a worker's training and are not here.
//
// Attacks are immutable after construction and thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/aggregation.h"
#include "cohort/status.h"

namespace cohort {

class Attack {
 public:
  virtual ~Attack() = default;
  virtual std::string_view name() const = 0;
  // honest: [h, d] with h >= 1 (h >= 2 where a standard deviation is used).
  // Returns [f, d] in honest's dtype and device; f >= 0.
  virtual Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t seed) const = 0;
};

// "sign-flip", "gaussian", "alie", "ipm", "min-max", "min-sum", "mimic",
// "zero", "large-norm", "inf".
std::vector<std::string> attack_names();

// "optimal-alie", "optimal-ipm": ByzFL's tuned attacks, which choose their
// strength each round by a line search against the server's pipeline.
std::vector<std::string> optimal_attack_names();

// Errors: an unknown name (listing the known ones), a bad parameter, or a
// parameter the attack does not have; an optimal attack without `target`
// (FailedPrecondition). `target` is the pipeline the server aggregates
// with; it must outlive the attack, which runs it (equal weights, an empty
// context but for the seed) on each candidate stack.
Result<std::unique_ptr<Attack>> make_attack(std::string_view name, RuleParams params,
                                            const AggregationPipeline* target = nullptr);

}  // namespace cohort
