#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "coordinatewise_test_util.h"

namespace cohort {
namespace {

using namespace coordinatewise_test;

AggregationContext with_root(std::vector<double> root, at::ScalarType dtype = at::kFloat) {
  AggregationContext context;
  context.root_update = at::tensor(root, at::kDouble).to(dtype);
  return context;
}

// g0 = [1, 0] and rows with cosines 1, 0, -1, 3/5 and a zero row:
// TS = 1, 0, 0, 0.6, 0; the rescaled rows with TS > 0 are [1, 0] and
// [0.6, 0.8], so the output is ([1, 0] + 0.6 [0.6, 0.8]) / 1.6 = [0.85, 0.3].
at::Tensor mixed_rows(at::ScalarType dtype = at::kFloat) {
  return matrix({{2, 0}, {0, 3}, {-1, 0}, {3, 4}, {0, 0}}, dtype);
}

TEST(FLTrustTest, TrustScoresAndRescaledRowsByHand) {
  auto rule = make_rule("fltrust", 1);
  EXPECT_EQ(rule->name(), "fltrust");
  AggregationResult r = must_aggregate(*rule, mixed_rows(), {}, with_root({1, 0}));
  expect_values_near(r.aggregate, {0.85, 0.3}, 1e-6);
  expect_weights_near(r.scores, {1, 0, 0, 0.6, 0}, 1e-6);
  expect_weights_near(r.row_weights, {0.625, 0, 0, 0.375, 0}, 1e-6);
}

TEST(FLTrustTest, RowsAreRescaledToTheRootNorm) {
  // g0 = [2, 0]: same scores, every rescaled row twice as long: [1.7, 0.6].
  AggregationResult r =
      must_aggregate(*make_rule("fltrust", 0), mixed_rows(), {}, with_root({2, 0}));
  expect_values_near(r.aggregate, {1.7, 0.6}, 1e-6);
}

TEST(FLTrustTest, ByzflInputWithAMeanRoot) {
  // g0 = [4, 5, 6] (the honest mean): every cosine is positive. Each row is
  // rescaled to ||g0||, so row i enters as cos_i ||g0|| / ||x_i|| x_i =
  // (x_i.g0 / ||x_i||^2) x_i. With ||x||^2 = 14, 77, 194 and x.g0 = 32, 77, 122:
  // cos = 32/sqrt(1078), 1, 122/sqrt(14938) = 0.974632, 1, 0.998191 (sum 2.972823);
  // numerator = 16/7 [1,2,3] + [4,5,6] + 61/97 [7,8,9]
  //           = [10.687776, 14.602356, 18.516937];
  // output = numerator / 2.972823 = [3.595161, 4.911950, 6.228739].
  AggregationResult r =
      must_aggregate(*make_rule("fltrust", 1), byzfl_rows(), {}, with_root({4, 5, 6}));
  expect_values_near(r.aggregate, {3.595161, 4.911950, 6.228739}, 2e-6);
  expect_weights_near(r.scores, {0.974632, 1, 0.998191}, 2e-6);
}

TEST(FLTrustTest, NoTrustedRowGivesZeros) {
  // Cosines -1 and 0: every TS is 0, so the output, scores and row_weights are 0.
  AggregationResult r = must_aggregate(
      *make_rule("fltrust", 0), matrix({{-1, 0}, {0, 1}}, at::kFloat), {}, with_root({1, 0}));
  expect_values_near(r.aggregate, {0, 0}, 0.0);
  expect_weights_near(r.scores, {0, 0}, 0.0);
  expect_weights_near(r.row_weights, {0, 0}, 0.0);
}

TEST(FLTrustTest, ZeroRootUpdateTrustsNoRow) {
  AggregationResult r =
      must_aggregate(*make_rule("fltrust", 0), mixed_rows(), {}, with_root({0, 0}));
  expect_values_near(r.aggregate, {0, 0}, 0.0);
}

TEST(FLTrustTest, Float64StaysFloat64WithAFloat32Root) {
  AggregationResult r =
      must_aggregate(*make_rule("fltrust", 0), mixed_rows(at::kDouble), {}, with_root({1, 0}));
  EXPECT_EQ(r.aggregate.scalar_type(), at::kDouble);
  expect_values_near(r.aggregate, {0.85, 0.3}, 1e-15);
}

TEST(FLTrustTest, NeedsARootUpdateWithDValues) {
  auto rule = make_rule("fltrust", 0);
  Result<AggregationResult> none = rule->aggregate(mixed_rows(), {}, {});
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(none.status().message(), "fltrust needs context.root_update (a vector of d=2 values)");
  Result<AggregationResult> wrong = rule->aggregate(mixed_rows(), {}, with_root({1, 0, 0}));
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(wrong.status().message(),
            "fltrust: context.root_update has 3 values, the updates have d=2");
}

TEST(FLTrustTest, RejectsMalformedStacksAndParameters) {
  auto rule = make_rule("fltrust", 0);
  EXPECT_EQ(rule->aggregate(at::ones({2}), {}, with_root({1, 0})).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(try_make_rule("fltrust", 0, {{"tau", "1"}}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(FLTrustTest, IgnoresWeights) {
  const std::vector<double> weights = {1, 5, 5, 9, 1};
  expect_values_near(
      must_aggregate(*make_rule("fltrust", 0), mixed_rows(), weights, with_root({1, 0})).aggregate,
      {0.85, 0.3}, 1e-6);
}

TEST(FLTrustTest, NoDiagnosticsWhenNotAsked) {
  AggregationContext context = with_root({1, 0});
  context.diagnostics = false;
  AggregationResult r = must_aggregate(*make_rule("fltrust", 0), mixed_rows(), {}, context);
  EXPECT_TRUE(r.row_weights.empty());
  EXPECT_TRUE(r.scores.empty());
}

TEST(FLTrustTest, PermutationInvariant) {
  AggregationContext context;
  context.root_update = random_rows(1, 6, 51).reshape({6});
  expect_permutation_invariant(*make_rule("fltrust", 0), random_rows(7, 6, 52), 1e-12, {}, context);
}

TEST(FLTrustTest, InvariantToScalingTheRows) {
  // Not translation-equivariant (cosines change), but rescaling every row by
  // c > 0 changes neither the cosines nor the rescaled rows.
  AggregationContext context;
  context.root_update = random_rows(1, 6, 53).reshape({6});
  auto rule = make_rule("fltrust", 0);
  const at::Tensor rows = random_rows(7, 6, 54);
  expect_values_near(must_aggregate(*rule, rows * 1000.0, {}, context).aggregate,
                     values_of(must_aggregate(*rule, rows, {}, context).aggregate), 1e-12);
}

TEST(FLTrustTest, FarRowsCannotPushPastTheRootNorm) {
  // The output is a convex combination of rows of norm ||g0||.
  AggregationContext context = with_root({3, 4, 0, 0}, at::kDouble);
  at::Tensor rows = random_rows(8, 4, 55);
  rows.narrow(0, 6, 2).fill_(1e6);
  AggregationResult r = must_aggregate(*make_rule("fltrust", 2), rows, {}, context);
  EXPECT_LE(at::linalg_vector_norm(r.aggregate).item<double>(), 5.0 + 1e-12);
  EXPECT_NEAR(sum_of(r.row_weights), 1.0, 1e-12);
}

}  // namespace
}  // namespace cohort
