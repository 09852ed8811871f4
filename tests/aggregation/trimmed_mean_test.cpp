#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "coordinatewise_test_util.h"

namespace cohort {
namespace {

using namespace coordinatewise_test;

TEST(TrimmedMeanTest, ByzflVector) {
  // f = 1 drops 1 and 7 (2 and 8, 3 and 9) and keeps row 1's value.
  auto rule = make_rule("trimmed-mean", 1);
  EXPECT_EQ(rule->name(), "trimmed-mean");
  AggregationResult r = must_aggregate(*rule, byzfl_rows());
  expect_values_near(r.aggregate, {4, 5, 6}, 1e-6);
  expect_weights_near(r.row_weights, {0, 1, 0}, 1e-12);
}

TEST(TrimmedMeanTest, DropsTheFLargestAndFSmallestPerCoordinate) {
  // Column 0: 5, 1, 100, 2, 3; f = 1 drops 100 and 1: (5 + 2 + 3) / 3 = 10/3,
  // from rows 0, 3, 4.
  // Column 1: 0, 9, -4, 8, 1; drops 9 and -4: (0 + 8 + 1) / 3 = 3, rows 0, 3, 4.
  // f = 2 keeps the middle value only: 3 and 1, both from row 4.
  const at::Tensor rows = matrix({{5, 0}, {1, 9}, {100, -4}, {2, 8}, {3, 1}}, at::kFloat);
  AggregationResult r = must_aggregate(*make_rule("trimmed-mean", 1), rows);
  expect_values_near(r.aggregate, {10.0 / 3, 3}, 1e-6);
  expect_weights_near(r.row_weights, {1.0 / 3, 0, 0, 1.0 / 3, 1.0 / 3}, 1e-12);
  AggregationResult two = must_aggregate(*make_rule("trimmed-mean", 2), rows);
  expect_values_near(two.aggregate, {3, 1}, 0.0);
  expect_weights_near(two.row_weights, {0, 0, 0, 0, 1}, 1e-12);
}

TEST(TrimmedMeanTest, RowWeightsCountEachKeptValueOnceEvenWithTies) {
  // A column of equal values keeps n - 2f = 2 of its 4 entries, whichever
  // they are; the 4 shares (2 per coordinate over 2 coordinates) still sum to 1.
  const at::Tensor rows = matrix({{0, 1}, {0, 2}, {0, 3}, {0, 4}});
  AggregationResult r = must_aggregate(*make_rule("trimmed-mean", 1), rows);
  expect_values_near(r.aggregate, {0, 2.5}, 0.0);
  EXPECT_DOUBLE_EQ(sum_of(r.row_weights), 1.0);
  for (double w : r.row_weights) EXPECT_GE(w, 0.0);
  for (double w : r.row_weights) EXPECT_LE(w, 0.5);  // at most one credit per coordinate
  // 2 and 3 are kept in column 1.
  EXPECT_GE(r.row_weights[1], 0.25);
  EXPECT_GE(r.row_weights[2], 0.25);
}

TEST(TrimmedMeanTest, AtFZeroEqualsTheMean) {
  const at::Tensor rows = random_rows(6, 5, 11);
  AggregationResult r = must_aggregate(*make_rule("trimmed-mean", 0), rows);
  Result<AggregationResult> mean = fedavg(rows, {});
  ASSERT_TRUE(mean.ok());
  expect_values_near(r.aggregate, values_of(mean->aggregate), 1e-15);
  expect_weights_near(r.row_weights, std::vector<double>(6, 1.0 / 6), 1e-15);
}

TEST(TrimmedMeanTest, Float64StaysFloat64) {
  // 0.1, 0.2, 0.7, 1e300 with f = 1 keeps 0.2 and 0.7: 0.45, exact in double
  // only as (0.2 + 0.7) / 2.
  AggregationResult r =
      must_aggregate(*make_rule("trimmed-mean", 1), matrix({{0.1}, {0.2}, {0.7}, {1e300}}));
  EXPECT_EQ(r.aggregate.scalar_type(), at::kDouble);
  expect_values_near(r.aggregate, {(0.2 + 0.7) / 2}, 1e-17);
}

TEST(TrimmedMeanTest, NeedsMoreThanTwoFRows) {
  for (auto [n, f] : {std::pair{2, 1}, std::pair{4, 2}, std::pair{1, 1}}) {
    Result<AggregationResult> r =
        make_rule("trimmed-mean", f)->aggregate(random_rows(n, 3, 1), {}, {});
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition);
    EXPECT_EQ(r.status().message(), "trimmed-mean needs n >= 2f+1, got n=" + std::to_string(n) +
                                        ", f=" + std::to_string(f));
  }
}

TEST(TrimmedMeanTest, RejectsMalformedStacks) {
  auto rule = make_rule("trimmed-mean", 1);
  const std::vector<double> bad_weights = {1.0, -1.0, 1.0};
  EXPECT_EQ(rule->aggregate(at::ones({3}), {}, {}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rule->aggregate(byzfl_rows(), bad_weights, {}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(TrimmedMeanTest, HasNoParameters) {
  EXPECT_EQ(try_make_rule("trimmed-mean", 1, {{"beta", "0.2"}}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(TrimmedMeanTest, IgnoresWeights) {
  const std::vector<double> weights = {1, 1, 50};
  expect_values_near(must_aggregate(*make_rule("trimmed-mean", 1), byzfl_rows(), weights).aggregate,
                     {4, 5, 6}, 0.0);
}

TEST(TrimmedMeanTest, NoDiagnosticsWhenNotAsked) {
  AggregationContext context;
  context.diagnostics = false;
  EXPECT_TRUE(
      must_aggregate(*make_rule("trimmed-mean", 1), byzfl_rows(), {}, context).row_weights.empty());
}

TEST(TrimmedMeanTest, PermutationInvariant) {
  expect_permutation_invariant(*make_rule("trimmed-mean", 2), random_rows(7, 5, 12), 1e-15);
}

TEST(TrimmedMeanTest, TranslationEquivariant) {
  expect_translation_equivariant(*make_rule("trimmed-mean", 2), random_rows(7, 5, 13), 7.0, 1e-12);
}

TEST(TrimmedMeanTest, StaysWithinHonestRangeWhenFRowsAreAtAMillion) {
  expect_bounded_by_honest_rows(*make_rule("trimmed-mean", 2), random_rows(7, 6, 14), 2, 0.0);
  expect_bounded_by_honest_rows(*make_rule("trimmed-mean", 3), random_rows(7, 6, 15, at::kFloat), 3,
                                0.0);
}

}  // namespace
}  // namespace cohort
