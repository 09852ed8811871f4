// Helpers shared by the pre-aggregator tests (clip, nnm, bucketing, arc).
#pragma once

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cohort/aggregation.h"
#include "pre_aggregators.h"

namespace cohort::pre_testing {

inline std::vector<double> values_of(const at::Tensor& t) {
  at::Tensor c = t.to(at::kCPU, at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

// An [n, d] tensor from literal rows.
inline at::Tensor rows_of(std::initializer_list<std::initializer_list<double>> rows,
                          at::ScalarType dtype = at::kFloat) {
  std::vector<double> flat;
  for (const auto& row : rows) flat.insert(flat.end(), row.begin(), row.end());
  const auto n = static_cast<int64_t>(rows.size());
  return at::tensor(flat, at::kDouble).reshape({n, static_cast<int64_t>(flat.size()) / n}).to(dtype);
}

// The ByzFL docstring input of the research note, section 5F.
inline at::Tensor byzfl_rows(at::ScalarType dtype = at::kFloat) {
  return rows_of({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}, dtype);
}

using Factory = Result<std::unique_ptr<PreAggregator>> (*)(RuleParams&);

// The pre-aggregator a factory builds from f and `params`; fails the test
// (and returns null) if it cannot.
inline std::unique_ptr<PreAggregator> make_step(Factory factory, int f,
                                                std::map<std::string, std::string> params = {}) {
  RuleParams rule_params(f, std::move(params));
  Result<std::unique_ptr<PreAggregator>> step = factory(rule_params);
  EXPECT_TRUE(step.ok()) << step.status().to_string();
  return step.ok() ? std::move(step).value() : nullptr;
}

// The factory's error for f and `params`.
inline Status factory_error(Factory factory, int f, std::map<std::string, std::string> params) {
  RuleParams rule_params(f, std::move(params));
  return factory(rule_params).status();
}

inline Result<UpdateStack> apply_to(const PreAggregator& step, const at::Tensor& rows,
                                    std::vector<double> weights = {}, uint64_t seed = 0) {
  AggregationContext context;
  context.seed = seed;
  return step.apply(UpdateStack{rows, std::move(weights), at::Tensor()}, context);
}

// Every output row is reproduced by the mixing matrix applied to the
// original rows, and the matrix is float64 on the CPU.
inline void expect_mixing_reproduces(const UpdateStack& out, const at::Tensor& original, double tolerance) {
  ASSERT_TRUE(out.mixing.defined());
  EXPECT_EQ(out.mixing.scalar_type(), at::kDouble);
  EXPECT_TRUE(out.mixing.device().is_cpu());
  ASSERT_EQ(out.mixing.sizes().vec(), (std::vector<int64_t>{out.rows.size(0), original.size(0)}));
  at::Tensor rebuilt = at::matmul(out.mixing, original.to(at::kDouble));
  EXPECT_TRUE(at::allclose(rebuilt, out.rows.to(at::kDouble), /*rtol=*/tolerance, /*atol=*/tolerance))
      << "mixing x original:\n" << rebuilt << "\nrows:\n" << out.rows;
}

inline void expect_rows_near(const at::Tensor& got, const at::Tensor& want, double tolerance) {
  ASSERT_EQ(got.sizes().vec(), want.sizes().vec());
  std::vector<double> g = values_of(got), w = values_of(want);
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], w[i], tolerance) << "entry " << i;
}

// Row i of the result is row perm[i] of `rows`.
inline at::Tensor permuted(const at::Tensor& rows, const std::vector<int64_t>& perm) {
  return rows.index_select(0, at::tensor(perm, at::kLong));
}

}  // namespace cohort::pre_testing
