#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "distance_rule_testing.h"

namespace cohort {
namespace {

using namespace distance_testing;

// Norms 2, 2, 4, 1, 30 -> M = 2; S1 = {0.2 <= norm <= 6} = rows 0..3.
// Sign features (positive, negative, zero fractions):
//   f0 = (.75, .25, 0)  f1 = (1, 0, 0)  f2 = (.75, .25, 0)  f3 = (0, 1, 0)
//   f4 = (.25, 0, .75)
// Farthest pair: f1, f3 (squared distance 2) seed clusters A (f1, the
// lexicographically larger) and B.
// Assignment: f0 (A .125, B 1.125), f2 likewise, f4 (A 1.125, B 1.625) -> A;
// A = {0, 1, 2, 4} has centre (.6875, .125, .1875); reassigning moves
// nothing (f4: A .5234375, B 1.625; f3: A 1.2734375, B 0), so the majority
// cluster is {0, 1, 2, 4}. S1 and S2: rows 0, 1, 2; row 2 is clipped to
// norm 2: (1, 1, 1, -1). Mean: (1, 1, 1, -1/3).
at::Tensor five_rows(at::ScalarType dtype = at::kFloat) {
  return rows_of({{1, 1, 1, -1}, {1, 1, 1, 1}, {2, 2, 2, -2}, {-0.5, -0.5, -0.5, -0.5},
                  {30, 0, 0, 0}},
                 dtype);
}

TEST(SignGuardTest, HandWorkedFiveRows) {
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kFloat);
  expect_values_near(r->aggregate, {1, 1, 1, -1.0 / 3}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2}));
  const std::vector<double> third = {1.0 / 3, 1.0 / 3, 1.0 / 3, 0, 0};
  ASSERT_EQ(r->row_weights.size(), 5u);
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(r->row_weights[i], third[i], 1e-15) << i;
}

TEST(SignGuardTest, Float64) {
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(at::kDouble), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  expect_values_near(r->aggregate, {1, 1, 1, -1.0 / 3}, 1e-15);
}

TEST(SignGuardTest, EmptyIntersectionGivesZeros) {
  // 1-D rows 0.01, 100, -1: M = 1, S1 = {-1} (0.01 < 0.1, 100 > 3), but the
  // sign clusters are {0.01, 100} (positive) and {-1}: S2 = rows 0, 1.
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{0.01}, {100}, {-1}}), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{0}));
  EXPECT_TRUE(r->selected.empty());
  EXPECT_EQ(r->row_weights, (std::vector<double>{0, 0, 0}));
}

TEST(SignGuardTest, EqualClustersFavourMorePositiveSigns) {
  // Rows 2 and -1: M = 1.5, both in S1; one cluster each, of equal size; the
  // one seeded by (1, 0, 0) wins over (0, 1, 0) in either row order, and 2
  // is clipped to 1.5.
  auto rule = built_in_rule("signguard", 0);
  ASSERT_NE(rule, nullptr);
  for (const at::Tensor& rows : {rows_of({{2}, {-1}}), rows_of({{-1}, {2}})}) {
    Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{1.5}));
    ASSERT_EQ(r->selected.size(), 1u);
    EXPECT_EQ(rows[r->selected[0]].item<double>(), 2.0);
  }
}

TEST(SignGuardTest, IdenticalSignPatternsFormOneCluster) {
  // All rows positive: S2 is every row; norms 1, 2, 4 -> M = 2, all in S1;
  // 4 is clipped to 2: mean (1 + 2 + 2) / 3.
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows_of({{1}, {2}, {4}}), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {5.0 / 3}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2}));
}

TEST(SignGuardTest, RejectsEmptyRowsMalformedInputAndParameters) {
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  expect_code(rule->aggregate(at::zeros({3, 0}), {}, AggregationContext{}).status(),
              Status::Code::kInvalidArgument, "no coordinates (d = 0)");
  EXPECT_EQ(rule->aggregate(at::zeros({0, 3}), {}, AggregationContext{}).status().code(),
            Status::Code::kInvalidArgument);
  expect_code(creation_error("signguard", 1, {{"upper", "3"}}), Status::Code::kInvalidArgument,
              "'upper'");
}

TEST(SignGuardTest, IgnoresWeights) {
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  const std::vector<double> weights = {1, 9, 1, 1, 1};
  Result<AggregationResult> r = rule->aggregate(five_rows(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {1, 1, 1, -1.0 / 3}, 1e-6);
}

TEST(SignGuardTest, PermutationInvariant) {
  at::Tensor rows = random_rows(9, 40, 51);
  auto rule = built_in_rule("signguard", 2);
  ASSERT_NE(rule, nullptr);
  expect_permutation_invariant(*rule, rows);
}

// Norms and signs depend on the origin, so SignGuard is not translation
// equivariant; it is equivariant under positive scaling.
TEST(SignGuardTest, ScaleEquivariant) {
  at::Tensor rows = random_rows(9, 40, 52);
  auto rule = built_in_rule("signguard", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> base = rule->aggregate(rows, {}, AggregationContext{});
  Result<AggregationResult> scaled = rule->aggregate(rows * 8.0, {}, AggregationContext{});
  ASSERT_TRUE(base.ok() && scaled.ok());
  EXPECT_EQ(scaled->selected, base->selected);
  EXPECT_TRUE(at::allclose(scaled->aggregate, base->aggregate * 8.0, 0, 1e-12));
}

TEST(SignGuardTest, DiscardsRowsFarAway) {
  // Rows at 1e6 have norms far above 3 M; the output is a mean of rows
  // clipped to M, and M (the 5th of 9 norms) is at most the largest honest
  // norm.
  at::Tensor rows = random_rows(9, 40, 53, at::kFloat);
  rows.narrow(0, 7, 2).fill_(1e6);
  auto rule = built_in_rule("signguard", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  ASSERT_FALSE(r->selected.empty());
  EXPECT_LT(r->selected.back(), 7);
  const double largest_honest_norm = rows.narrow(0, 0, 7).norm(2, {1}).max().item<double>();
  EXPECT_LE(r->aggregate.norm().item<double>(), largest_honest_norm);
  EXPECT_NEAR(sum_of(r->row_weights), 1.0, 1e-12);
}

TEST(SignGuardTest, DiagnosticsCanBeSkipped) {
  auto rule = built_in_rule("signguard", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, without_diagnostics());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->row_weights.empty() && r->selected.empty());
}

}  // namespace
}  // namespace cohort
