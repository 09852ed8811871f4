// Aggregation rules: pure functions from a stack of worker updates to one
// aggregate update.
//
// Input: X [n, d] (one row per accepted update, float32 or float64, any
// device) and optional per-row weights (sample counts). Output: the [d]
// aggregate in X's dtype and device, plus diagnostics: the weight each row
// ended up with in the aggregate (0 for rows a robust rule discarded), so
// the coordinator can record it against each worker.
//
// Rules do no I/O and keep no clock; any randomness comes from a seed in
// their parameters. Each rule checks its preconditions (shape, dtype, n
// against f, weights) and returns InvalidArgument / FailedPrecondition
// naming the violated one. Rules are immutable after construction and
// thread-safe.
//
// A new rule is one source file (aggregation/src/<rule>.cpp) that defines a
// factory and is added to the registry in register_builtin_rules.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.h"

namespace cohort {

struct AggregationResult {
  at::Tensor aggregate;            // [d]
  std::vector<double> row_weights; // n entries, summing to 1 (or 0 if unused)
};

class AggregationRule {
 public:
  virtual ~AggregationRule() = default;
  virtual std::string_view name() const = 0;
  // `weights` is empty (all rows equal) or has one non-negative finite
  // entry per row with a positive sum.
  virtual Result<AggregationResult> aggregate(const at::Tensor& rows,
                                              std::span<const double> weights) const = 0;
};

// Rule parameters as given by the user (config or command line), read with
// type and range checks. Every key must be read by the factory: unread keys
// are reported by check_all_used() as unknown parameters.
class RuleParams {
 public:
  RuleParams(int f, std::map<std::string, std::string> values);

  int f() const { return f_; }
  Result<double> get_double(const std::string& key, double fallback);
  Result<int64_t> get_int(const std::string& key, int64_t fallback);
  Status check_all_used(std::string_view rule) const;

 private:
  int f_;
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
};

using RuleFactory = std::function<Result<std::unique_ptr<AggregationRule>>(RuleParams&)>;

// Maps rule names to factories. Filled explicitly by main (no global
// registry); not thread-safe to mutate, safe to read concurrently.
class RuleRegistry {
 public:
  void add(std::string name, RuleFactory factory);
  // Errors: unknown rule (listing the known ones), or the factory's error.
  Result<std::unique_ptr<AggregationRule>> create(std::string_view name, RuleParams params) const;
  std::vector<std::string> names() const;

 private:
  std::map<std::string, RuleFactory, std::less<>> factories_;
};

// Adds every rule shipped with Cohort ("fedavg", ...).
void register_builtin_rules(RuleRegistry& registry);

// Checks the common preconditions: rows is 2-D floating point with n >= 1,
// weights empty or n non-negative finite values with a positive sum.
Status check_update_stack(const at::Tensor& rows, std::span<const double> weights);

// FedAvg (McMahan et al. 2017): the weighted mean of the rows, with weights
// proportional to `weights` (sample counts), or the plain mean when empty.
Result<AggregationResult> fedavg(const at::Tensor& rows, std::span<const double> weights);

}  // namespace cohort
