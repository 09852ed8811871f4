// Helpers shared by the tests of the distance- and selection-based rules
// (krum, multi-krum, bulyan, mda, dnc, signguard).
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/aggregation.h"
#include "cohort/random.h"

namespace cohort::distance_testing {

inline std::vector<double> values_of(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// An [n, d] tensor from literal rows.
inline at::Tensor rows_of(std::initializer_list<std::initializer_list<double>> rows,
                          at::ScalarType dtype = at::kFloat) {
  std::vector<double> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  const int64_t n = static_cast<int64_t>(rows.size());
  return at::tensor(flat, at::TensorOptions().dtype(at::kDouble))
      .reshape({n, n == 0 ? 0 : static_cast<int64_t>(flat.size()) / n})
      .to(dtype);
}

// Standard normal rows drawn from a seeded cohort::Rng (portable).
inline at::Tensor random_rows(int64_t n, int64_t d, uint64_t seed,
                              at::ScalarType dtype = at::kDouble) {
  Rng rng(seed);
  std::vector<double> flat(static_cast<size_t>(n * d));
  for (double& v : flat) v = rng.normal();
  return at::tensor(flat, at::TensorOptions().dtype(at::kDouble)).reshape({n, d}).to(dtype);
}

// Row i of the result is row perm[i] of `rows`.
inline at::Tensor permuted(const at::Tensor& rows, const std::vector<int64_t>& perm) {
  return rows.index_select(0, at::tensor(perm, at::TensorOptions().dtype(at::kLong)));
}

// A few fixed permutations of n rows (reversal, rotations, a shuffle).
inline std::vector<std::vector<int64_t>> some_permutations(int64_t n) {
  std::vector<int64_t> identity(n);
  std::iota(identity.begin(), identity.end(), 0);
  std::vector<std::vector<int64_t>> out;
  out.emplace_back(identity.rbegin(), identity.rend());
  for (int64_t shift : {1, 3}) {
    std::vector<int64_t> p(n);
    for (int64_t i = 0; i < n; ++i) p[i] = (i + shift) % n;
    out.push_back(p);
  }
  std::vector<int64_t> shuffled = identity;
  Rng(42).shuffle(std::span<int64_t>(shuffled));
  out.push_back(shuffled);
  return out;
}

// A built-in rule; fails the test (and returns null) when it cannot be made.
inline std::unique_ptr<AggregationRule> built_in_rule(
    std::string_view name, int f, std::map<std::string, std::string> params = {}) {
  RuleRegistry registry;
  register_builtin_rules(registry);
  Result<std::unique_ptr<AggregationRule>> rule = registry.create(name, RuleParams(f, params));
  EXPECT_TRUE(rule.ok()) << rule.status().to_string();
  return rule.ok() ? std::move(rule).value() : nullptr;
}

// The error of creating a built-in rule (OK if it was created).
inline Status creation_error(std::string_view name, int f,
                             std::map<std::string, std::string> params) {
  RuleRegistry registry;
  register_builtin_rules(registry);
  return registry.create(name, RuleParams(f, params)).status();
}

// The rule gives the same aggregate (to 1e-12) for reordered rows.
inline void expect_permutation_invariant(const AggregationRule& rule, const at::Tensor& rows) {
  Result<AggregationResult> base = rule.aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(base.ok()) << base.status().to_string();
  for (const auto& perm : some_permutations(rows.size(0))) {
    Result<AggregationResult> r = rule.aggregate(permuted(rows, perm), {}, AggregationContext{});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    EXPECT_TRUE(at::allclose(r->aggregate, base->aggregate, 0, 1e-12));
  }
}

// Shifting every row by `shift` selects the same rows and shifts the
// aggregate by `shift`.
inline void expect_translation_equivariant(const AggregationRule& rule, const at::Tensor& rows,
                                           const at::Tensor& shift) {
  Result<AggregationResult> base = rule.aggregate(rows, {}, AggregationContext{});
  Result<AggregationResult> moved = rule.aggregate(rows + shift, {}, AggregationContext{});
  ASSERT_TRUE(base.ok() && moved.ok());
  EXPECT_EQ(moved->selected, base->selected);
  EXPECT_TRUE(at::allclose(moved->aggregate, base->aggregate + shift, 0, 1e-9));
}

inline AggregationContext without_diagnostics() {
  AggregationContext context;
  context.diagnostics = false;
  return context;
}

inline void expect_values_near(const at::Tensor& got, const std::vector<double>& want,
                               double tolerance) {
  std::vector<double> values = values_of(got);
  ASSERT_EQ(values.size(), want.size());
  for (size_t k = 0; k < want.size(); ++k) {
    EXPECT_NEAR(values[k], want[k], tolerance) << "coordinate " << k;
  }
}

inline double sum_of(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0);
}

// Every coordinate of `aggregate` lies within the range of that coordinate
// over the first `honest` rows.
inline void expect_within_honest_range(const at::Tensor& aggregate, const at::Tensor& rows,
                                       int64_t honest) {
  at::Tensor h = rows.narrow(0, 0, honest).to(at::kDouble);
  at::Tensor a = aggregate.to(at::kDouble);
  const double slack = 1e-5;
  EXPECT_TRUE((a >= std::get<0>(h.min(0)) - slack).all().item<bool>());
  EXPECT_TRUE((a <= std::get<0>(h.max(0)) + slack).all().item<bool>());
}

inline void expect_code(const Status& status, Status::Code code, std::string_view fragment) {
  EXPECT_EQ(status.code(), code) << status.to_string();
  EXPECT_NE(status.message().find(fragment), std::string::npos) << status.to_string();
}

}  // namespace cohort::distance_testing
