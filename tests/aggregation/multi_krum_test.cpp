#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "distance_rule_testing.h"

namespace cohort {
namespace {

using namespace distance_testing;

// Rows (x, 2x + 1) for x = 0, 1, 3, 7, 20, f = 1: Krum scores (2 nearest,
// squared distances 5 (x_i - x_j)^2) are 50, 25, 65, 260, 2290 (worked out
// in krum_test.cpp), so the order is x = 1, 0, 3, 7, 20.
at::Tensor five_rows(at::ScalarType dtype = at::kFloat) {
  return rows_of({{0, 1}, {1, 3}, {3, 7}, {7, 15}, {20, 41}}, dtype);
}

TEST(MultiKrumTest, ByzFLVectorViolatesTheNeighbourCountPrecondition) {
  // ByzFL's MultiKrum(1) gives [2.5, 3.5, 4.5] with n-f-1 neighbours; with
  // n-f-2 the 3-row input is below n >= 2f+3.
  auto rule = built_in_rule("multi-krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}), {}, AggregationContext{});
  ASSERT_FALSE(r.ok());
  expect_code(r.status(), Status::Code::kFailedPrecondition,
              "multi-krum needs n >= 2f+3, got n=3, f=1");
}

TEST(MultiKrumTest, DefaultKeepsNMinusFRows) {
  // m = n - f = 4: x = 1, 0, 3, 7 -> x mean 11/4 = 2.75, y = 2x + 1 = 6.5.
  auto rule = built_in_rule("multi-krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{2.75, 6.5}));
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.25, 0.25, 0.25, 0.25, 0}));
  ASSERT_EQ(r->scores.size(), 5u);
  EXPECT_NEAR(r->scores[1], 25, 1e-3);
}

TEST(MultiKrumTest, ExplicitMAndSampleWeights) {
  // m = 2 keeps x = 1 and x = 0. Unweighted: (0.5, 2). Weights 1 and 3 on
  // rows 0 and 1: x = (0*1 + 1*3) / 4 = 0.75, y = 2 * 0.75 + 1 = 2.5.
  auto rule = built_in_rule("multi-krum", 1, {{"m", "2"}});
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> plain = rule->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(plain.ok()) << plain.status().to_string();
  EXPECT_EQ(values_of(plain->aggregate), (std::vector<double>{0.5, 2}));
  const std::vector<double> weights = {1, 3, 50, 50, 50};
  Result<AggregationResult> r = rule->aggregate(five_rows(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{0.75, 2.5}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.25, 0.75, 0, 0, 0}));
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1}));
}

TEST(MultiKrumTest, MOfOneIsKrum) {
  auto rule = built_in_rule("multi-krum", 1, {{"m", "1"}});
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{1, 3}));
}

TEST(MultiKrumTest, Float64StaysFloat64) {
  // m = 4 of the rows scaled by 0.1: x = 0.275, y = 0.65.
  auto rule = built_in_rule("multi-krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(five_rows(at::kDouble) * 0.1, {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  expect_values_near(r->aggregate, {0.275, 0.65}, 1e-15);
}

TEST(MultiKrumTest, Preconditions) {
  auto rule = built_in_rule("multi-krum", 2);
  ASSERT_NE(rule, nullptr);
  expect_code(rule->aggregate(random_rows(6, 3, 1), {}, AggregationContext{}).status(),
              Status::Code::kFailedPrecondition, "multi-krum needs n >= 2f+3, got n=6, f=2");
  // m larger than n.
  auto six = built_in_rule("multi-krum", 1, {{"m", "6"}});
  ASSERT_NE(six, nullptr);
  expect_code(six->aggregate(five_rows(), {}, AggregationContext{}).status(),
              Status::Code::kInvalidArgument, "multi-krum needs m <= n, got m=6, n=5");
  // The m = 2 rows kept have no samples between them.
  auto two = built_in_rule("multi-krum", 1, {{"m", "2"}});
  ASSERT_NE(two, nullptr);
  const std::vector<double> weights = {0, 0, 1, 1, 1};
  expect_code(two->aggregate(five_rows(), weights, AggregationContext{}).status(),
              Status::Code::kFailedPrecondition, "selected rows all have weight 0");
}

TEST(MultiKrumTest, RejectsBadM) {
  expect_code(creation_error("multi-krum", 1, {{"m", "0"}}), Status::Code::kInvalidArgument,
              "m must be >= 1, got 0");
  expect_code(creation_error("multi-krum", 1, {{"m", "-3"}}), Status::Code::kInvalidArgument,
              "m must be >= 1");
  expect_code(creation_error("multi-krum", 1, {{"m", "two"}}), Status::Code::kInvalidArgument,
              "'m'");
  expect_code(creation_error("multi-krum", 1, {{"k", "2"}}), Status::Code::kInvalidArgument,
              "'k'");
}

TEST(MultiKrumTest, PermutationInvariant) {
  at::Tensor rows = random_rows(9, 6, 17);
  auto rule = built_in_rule("multi-krum", 2);
  ASSERT_NE(rule, nullptr);
  expect_permutation_invariant(*rule, rows);
}

TEST(MultiKrumTest, TranslationEquivariant) {
  at::Tensor rows = random_rows(9, 6, 18);
  at::Tensor shift = at::linspace(-50, 50, 6, at::kDouble);
  auto rule = built_in_rule("multi-krum", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> base = rule->aggregate(rows, {}, AggregationContext{});
  Result<AggregationResult> moved = rule->aggregate(rows + shift, {}, AggregationContext{});
  ASSERT_TRUE(base.ok() && moved.ok());
  EXPECT_EQ(moved->selected, base->selected);
  EXPECT_TRUE(at::allclose(moved->aggregate, base->aggregate + shift, 0, 1e-12));
}

TEST(MultiKrumTest, NeverSelectsRowsFarAway) {
  // Default m = n - f keeps exactly the 7 honest rows.
  at::Tensor rows = random_rows(9, 4, 19, at::kFloat);
  rows.narrow(0, 7, 2).fill_(1e6);
  auto rule = built_in_rule("multi-krum", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6}));
  expect_within_honest_range(r->aggregate, rows, 7);
  EXPECT_DOUBLE_EQ(sum_of(r->row_weights), 1.0);
}

TEST(MultiKrumTest, DiagnosticsCanBeSkipped) {
  auto rule = built_in_rule("multi-krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, without_diagnostics());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{2.75, 6.5}));
  EXPECT_TRUE(r->row_weights.empty() && r->scores.empty() && r->selected.empty());
}

}  // namespace
}  // namespace cohort
