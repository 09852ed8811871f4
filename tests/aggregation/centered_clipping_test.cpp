#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "coordinatewise_test_util.h"

namespace cohort {
namespace {

using namespace coordinatewise_test;

AggregationContext with_previous(at::Tensor previous) {
  AggregationContext context;
  context.previous = std::move(previous);
  return context;
}

TEST(CenteredClippingTest, ByzflVector) {
  // tau = 100, one step from 0: every ||x_i|| < 100, nothing is clipped and
  // v = mean = [4, 5, 6].
  auto rule = make_rule("centered-clipping", 1, {{"start", "zero"}});
  EXPECT_EQ(rule->name(), "centered-clipping");
  AggregationResult r = must_aggregate(*rule, byzfl_rows());
  expect_values_near(r.aggregate, {4, 5, 6}, 1e-6);
  expect_weights_near(r.scores, {1, 1, 1}, 0.0);
  expect_weights_near(r.row_weights, {1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-6);
}

TEST(CenteredClippingTest, ClipsEachOffsetToTau) {
  // Rows [3,4], [0,0], [0,1], tau = 1, from 0: norms 5, 0, 1, factors
  // 1/5, 1, 1: clipped [0.6, 0.8], [0, 0], [0, 1]; v = [0.2, 0.6].
  // row_weights = (1/5, 1, 1) / 2.2 = (1, 5, 5) / 11.
  AggregationResult r =
      must_aggregate(*make_rule("centered-clipping", 0, {{"tau", "1"}, {"start", "zero"}}),
                     matrix({{3, 4}, {0, 0}, {0, 1}}, at::kFloat));
  expect_values_near(r.aggregate, {0.2, 0.6}, 1e-6);
  expect_weights_near(r.scores, {0.2, 1, 1}, 1e-6);
  expect_weights_near(r.row_weights, {1.0 / 11, 5.0 / 11, 5.0 / 11}, 1e-6);
}

TEST(CenteredClippingTest, IteratesFromTheLastCentre) {
  // Rows 0, 0, 10, tau = 1, from 0.
  // Step 1: offsets 0, 0, 10; factors 1, 1, 1/10; v = (0 + 0 + 1) / 3 = 1/3.
  // Step 2: offsets -1/3, -1/3, 29/3; factors 1, 1, 3/29; clipped -1/3,
  //   -1/3, 1; v = 1/3 + (1/3) / 3 = 4/9.
  // scores: mean factors 1, 1, (1/10 + 3/29) / 2 = 59/580; row_weights
  //   = scores / (1219/580) = 580/1219, 580/1219, 59/1219.
  const at::Tensor rows = matrix({{0}, {0}, {10}});
  std::map<std::string, std::string> params = {{"tau", "1"}, {"start", "zero"}, {"iters", "1"}};
  expect_values_near(must_aggregate(*make_rule("centered-clipping", 0, params), rows).aggregate,
                     {1.0 / 3}, 1e-15);
  params["iters"] = "2";
  AggregationResult two = must_aggregate(*make_rule("centered-clipping", 0, params), rows);
  EXPECT_EQ(two.aggregate.scalar_type(), at::kDouble);
  expect_values_near(two.aggregate, {4.0 / 9}, 1e-15);
  expect_weights_near(two.scores, {1, 1, 59.0 / 580}, 1e-15);
  expect_weights_near(two.row_weights, {580.0 / 1219, 580.0 / 1219, 59.0 / 1219}, 1e-15);
}

TEST(CenteredClippingTest, StartsFromThePreviousAggregateByDefault) {
  // Rows 0, 2, 100, tau = 2, one step.
  // previous = 1: offsets -1, 1, 99 -> -1, 1, 2; v = 1 + 2/3 = 5/3.
  // no previous -> 0: offsets 0, 2, 100 -> 0, 2, 2; v = 4/3.
  // median 2: offsets -2, 0, 98 -> -2, 0, 2; v = 2.
  // mean 34: offsets -34, -32, 66 -> -2, -2, 2; v = 34 - 2/3 = 100/3.
  const at::Tensor rows = matrix({{0}, {2}, {100}});
  auto by_default = make_rule("centered-clipping", 0, {{"tau", "2"}});
  expect_values_near(
      must_aggregate(*by_default, rows, {}, with_previous(matrix({{1}}).reshape({1}))).aggregate,
      {5.0 / 3}, 1e-15);
  expect_values_near(must_aggregate(*by_default, rows).aggregate, {4.0 / 3}, 1e-15);
  auto from_median = make_rule("centered-clipping", 0, {{"tau", "2"}, {"start", "median"}});
  expect_values_near(must_aggregate(*from_median, rows).aggregate, {2}, 1e-15);
  auto from_mean = make_rule("centered-clipping", 0, {{"tau", "2"}, {"start", "mean"}});
  expect_values_near(must_aggregate(*from_mean, rows).aggregate, {100.0 / 3}, 1e-13);
}

TEST(CenteredClippingTest, PreviousIsConvertedToTheRowsDtype) {
  // A float64 previous of [1, 1, 1] with float32 rows; tau = 100 keeps every
  // offset, so v = the mean whatever the start.
  AggregationResult r = must_aggregate(*make_rule("centered-clipping", 0), byzfl_rows(), {},
                                       with_previous(at::ones({3}, at::kDouble)));
  EXPECT_EQ(r.aggregate.scalar_type(), at::kFloat);
  expect_values_near(r.aggregate, {4, 5, 6}, 1e-6);
}

TEST(CenteredClippingTest, PreviousMustHaveDValues) {
  Result<AggregationResult> r =
      make_rule("centered-clipping", 0)->aggregate(byzfl_rows(), {}, with_previous(at::zeros({2})));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(r.status().message(),
            "centered-clipping: context.previous has 2 values, the updates have d=3");
}

TEST(CenteredClippingTest, IgnoresWeights) {
  const std::vector<double> weights = {1, 1, 100};
  AggregationResult r =
      must_aggregate(*make_rule("centered-clipping", 0, {{"tau", "2"}, {"start", "zero"}}),
                     matrix({{0}, {2}, {100}}), weights);
  expect_values_near(r.aggregate, {4.0 / 3}, 1e-15);
}

TEST(CenteredClippingTest, RejectsBadParameters) {
  const std::vector<std::map<std::string, std::string>> bad = {
      {{"tau", "0"}},    {{"tau", "-3"}},      {{"tau", "inf"}}, {{"iters", "0"}},
      {{"iters", "-1"}}, {{"start", "x.npy"}}, {{"nu", "0.1"}}};
  for (const auto& params : bad) {
    Result<std::unique_ptr<AggregationRule>> r = try_make_rule("centered-clipping", 0, params);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << params.begin()->first;
  }
  EXPECT_EQ(try_make_rule("centered-clipping", 0, {{"tau", "0"}}).status().message(),
            "centered-clipping needs tau > 0, got tau=0");
  EXPECT_EQ(try_make_rule("centered-clipping", 0, {{"start", "x"}}).status().message(),
            "centered-clipping needs start = zero | mean | median | previous, got start='x'");
}

TEST(CenteredClippingTest, RejectsMalformedStacks) {
  auto rule = make_rule("centered-clipping", 0);
  EXPECT_EQ(rule->aggregate(at::ones({3}), {}, {}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rule->aggregate(at::Tensor(), {}, {}).status().code(), Status::Code::kInvalidArgument);
}

TEST(CenteredClippingTest, NoDiagnosticsWhenNotAsked) {
  AggregationContext context;
  context.diagnostics = false;
  AggregationResult r =
      must_aggregate(*make_rule("centered-clipping", 0), byzfl_rows(), {}, context);
  EXPECT_TRUE(r.row_weights.empty());
  EXPECT_TRUE(r.scores.empty());
}

TEST(CenteredClippingTest, PermutationInvariant) {
  auto rule = make_rule("centered-clipping", 0, {{"tau", "0.5"}, {"iters", "3"}});
  expect_permutation_invariant(*rule, random_rows(7, 5, 41), 1e-12);
}

TEST(CenteredClippingTest, TranslationEquivariantFromTheMeanOrMedian) {
  for (const char* start : {"mean", "median"}) {
    auto rule =
        make_rule("centered-clipping", 0, {{"tau", "0.5"}, {"iters", "3"}, {"start", start}});
    expect_translation_equivariant(*rule, random_rows(7, 5, 42), 6.0, 1e-12);
  }
}

TEST(CenteredClippingTest, FarRowsMoveTheCentreByAtMostTauPerStep) {
  // From the median, each of 3 steps lets the 2 far rows of 8 move v by at
  // most tau * 2/8 = 0.25 (tau = 1): within 0.75 of the honest range.
  auto rule =
      make_rule("centered-clipping", 2, {{"tau", "1"}, {"iters", "3"}, {"start", "median"}});
  expect_bounded_by_honest_rows(*rule, random_rows(8, 4, 43), 2, 0.75);
  expect_bounded_by_honest_rows(*rule, random_rows(8, 4, 44, at::kFloat), 2, 0.75);
}

}  // namespace
}  // namespace cohort
