#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "distance_rule_testing.h"

namespace cohort {
namespace {

using namespace distance_testing;

// n = 7, f = 1: theta = 5 rows are selected, then beta = 3 values per
// coordinate are averaged. Column x = 0, 1, 3, 4, 9, 13, 100 drives the
// selection; column y (thousandths) moves any score by < 3e-4 and every
// margin below is >= 1, except the exact ties of mutual nearest pairs.
// Iterated Krum (max(1, n'-f-2) nearest, squared distances in x):
//   n'=7, 4 nearest: 0:1+9+16+81=107  1:1+4+9+64=78  3:1+4+9+36=50
//                    4:1+9+16+25=51   9:16+25+36+64=141  13:341  100:huge -> 3
//   n'=6, 3 nearest: 0:1+16+81=98  1:1+9+64=74  4:9+16+25=50  9:105  13:241 -> 4
//   n'=5, 2 nearest: 0:1+81=82  1:1+64=65  9:16+64=80  13:16+144=160 -> 1
//   n'=4, 1 nearest: 0:81  9:16  13:16 (tie: lower index) -> 9
//   n'=3, 1 nearest: 0:169  13:169 (tie: lower index) -> 0
// Selected rows 0..4. x values 0, 1, 3, 4, 9: median 3, distances
// 3, 2, 0, 1, 6 -> rows 2, 3, 1 -> (3 + 4 + 1) / 3 = 8/3.
// y values 4, -3, 1, 2, -1: median 1, distances 3, 4, 0, 1, 2
// -> rows 2, 3, 4 -> (1 + 2 - 1) / 3 = 2/3 (thousandths).
// Row shares of the 6 averaged values: row 1: 1, row 2: 2, row 3: 2, row 4: 1.
at::Tensor seven_rows(at::ScalarType dtype = at::kFloat) {
  return rows_of({{0, 4e-3}, {1, -3e-3}, {3, 1e-3}, {4, 2e-3}, {9, -1e-3}, {13, 0}, {100, 2e-3}},
                 dtype);
}

TEST(BulyanTest, HandWorkedSevenRows) {
  auto rule = built_in_rule("bulyan", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(seven_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kFloat);
  expect_values_near(r->aggregate, {8.0 / 3, 2e-3 / 3}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  const std::vector<double> shares = {0, 1.0 / 6, 2.0 / 6, 2.0 / 6, 1.0 / 6, 0, 0};
  ASSERT_EQ(r->row_weights.size(), 7u);
  for (size_t i = 0; i < 7; ++i) EXPECT_NEAR(r->row_weights[i], shares[i], 1e-12) << i;
  // Scores: the first Krum round over all seven rows.
  const std::vector<double> scores = {107, 78, 50, 51, 141, 341};
  ASSERT_EQ(r->scores.size(), 7u);
  for (size_t i = 0; i < scores.size(); ++i) EXPECT_NEAR(r->scores[i], scores[i], 1e-3) << i;
}

TEST(BulyanTest, Float64) {
  auto rule = built_in_rule("bulyan", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(seven_rows(at::kDouble), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  expect_values_near(r->aggregate, {8.0 / 3, 2e-3 / 3}, 1e-15);
}

TEST(BulyanTest, WithoutByzantineRowsIsTheMean) {
  // f = 0: theta = beta = n, every value is averaged: ByzFL's rows give
  // [4, 5, 6].
  auto rule = built_in_rule("bulyan", 0);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_values_near(r->aggregate, {4, 5, 6}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2}));
}

TEST(BulyanTest, NeedsFourFPlusThreeRows) {
  // ByzFL's 3-row vector with f = 1, then n = 4f+2 for f = 0, 1, 2.
  auto one = built_in_rule("bulyan", 1);
  ASSERT_NE(one, nullptr);
  expect_code(one->aggregate(rows_of({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}), {}, AggregationContext{})
                  .status(),
              Status::Code::kFailedPrecondition, "bulyan needs n >= 4f+3, got n=3, f=1");
  for (int f : {0, 1, 2}) {
    auto rule = built_in_rule("bulyan", f);
    ASSERT_NE(rule, nullptr);
    expect_code(rule->aggregate(random_rows(4 * f + 2, 3, 2), {}, AggregationContext{}).status(),
                Status::Code::kFailedPrecondition, "bulyan needs n >= 4f+3");
    EXPECT_TRUE(rule->aggregate(random_rows(4 * f + 3, 3, 2), {}, AggregationContext{}).ok());
  }
}

TEST(BulyanTest, RejectsMalformedInputAndUnknownParameters) {
  auto rule = built_in_rule("bulyan", 1);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->aggregate(at::ones({7, 2}, at::kInt), {}, AggregationContext{}).status().code(),
            Status::Code::kInvalidArgument);
  expect_code(creation_error("bulyan", 1, {{"beta", "2"}}), Status::Code::kInvalidArgument,
              "'beta'");
}

TEST(BulyanTest, IgnoresWeights) {
  auto rule = built_in_rule("bulyan", 1);
  ASSERT_NE(rule, nullptr);
  const std::vector<double> weights = {9, 1, 1, 1, 1, 9, 9};
  Result<AggregationResult> r = rule->aggregate(seven_rows(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {8.0 / 3, 2e-3 / 3}, 1e-6);
}

// With f <= 2 the last Krum rounds use one neighbour, where the two rows of
// the closest pair always tie and the lower index wins, so the selection
// depends on the order; from f = 3 on they use >= 2 and random rows do not
// tie.
TEST(BulyanTest, PermutationInvariantWithoutTies) {
  at::Tensor rows = random_rows(15, 4, 23);
  auto rule = built_in_rule("bulyan", 3);
  ASSERT_NE(rule, nullptr);
  expect_permutation_invariant(*rule, rows);
}

TEST(BulyanTest, TranslationEquivariant) {
  at::Tensor rows = random_rows(15, 4, 24);
  at::Tensor shift = at::linspace(-50, 50, 4, at::kDouble);
  auto rule = built_in_rule("bulyan", 3);
  ASSERT_NE(rule, nullptr);
  expect_translation_equivariant(*rule, rows, shift);
}

TEST(BulyanTest, NeverSelectsALoneRowFarAway) {
  at::Tensor rows = random_rows(7, 4, 25, at::kFloat);
  rows[6].fill_(1e6);
  auto rule = built_in_rule("bulyan", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->selected.size(), 5u);
  EXPECT_LT(r->selected.back(), 6);
  expect_within_honest_range(r->aggregate, rows, 6);
}

TEST(BulyanTest, FilteringStepDiscardsSelectedFarRows) {
  // f = 2 identical rows at 1e6: in the last Krum round (n' = 2f+1, one
  // neighbour) each scores 0 against its twin, so one of them is selected,
  // as in Flower; the coordinate step then never averages its values.
  at::Tensor rows = random_rows(11, 4, 26, at::kFloat);
  rows.narrow(0, 9, 2).fill_(1e6);
  auto rule = built_in_rule("bulyan", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->selected.size(), 7u);
  EXPECT_EQ(r->selected.back(), 9);
  EXPECT_EQ(r->row_weights[9], 0.0);
  EXPECT_EQ(r->row_weights[10], 0.0);
  EXPECT_NEAR(sum_of(r->row_weights), 1.0, 1e-12);
  expect_within_honest_range(r->aggregate, rows, 9);
}

TEST(BulyanTest, DiagnosticsCanBeSkipped) {
  auto rule = built_in_rule("bulyan", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(seven_rows(), {}, without_diagnostics());
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {8.0 / 3, 2e-3 / 3}, 1e-6);
  EXPECT_TRUE(r->row_weights.empty() && r->scores.empty() && r->selected.empty());
}

}  // namespace
}  // namespace cohort
