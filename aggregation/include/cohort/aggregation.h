// Aggregation: robust rules and pre-aggregators, pure functions from a stack
// of worker updates to one aggregate update.
//
// Input: X [n, d] (one row per accepted update, float32 or float64, any
// device) and optional per-row weights (sample counts). Output: the [d]
// aggregate in X's dtype and device, plus diagnostics: the weight each input
// row ended up with in the aggregate (0 for rows a robust rule discarded)
// and rule-specific scores, which the coordinator records per worker.
//
// Rules do no I/O and keep no clock or hidden state: what they need beyond
// the rows (the previous aggregate for centered clipping, the server's root
// update for FLTrust, a seed for randomised steps) comes in an
// AggregationContext. Each rule and pre-aggregator checks its preconditions
// (shape, dtype, n against f, weights, parameters) and returns
// InvalidArgument / FailedPrecondition naming the violated one. Instances
// are immutable after construction and thread-safe.
//
// A new rule is one source file (aggregation/src/<rule>.cpp) defining a
// factory declared in aggregation/src/rules.h and registered in
// register_builtin_rules. Conventions (f, neighbour counts, even-n median,
// ...) follow docs/AGGREGATION.md.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
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

// What a rule may use besides the rows. Every field is optional.
struct AggregationContext {
  at::Tensor previous;     // last round's aggregate [d] (centered clipping's start)
  at::Tensor root_update;  // the server's update on trusted data [d] (FLTrust)
  uint64_t seed = 0;       // randomness for randomised steps (bucketing, DnC)
  bool diagnostics = true; // compute row_weights/scores (benchmarks turn it off)
};

struct AggregationResult {
  at::Tensor aggregate;             // [d]
  // One entry per input row, summing to 1 (coordinate-wise rules: the share
  // of coordinates at which the row's value was used). Empty when the
  // context asked for no diagnostics.
  std::vector<double> row_weights;
  std::vector<double> scores;       // rule-specific per-row scores (Krum), may be empty
  std::vector<int64_t> selected;    // rows a selection rule kept, ascending, may be empty
};

class AggregationRule {
 public:
  virtual ~AggregationRule() = default;
  virtual std::string_view name() const = 0;
  // `weights` is empty (all rows equal) or has one non-negative finite
  // entry per row with a positive sum. Rules that ignore weights say so in
  // docs/AGGREGATION.md.
  virtual Result<AggregationResult> aggregate(const at::Tensor& rows,
                                              std::span<const double> weights,
                                              const AggregationContext& context) const = 0;
};

// A stack of updates on its way through the pre-aggregators.
struct UpdateStack {
  at::Tensor rows;               // [n, d]
  std::vector<double> weights;   // empty or n entries
  // [n, n_original] float64 on CPU: rows == mixing x original rows. Every
  // pre-aggregator is linear in the rows it is given (clipping scales a row,
  // NNM and bucketing average rows), so mixing carries the diagnostics of
  // the final rule back to the workers. Undefined means the identity.
  at::Tensor mixing;
};

class PreAggregator {
 public:
  virtual ~PreAggregator() = default;
  virtual std::string_view name() const = 0;
  // Transforms the stack; may change the number of rows (bucketing). The
  // returned mixing is this step's matrix composed with the input's.
  virtual Result<UpdateStack> apply(UpdateStack stack, const AggregationContext& context) const = 0;
};

// Rule and pre-aggregator parameters as given by the user (config or
// command line), read with type and range checks. Every key must be read by
// some factory: check_all_used() reports the rest as unknown parameters.
class RuleParams {
 public:
  RuleParams(int f, std::map<std::string, std::string> values);

  int f() const { return f_; }
  Result<double> get_double(const std::string& key, double fallback);
  Result<int64_t> get_int(const std::string& key, int64_t fallback);
  Result<std::string> get_string(const std::string& key, const std::string& fallback);
  Status check_all_used(std::string_view what) const;

 private:
  int f_;
  std::map<std::string, std::string> values_;
  std::set<std::string> used_;
};

using RuleFactory = std::function<Result<std::unique_ptr<AggregationRule>>(RuleParams&)>;
using PreAggregatorFactory = std::function<Result<std::unique_ptr<PreAggregator>>(RuleParams&)>;

// Pre-aggregators applied in order, then a rule.
class AggregationPipeline {
 public:
  AggregationPipeline(std::vector<std::unique_ptr<PreAggregator>> pre,
                      std::unique_ptr<AggregationRule> rule);

  // "clip -> nnm -> trimmed-mean"
  std::string description() const;

  // Runs the pipeline. row_weights in the result refer to the input rows
  // (mapped back through the pre-aggregators' mixing). Errors: those of
  // check_update_stack, of any step, or NaN/Inf in the rows.
  Result<AggregationResult> run(const at::Tensor& rows, std::span<const double> weights,
                                const AggregationContext& context) const;

 private:
  std::vector<std::unique_ptr<PreAggregator>> pre_;
  std::unique_ptr<AggregationRule> rule_;
};

// Maps names to factories. Filled explicitly by main (no global registry);
// not thread-safe to mutate, safe to read concurrently.
class RuleRegistry {
 public:
  void add(std::string name, RuleFactory factory);
  void add_pre(std::string name, PreAggregatorFactory factory);

  // Errors: an unknown name (listing the known ones), f < 0, the factory's
  // error, or a parameter no step used.
  Result<std::unique_ptr<AggregationRule>> create(std::string_view name, RuleParams params) const;
  Result<AggregationPipeline> create_pipeline(const std::vector<std::string>& pre,
                                              std::string_view rule, RuleParams params) const;

  std::vector<std::string> names() const;
  std::vector<std::string> pre_names() const;

 private:
  Result<std::unique_ptr<AggregationRule>> make_rule(std::string_view name, RuleParams& params) const;

  std::map<std::string, RuleFactory, std::less<>> factories_;
  std::map<std::string, PreAggregatorFactory, std::less<>> pre_factories_;
};

// Adds every rule and pre-aggregator shipped with Cohort.
void register_builtin_rules(RuleRegistry& registry);

// Checks the common preconditions: rows is 2-D floating point with n >= 1
// and d >= 1,
// weights empty or n non-negative finite values with a positive sum.
Status check_update_stack(const at::Tensor& rows, std::span<const double> weights);

// Weights scaled to sum to 1, or uniform when empty.
std::vector<double> normalized_weights(std::span<const double> weights, int64_t n);

// FedAvg (McMahan et al. 2017): the weighted mean of the rows, with weights
// proportional to `weights` (sample counts), or the plain mean when empty.
// The rule is registered as "fedavg" and as "mean".
Result<AggregationResult> fedavg(const at::Tensor& rows, std::span<const double> weights);

}  // namespace cohort
