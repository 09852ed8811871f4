// Helpers for the tests of the coordinate-wise and iterative rules (median,
// trimmed-mean, meamed, geometric-median, centered-clipping, fltrust):
// building a rule by name, running it, and the properties every rule is
// checked against (permutation invariance, translation equivariance,
// boundedness under rows at 1e6).
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <memory>
#include <numeric>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "cohort/aggregation.h"
#include "cohort/random.h"

namespace cohort::coordinatewise_test {

inline std::vector<double> values_of(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// [rows.size(), rows[0].size()] in `dtype`.
inline at::Tensor matrix(const std::vector<std::vector<double>>& rows,
                         at::ScalarType dtype = at::kDouble) {
  std::vector<double> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  const int64_t n = static_cast<int64_t>(rows.size());
  return at::tensor(flat, at::kDouble).reshape({n, -1}).to(dtype);
}

// The input of ByzFL's docstring examples, research note section 5F.
inline at::Tensor byzfl_rows(at::ScalarType dtype = at::kFloat) {
  return matrix({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, dtype);
}

// Standard normal entries from cohort::Rng, the same on every machine.
inline at::Tensor random_rows(int64_t n, int64_t d, uint64_t seed,
                              at::ScalarType dtype = at::kDouble) {
  Rng rng(seed);
  std::vector<double> values(static_cast<size_t>(n * d));
  for (double& v : values) v = rng.normal();
  return at::tensor(values, at::kDouble).reshape({n, d}).to(dtype);
}

inline Result<std::unique_ptr<AggregationRule>> try_make_rule(
    const std::string& name, int f, std::map<std::string, std::string> params = {}) {
  RuleRegistry registry;
  register_builtin_rules(registry);
  return registry.create(name, RuleParams(f, std::move(params)));
}

// Throws (failing the test with the status) when the rule cannot be built.
inline std::unique_ptr<AggregationRule> make_rule(const std::string& name, int f,
                                                  std::map<std::string, std::string> params = {}) {
  Result<std::unique_ptr<AggregationRule>> rule = try_make_rule(name, f, std::move(params));
  if (!rule.ok()) throw std::runtime_error(rule.status().to_string());
  return std::move(rule).value();
}

// Throws (failing the test with the status) when the rule fails.
inline AggregationResult must_aggregate(const AggregationRule& rule, const at::Tensor& rows,
                                        std::span<const double> weights = {},
                                        const AggregationContext& context = {}) {
  Result<AggregationResult> r = rule.aggregate(rows, weights, context);
  if (!r.ok()) throw std::runtime_error(r.status().to_string());
  return std::move(r).value();
}

inline void expect_values_near(const at::Tensor& got, const std::vector<double>& want, double tol) {
  std::vector<double> values = values_of(got);
  ASSERT_EQ(values.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(values[i], want[i], tol) << "entry " << i;
}

inline void expect_weights_near(const std::vector<double>& got, const std::vector<double>& want,
                                double tol) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], tol) << "row " << i;
}

inline double sum_of(const std::vector<double>& values) {
  return std::accumulate(values.begin(), values.end(), 0.0);
}

// The same rows in another order (reversed, then rotated by one) give the
// same aggregate; weights, when given, move with their rows.
inline void expect_permutation_invariant(const AggregationRule& rule, const at::Tensor& rows,
                                         double tol, std::vector<double> weights = {},
                                         const AggregationContext& context = {}) {
  const int64_t n = rows.size(0);
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = (2 * n - 2 - i) % n;
  std::vector<double> permuted_weights;
  for (int64_t i : order) {
    if (!weights.empty()) permuted_weights.push_back(weights[static_cast<size_t>(i)]);
  }
  at::Tensor permuted = rows.index_select(0, at::tensor(order, at::kLong));
  AggregationResult a = must_aggregate(rule, rows, weights, context);
  AggregationResult b = must_aggregate(rule, permuted, permuted_weights, context);
  expect_values_near(b.aggregate, values_of(a.aggregate), tol);
}

// aggregate(X + c) = aggregate(X) + c for c_j = shift * (1 - 3j): a
// different offset per coordinate, of both signs.
inline void expect_translation_equivariant(const AggregationRule& rule, const at::Tensor& rows,
                                           double shift, double tol,
                                           const AggregationContext& context = {}) {
  at::Tensor c = at::arange(rows.size(1), rows.options()).mul_(-3.0).add_(1.0).mul_(shift);
  std::vector<double> want = values_of(must_aggregate(rule, rows, {}, context).aggregate + c);
  expect_values_near(must_aggregate(rule, rows + c, {}, context).aggregate, want, tol);
}

// Replaces the last f of n honest-looking rows by rows at +1e6 (and -1e6
// in every other coordinate) and checks that every coordinate of the
// aggregate stays within [min - slack, max + slack] of the honest rows.
inline void expect_bounded_by_honest_rows(const AggregationRule& rule, const at::Tensor& rows,
                                          int64_t f, double slack,
                                          const AggregationContext& context = {}) {
  const int64_t n = rows.size(0);
  const int64_t d = rows.size(1);
  at::Tensor honest = rows.narrow(0, 0, n - f);
  at::Tensor signs = at::arange(d, rows.options()).remainder_(2.0).mul_(-2.0).add_(1.0);
  at::Tensor attacked = at::cat({honest, (signs * 1e6).expand({f, d})});
  std::vector<double> got = values_of(must_aggregate(rule, attacked, {}, context).aggregate);
  std::vector<double> low = values_of(std::get<0>(honest.min(0)));
  std::vector<double> high = values_of(std::get<0>(honest.max(0)));
  for (int64_t j = 0; j < d; ++j) {
    EXPECT_GE(got[j], low[j] - slack) << "coordinate " << j;
    EXPECT_LE(got[j], high[j] + slack) << "coordinate " << j;
  }
}

}  // namespace cohort::coordinatewise_test
