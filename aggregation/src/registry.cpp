#include <charconv>
#include <cmath>

#include "rules.h"

namespace cohort {

RuleParams::RuleParams(int f, std::map<std::string, std::string> values)
    : f_(f), values_(std::move(values)) {}

namespace {

// Parses the whole of `text` as a T; false if anything is left over.
template <class T>
bool parse_number(const std::string& text, T& value) {
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

Result<double> RuleParams::get_double(const std::string& key, double fallback) {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  used_.insert(key);
  double value = 0.0;
  if (!parse_number(it->second, value) || !std::isfinite(value)) {
    return Status::invalid_argument("parameter '" + key + "': expected a finite number, got '" +
                                    it->second + "'");
  }
  return value;
}

Result<int64_t> RuleParams::get_int(const std::string& key, int64_t fallback) {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  used_.insert(key);
  int64_t value = 0;
  if (!parse_number(it->second, value)) {
    return Status::invalid_argument("parameter '" + key + "': expected an integer, got '" +
                                    it->second + "'");
  }
  return value;
}

Result<std::string> RuleParams::get_string(const std::string& key, const std::string& fallback) {
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  used_.insert(key);
  return it->second;
}

Status RuleParams::check_all_used(std::string_view what) const {
  for (const auto& [key, _] : values_) {
    if (!used_.contains(key)) {
      return Status::invalid_argument(std::string(what) + " has no parameter '" + key + "'");
    }
  }
  return Status();
}

namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

template <class Map>
std::vector<std::string> keys_of(const Map& map) {
  std::vector<std::string> out;
  for (const auto& [name, _] : map) out.push_back(name);
  return out;
}

}  // namespace

void RuleRegistry::add(std::string name, RuleFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

void RuleRegistry::add_pre(std::string name, PreAggregatorFactory factory) {
  pre_factories_[std::move(name)] = std::move(factory);
}

Result<std::unique_ptr<AggregationRule>> RuleRegistry::make_rule(std::string_view name,
                                                                 RuleParams& params) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return Status::invalid_argument("unknown aggregation rule '" + std::string(name) +
                                    "' (known: " + joined(names()) + ")");
  }
  if (params.f() < 0) return Status::invalid_argument("f must be >= 0, got " + std::to_string(params.f()));
  return it->second(params);
}

Result<std::unique_ptr<AggregationRule>> RuleRegistry::create(std::string_view name,
                                                              RuleParams params) const {
  COHORT_ASSIGN_OR_RETURN(auto rule, make_rule(name, params));
  COHORT_RETURN_IF_ERROR(params.check_all_used("rule '" + std::string(name) + "'"));
  return rule;
}

Result<AggregationPipeline> RuleRegistry::create_pipeline(const std::vector<std::string>& pre,
                                                          std::string_view rule,
                                                          RuleParams params) const {
  std::vector<std::unique_ptr<PreAggregator>> steps;
  for (const std::string& name : pre) {
    auto it = pre_factories_.find(name);
    if (it == pre_factories_.end()) {
      return Status::invalid_argument("unknown pre-aggregator '" + name + "' (known: " +
                                      joined(pre_names()) + ")");
    }
    COHORT_ASSIGN_OR_RETURN(auto step, it->second(params));
    steps.push_back(std::move(step));
  }
  COHORT_ASSIGN_OR_RETURN(auto final_rule, make_rule(rule, params));
  COHORT_RETURN_IF_ERROR(params.check_all_used("the pipeline"));
  return AggregationPipeline(std::move(steps), std::move(final_rule));
}

std::vector<std::string> RuleRegistry::names() const { return keys_of(factories_); }
std::vector<std::string> RuleRegistry::pre_names() const { return keys_of(pre_factories_); }

void register_builtin_rules(RuleRegistry& registry) {
  register_mean_rules(registry);
  register_coordinatewise_rules(registry);
  register_distance_rules(registry);
  register_pre_aggregators(registry);
}

}  // namespace cohort
