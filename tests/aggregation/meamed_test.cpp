#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "coordinatewise_test_util.h"

namespace cohort {
namespace {

using namespace coordinatewise_test;

TEST(MeamedTest, ByzflVector) {
  // Column 0: median 4; distances 3, 0, 3; n - f = 2 closest: 4 and, of the
  // tied 1 and 7, the smaller: (1 + 4) / 2 = 2.5. Same in every column.
  auto rule = make_rule("meamed", 1);
  EXPECT_EQ(rule->name(), "meamed");
  AggregationResult r = must_aggregate(*rule, byzfl_rows());
  expect_values_near(r.aggregate, {2.5, 3.5, 4.5}, 1e-6);
  expect_weights_near(r.row_weights, {0.5, 0.5, 0}, 1e-12);
}

TEST(MeamedTest, AveragesTheValuesClosestToTheMedian) {
  // 1, 2, 3, 4, 10: median 3, distances 2, 1, 0, 1, 7.
  // f = 1 keeps 1, 2, 3, 4: 2.5.  f = 2 keeps 2, 3, 4: 3.  f = 4 keeps 3.
  const at::Tensor rows = matrix({{1}, {2}, {3}, {4}, {10}}, at::kFloat);
  AggregationResult one = must_aggregate(*make_rule("meamed", 1), rows);
  expect_values_near(one.aggregate, {2.5}, 0.0);
  expect_weights_near(one.row_weights, {0.25, 0.25, 0.25, 0.25, 0}, 1e-12);
  expect_values_near(must_aggregate(*make_rule("meamed", 2), rows).aggregate, {3}, 0.0);
  AggregationResult four = must_aggregate(*make_rule("meamed", 4), rows);
  expect_values_near(four.aggregate, {3}, 0.0);
  expect_weights_near(four.row_weights, {0, 0, 1, 0, 0}, 1e-12);
}

TEST(MeamedTest, EvenNTiesGoToTheSmallerValueInAnyRowOrder) {
  // 1, 2, 4, 5: median (2 + 4) / 2 = 3, distances 2, 1, 1, 2; f = 1 keeps
  // 2, 4 and the smaller of the tied 1 and 5: (1 + 2 + 4) / 3 = 7/3.
  auto rule = make_rule("meamed", 1);
  expect_values_near(must_aggregate(*rule, matrix({{1}, {2}, {4}, {5}})).aggregate, {7.0 / 3},
                     1e-15);
  AggregationResult reversed = must_aggregate(*rule, matrix({{5}, {4}, {2}, {1}}));
  expect_values_near(reversed.aggregate, {7.0 / 3}, 1e-15);
  expect_weights_near(reversed.row_weights, {0, 1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15);
}

TEST(MeamedTest, AtFZeroEqualsTheMean) {
  const at::Tensor rows = random_rows(5, 4, 21);
  Result<AggregationResult> mean = fedavg(rows, {});
  ASSERT_TRUE(mean.ok());
  expect_values_near(must_aggregate(*make_rule("meamed", 0), rows).aggregate,
                     values_of(mean->aggregate), 1e-15);
}

TEST(MeamedTest, Float64StaysFloat64) {
  // 0.1, 0.2, 0.7, 5: median 0.45, distances 0.35, 0.25, 0.25, 4.55; f = 1
  // keeps 0.1, 0.2, 0.7: 1/3 in double arithmetic.
  AggregationResult r = must_aggregate(*make_rule("meamed", 1), matrix({{0.1}, {0.2}, {0.7}, {5}}));
  EXPECT_EQ(r.aggregate.scalar_type(), at::kDouble);
  expect_values_near(r.aggregate, {(0.1 + 0.2 + 0.7) / 3}, 1e-15);
}

TEST(MeamedTest, NeedsMoreRowsThanF) {
  Result<AggregationResult> r = make_rule("meamed", 2)->aggregate(random_rows(2, 3, 1), {}, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), "meamed needs n >= f+1, got n=2, f=2");
  EXPECT_TRUE(make_rule("meamed", 2)->aggregate(random_rows(3, 3, 1), {}, {}).ok());
}

TEST(MeamedTest, RejectsMalformedStacks) {
  auto rule = make_rule("meamed", 1);
  EXPECT_EQ(rule->aggregate(at::ones({2, 2, 2}), {}, {}).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(rule->aggregate(at::ones({3, 2}, at::kInt), {}, {}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(MeamedTest, HasNoParameters) {
  EXPECT_EQ(try_make_rule("meamed", 1, {{"k", "2"}}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(MeamedTest, IgnoresWeights) {
  const std::vector<double> weights = {0, 1, 9};
  expect_values_near(must_aggregate(*make_rule("meamed", 1), byzfl_rows(), weights).aggregate,
                     {2.5, 3.5, 4.5}, 0.0);
}

TEST(MeamedTest, NoDiagnosticsWhenNotAsked) {
  AggregationContext context;
  context.diagnostics = false;
  EXPECT_TRUE(
      must_aggregate(*make_rule("meamed", 1), byzfl_rows(), {}, context).row_weights.empty());
}

TEST(MeamedTest, PermutationInvariant) {
  expect_permutation_invariant(*make_rule("meamed", 2), random_rows(7, 5, 22), 1e-15);
  expect_permutation_invariant(*make_rule("meamed", 3), random_rows(8, 5, 23), 1e-15);
}

TEST(MeamedTest, TranslationEquivariant) {
  expect_translation_equivariant(*make_rule("meamed", 2), random_rows(7, 5, 24), 5.0, 1e-12);
}

TEST(MeamedTest, StaysWithinHonestRangeWhenFRowsAreAtAMillion) {
  // The median is bracketed by honest values for f < n/2, and the n - f
  // values closest to it are the honest ones.
  expect_bounded_by_honest_rows(*make_rule("meamed", 3), random_rows(7, 6, 25), 3, 0.0);
  expect_bounded_by_honest_rows(*make_rule("meamed", 2), random_rows(8, 6, 26, at::kFloat), 2, 0.0);
}

}  // namespace
}  // namespace cohort
