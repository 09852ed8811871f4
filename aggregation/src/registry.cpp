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

Status RuleParams::check_all_used(std::string_view rule) const {
  for (const auto& [key, _] : values_) {
    if (!used_.contains(key)) {
      return Status::invalid_argument("rule '" + std::string(rule) + "' has no parameter '" +
                                      key + "'");
    }
  }
  return Status();
}

void RuleRegistry::add(std::string name, RuleFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

Result<std::unique_ptr<AggregationRule>> RuleRegistry::create(std::string_view name,
                                                              RuleParams params) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    std::string known;
    for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
    return Status::invalid_argument("unknown aggregation rule '" + std::string(name) +
                                    "' (known: " + known + ")");
  }
  if (params.f() < 0) return Status::invalid_argument("f must be >= 0");
  COHORT_ASSIGN_OR_RETURN(auto rule, it->second(params));
  COHORT_RETURN_IF_ERROR(params.check_all_used(name));
  return rule;
}

std::vector<std::string> RuleRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : factories_) out.push_back(name);
  return out;
}

void register_builtin_rules(RuleRegistry& registry) { registry.add("fedavg", make_fedavg); }

}  // namespace cohort
