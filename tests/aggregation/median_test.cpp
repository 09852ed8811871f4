#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "coordinatewise_test_util.h"

namespace cohort {
namespace {

using namespace coordinatewise_test;

TEST(MedianTest, ByzflVector) {
  // Each column of [[1,2,3],[4,5,6],[7,8,9]] has its middle value in row 1.
  auto rule = make_rule("median", 1);
  EXPECT_EQ(rule->name(), "median");
  AggregationResult r = must_aggregate(*rule, byzfl_rows());
  EXPECT_EQ(r.aggregate.scalar_type(), at::kFloat);
  expect_values_near(r.aggregate, {4, 5, 6}, 1e-6);
  expect_weights_near(r.row_weights, {0, 1, 0}, 1e-12);
}

TEST(MedianTest, EvenNAveragesTheTwoMiddleValues) {
  // Column 0: 1, 10, 2, 4 -> sorted 1 2 | 4 10 -> (2 + 4) / 2 = 3 (rows 2, 3).
  // Column 1: 5, 0, 9, 6  -> sorted 0 5 | 6 9  -> (5 + 6) / 2 = 5.5 (rows 0, 3).
  // torch.median would give the lower values 2 and 5.
  // Shares: 4 half-credits over 2 coordinates; row 3 twice, rows 0 and 2 once.
  auto rule = make_rule("median", 0);
  AggregationResult r =
      must_aggregate(*rule, matrix({{1, 5}, {10, 0}, {2, 9}, {4, 6}}, at::kFloat));
  expect_values_near(r.aggregate, {3, 5.5}, 1e-6);
  expect_weights_near(r.row_weights, {0.25, 0, 0.25, 0.5}, 1e-12);
}

TEST(MedianTest, OddNTakesTheMiddleValueAndItsRow) {
  // Column 0: -3, 8, 0.5, 2, 7 -> 2 (row 3); column 1: 1, 1, 4, 0, 9 -> 1
  // (row 0 or 1: equal values); shares 1/2 to row 3, 1/2 to row 0 or 1.
  auto rule = make_rule("median", 0);
  AggregationResult r =
      must_aggregate(*rule, matrix({{-3, 1}, {8, 1}, {0.5, 4}, {2, 0}, {7, 9}}, at::kFloat));
  expect_values_near(r.aggregate, {2, 1}, 0.0);
  EXPECT_DOUBLE_EQ(r.row_weights[3], 0.5);
  EXPECT_DOUBLE_EQ(r.row_weights[0] + r.row_weights[1], 0.5);
  EXPECT_DOUBLE_EQ(sum_of(r.row_weights), 1.0);
}

TEST(MedianTest, ReturnsFiveIdenticalCentralRowsExactly) {
  // The ALIE case of research note 5B: n = 25 with 5 identical rows that sit
  // between 10 honest values below and 10 above in every coordinate, so
  // the 13th of 25 sorted values is theirs and the median is the attack row.
  std::vector<std::vector<double>> rows;
  for (int i = 1; i <= 10; ++i) rows.push_back({-1.0 * i, 2.0 * i});
  for (int i = 1; i <= 10; ++i) rows.push_back({1.0 * i, -2.0 * i});
  for (int i = 0; i < 5; ++i) rows.push_back({0.3, -0.7});
  AggregationResult r = must_aggregate(*make_rule("median", 5), matrix(rows, at::kFloat));
  expect_values_near(r.aggregate, {0.3f, -0.7f}, 0.0);
  double attack_share = 0.0;
  for (int i = 20; i < 25; ++i) attack_share += r.row_weights[i];
  EXPECT_DOUBLE_EQ(attack_share, 1.0);
}

TEST(MedianTest, Float64StaysFloat64) {
  // 0.1, 0.3, 0.2 -> 0.2; 0.1 and 0.2 only exact in double: (0.1 + 0.2) / 2.
  auto rule = make_rule("median", 0);
  AggregationResult odd = must_aggregate(*rule, matrix({{0.1}, {0.3}, {0.2}}));
  EXPECT_EQ(odd.aggregate.scalar_type(), at::kDouble);
  expect_values_near(odd.aggregate, {0.2}, 0.0);
  AggregationResult even = must_aggregate(*rule, matrix({{0.1}, {0.2}}));
  expect_values_near(even.aggregate, {(0.1 + 0.2) / 2}, 1e-17);
}

TEST(MedianTest, SingleRowIsReturned) {
  auto rule = make_rule("median", 0);
  AggregationResult r = must_aggregate(*rule, matrix({{-1.5, 8}}, at::kFloat));
  expect_values_near(r.aggregate, {-1.5, 8}, 0.0);
  EXPECT_EQ(r.row_weights, std::vector<double>{1.0});
}

TEST(MedianTest, IgnoresWeights) {
  auto rule = make_rule("median", 0);
  const std::vector<double> weights = {100, 1, 1};
  expect_values_near(must_aggregate(*rule, byzfl_rows(), weights).aggregate, {4, 5, 6}, 0.0);
}

TEST(MedianTest, NoDiagnosticsWhenNotAsked) {
  auto rule = make_rule("median", 0);
  AggregationContext context;
  context.diagnostics = false;
  AggregationResult r = must_aggregate(*rule, byzfl_rows(), {}, context);
  EXPECT_TRUE(r.row_weights.empty());
  expect_values_near(r.aggregate, {4, 5, 6}, 0.0);
}

TEST(MedianTest, RejectsMalformedStacks) {
  auto rule = make_rule("median", 0);
  const std::vector<double> one_weight = {1.0};
  EXPECT_EQ(rule->aggregate(at::ones({3}), {}, {}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rule->aggregate(at::zeros({0, 3}), {}, {}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(rule->aggregate(byzfl_rows(), one_weight, {}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(MedianTest, HasNoParameters) {
  Result<std::unique_ptr<AggregationRule>> r = try_make_rule("median", 0, {{"nu", "1"}});
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST(MedianTest, PermutationInvariant) {
  auto rule = make_rule("median", 0);
  expect_permutation_invariant(*rule, random_rows(7, 5, 1), 0.0);
  expect_permutation_invariant(*rule, random_rows(8, 5, 2), 0.0);
}

TEST(MedianTest, TranslationEquivariant) {
  auto rule = make_rule("median", 0);
  expect_translation_equivariant(*rule, random_rows(7, 5, 3), 10.0, 1e-12);
  expect_translation_equivariant(*rule, random_rows(6, 5, 4), -4.0, 1e-12);
}

TEST(MedianTest, StaysWithinHonestRangeWhenFRowsAreAtAMillion) {
  // With f < n/2 the middle value is bracketed by honest values.
  auto rule = make_rule("median", 3);
  expect_bounded_by_honest_rows(*rule, random_rows(7, 6, 5), 3, 0.0);
  expect_bounded_by_honest_rows(*rule, random_rows(8, 6, 6, at::kFloat), 3, 0.0);
}

}  // namespace
}  // namespace cohort
