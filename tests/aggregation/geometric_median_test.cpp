#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "coordinatewise_test_util.h"

namespace cohort {
namespace {

using namespace coordinatewise_test;

TEST(GeometricMedianTest, ByzflVector) {
  // ByzFL GeometricMedian(nu=0.1, T=3) from z = 0 (research note 5F); the
  // exact geometric median would be [4, 5, 6].
  auto rule = make_rule("geometric-median", 1);
  EXPECT_EQ(rule->name(), "geometric-median");
  AggregationResult r = must_aggregate(*rule, byzfl_rows());
  EXPECT_EQ(r.aggregate.scalar_type(), at::kFloat);
  expect_values_near(r.aggregate, {3.78788764, 4.78788764, 5.78788764}, 1e-6);
  // Row 1 is the closest to the last iterate, so it has the largest beta.
  EXPECT_NEAR(sum_of(r.row_weights), 1.0, 1e-6);
  EXPECT_GT(r.row_weights[1], r.row_weights[0]);
  EXPECT_GT(r.row_weights[0], r.row_weights[2]);  // row 0 is nearer than row 2
}

TEST(GeometricMedianTest, WeightedWeiszfeldStepsByHand) {
  // Rows 0 and 4, weights 1 and 3 (alpha 1/4, 3/4), start = weighted mean 3.
  // Step 1: distances 3, 1; beta = 1/12, 3/4; z = 3 / (10/12) = 3.6.
  // Step 2: distances 3.6, 0.4; beta = 5/72, 135/72; z = 540/140 = 27/7,
  // and row_weights = beta normalised = 5/140, 135/140 = 1/28, 27/28.
  const at::Tensor rows = matrix({{0}, {4}}, at::kFloat);
  const std::vector<double> weights = {1, 3};
  AggregationResult one = must_aggregate(
      *make_rule("geometric-median", 0, {{"start", "mean"}, {"iters", "1"}}), rows, weights);
  expect_values_near(one.aggregate, {3.6}, 1e-6);
  AggregationResult two = must_aggregate(
      *make_rule("geometric-median", 0, {{"start", "mean"}, {"iters", "2"}}), rows, weights);
  expect_values_near(two.aggregate, {27.0 / 7}, 1e-6);
  expect_weights_near(two.row_weights, {1.0 / 28, 27.0 / 28}, 1e-6);
}

TEST(GeometricMedianTest, NuBoundsTheWeightOfANearbyRow) {
  // Same rows and weights, many steps: once z is within nu = 0.1 of 4,
  // beta = (1/4) / z and (3/4) / 0.1 = 7.5, so z = 30 / (1/(4z) + 7.5),
  // i.e. 7.5 z + 1/4 = 30: z = 119/30 = 3.9667, not the exact median 4.
  AggregationResult r =
      must_aggregate(*make_rule("geometric-median", 0, {{"start", "mean"}, {"iters", "50"}}),
                     matrix({{0}, {4}}), std::vector<double>{1, 3});
  expect_values_near(r.aggregate, {119.0 / 30}, 1e-12);
}

TEST(GeometricMedianTest, StartPoints) {
  // Rows 0, 1, 5 (alpha 1/3 each).
  // start = median (1): distances 1, 0 -> nu = 0.1, 4; beta = (1/3)(1, 10, 1/4);
  //   z = (0 + 10 + 5/4) / (45/4) = 1, a fixed point; row_weights 4/45, 40/45, 1/45.
  // start = zero: distances 0 -> 0.1, 1, 5; beta = (1/3)(10, 1, 1/5);
  //   z = (1 + 1) / 11.2 = 5/28 after one step.
  // start = mean (2): distances 2, 1, 3; beta = (1/3)(1/2, 1, 1/3);
  //   z = (1 + 5/3) / (11/6) = 16/11 after one step.
  const at::Tensor rows = matrix({{0}, {1}, {5}});
  AggregationResult median =
      must_aggregate(*make_rule("geometric-median", 0, {{"start", "median"}}), rows);
  expect_values_near(median.aggregate, {1}, 1e-15);
  expect_weights_near(median.row_weights, {4.0 / 45, 40.0 / 45, 1.0 / 45}, 1e-15);
  expect_values_near(
      must_aggregate(*make_rule("geometric-median", 0, {{"iters", "1"}}), rows).aggregate,
      {5.0 / 28}, 1e-15);
  expect_values_near(
      must_aggregate(*make_rule("geometric-median", 0, {{"start", "mean"}, {"iters", "1"}}), rows)
          .aggregate,
      {16.0 / 11}, 1e-15);
}

TEST(GeometricMedianTest, ToleranceStopsEarly) {
  // As in WeightedWeiszfeldStepsByHand: the first step moves z from 3 to 3.6,
  // 0.6 <= tol * max(1, 3) for tol = 1, so 50 allowed steps stop after one.
  AggregationResult r = must_aggregate(
      *make_rule("geometric-median", 0, {{"start", "mean"}, {"iters", "50"}, {"tol", "1"}}),
      matrix({{0}, {4}}), std::vector<double>{1, 3});
  expect_values_near(r.aggregate, {3.6}, 1e-12);
}

TEST(GeometricMedianTest, Float64StaysFloat64) {
  AggregationResult r =
      must_aggregate(*make_rule("geometric-median", 0, {{"start", "mean"}, {"iters", "2"}}),
                     matrix({{0}, {4}}), std::vector<double>{1, 3});
  EXPECT_EQ(r.aggregate.scalar_type(), at::kDouble);
  expect_values_near(r.aggregate, {27.0 / 7}, 1e-15);
  expect_weights_near(r.row_weights, {1.0 / 28, 27.0 / 28}, 1e-15);
}

TEST(GeometricMedianTest, RejectsBadParameters) {
  const std::vector<std::map<std::string, std::string>> bad = {
      {{"nu", "0"}},      {{"nu", "-1"}},     {{"nu", "x"}},
      {{"iters", "0"}},   {{"iters", "1.5"}}, {{"start", "previous"}},
      {{"start", "one"}}, {{"tol", "-0.1"}},  {{"tau", "1"}}};
  for (const auto& params : bad) {
    Result<std::unique_ptr<AggregationRule>> r = try_make_rule("geometric-median", 0, params);
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << params.begin()->first;
  }
  EXPECT_EQ(try_make_rule("geometric-median", 0, {{"nu", "0"}}).status().message(),
            "geometric-median needs nu > 0, got nu=0");
  EXPECT_EQ(try_make_rule("geometric-median", 0, {{"start", "one"}}).status().message(),
            "geometric-median needs start = zero | mean | median, got start='one'");
}

TEST(GeometricMedianTest, RejectsMalformedStacks) {
  auto rule = make_rule("geometric-median", 0);
  const std::vector<double> two_weights = {1, 1};
  EXPECT_EQ(rule->aggregate(at::ones({3}), {}, {}).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(rule->aggregate(byzfl_rows(), two_weights, {}).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(GeometricMedianTest, NoDiagnosticsWhenNotAsked) {
  AggregationContext context;
  context.diagnostics = false;
  EXPECT_TRUE(must_aggregate(*make_rule("geometric-median", 0), byzfl_rows(), {}, context)
                  .row_weights.empty());
}

TEST(GeometricMedianTest, PermutationInvariant) {
  auto rule = make_rule("geometric-median", 0, {{"iters", "5"}});
  expect_permutation_invariant(*rule, random_rows(7, 5, 31), 1e-12, {1, 2, 3, 4, 5, 6, 7});
}

TEST(GeometricMedianTest, TranslationEquivariantFromTheMeanOrMedian) {
  for (const char* start : {"mean", "median"}) {
    auto rule = make_rule("geometric-median", 0, {{"start", start}, {"iters", "5"}});
    expect_translation_equivariant(*rule, random_rows(7, 5, 32), 3.0, 1e-12);
  }
}

TEST(GeometricMedianTest, FarRowsPullByAtMostOneUnit) {
  // 6 honest rows plus 2 at 1e6: a far row's beta is alpha / ||z - x||, so
  // beta x has norm about alpha and the two pull z by about 2 alpha /
  // sum(beta), under half a unit per coordinate here; the mean would move
  // by 2.5e5.
  expect_bounded_by_honest_rows(*make_rule("geometric-median", 2), random_rows(8, 4, 33), 2, 1.0);
  expect_bounded_by_honest_rows(*make_rule("geometric-median", 2, {{"iters", "20"}}),
                                random_rows(8, 4, 34, at::kFloat), 2, 1.0);
}

}  // namespace
}  // namespace cohort
