#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "distance_rule_testing.h"

namespace cohort {
namespace {

using namespace distance_testing;

// a=(0,0) b=(2,1) c=(3,-1) d=(7,0) e=(20,5); squared distances:
//   ab 5  ac 10  ad 49  ae 425  bc 5  bd 26  be 340  cd 17  ce 325  de 194
// f = 2, subsets of 3: abc 10, abd 49, acd 49, bcd 26, every one with e
// >= 194 -> abc, mean (5/3, 0).
// f = 1, subsets of 4: abcd 49, any with e >= 194 -> abcd, mean (3, 0).
at::Tensor five_rows(at::ScalarType dtype = at::kFloat) {
  return rows_of({{0, 0}, {2, 1}, {3, -1}, {7, 0}, {20, 5}}, dtype);
}

TEST(MdaTest, ByzFLVector) {
  // Subsets of 2: {0,1} and {1,2} both have diameter sqrt(27); the
  // lexicographically first wins, as in ByzFL: [2.5, 3.5, 4.5].
  auto rule = built_in_rule("mda", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_values_near(r->aggregate, {2.5, 3.5, 4.5}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.5, 0.5, 0}));
}

TEST(MdaTest, HandWorkedFiveRows) {
  auto two = built_in_rule("mda", 2);
  ASSERT_NE(two, nullptr);
  Result<AggregationResult> r = two->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_values_near(r->aggregate, {5.0 / 3, 0}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2}));
  auto one = built_in_rule("mda", 1);
  ASSERT_NE(one, nullptr);
  r = one->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{3, 0}));
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3}));
}

TEST(MdaTest, Float64) {
  auto rule = built_in_rule("mda", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(at::kDouble), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  expect_values_near(r->aggregate, {5.0 / 3, 0}, 1e-15);
}

TEST(MdaTest, WithoutByzantineRowsIsTheMean) {
  auto rule = built_in_rule("mda", 0);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {32.0 / 5, 1}, 1e-6);
}

TEST(MdaTest, NeedsTwoFPlusOneRows) {
  auto rule = built_in_rule("mda", 1);
  ASSERT_NE(rule, nullptr);
  expect_code(rule->aggregate(rows_of({{1}, {2}}), {}, AggregationContext{}).status(),
              Status::Code::kFailedPrecondition, "mda needs n >= 2f+1, got n=2, f=1");
}

TEST(MdaTest, RefusesTooManySubsets) {
  // C(25, 11) = 4457400 > 1e6 by default.
  auto rule = built_in_rule("mda", 11);
  ASSERT_NE(rule, nullptr);
  expect_code(rule->aggregate(random_rows(25, 2, 3), {}, AggregationContext{}).status(),
              Status::Code::kInvalidArgument, "C(25, 11) = 4457400 subsets");
  // C(5, 2) = 10 fits max_subsets = 10; C(6, 2) = 15 does not.
  auto small = built_in_rule("mda", 2, {{"max_subsets", "10"}});
  ASSERT_NE(small, nullptr);
  EXPECT_TRUE(small->aggregate(five_rows(), {}, AggregationContext{}).ok());
  expect_code(small->aggregate(random_rows(6, 2, 3), {}, AggregationContext{}).status(),
              Status::Code::kInvalidArgument, "C(6, 2) = 15 subsets, more than max_subsets = 10");
}

TEST(MdaTest, RejectsBadMaxSubsets) {
  expect_code(creation_error("mda", 1, {{"max_subsets", "0"}}), Status::Code::kInvalidArgument,
              "max_subsets must be >= 1, got 0");
  expect_code(creation_error("mda", 1, {{"max_subsets", "1e6"}}), Status::Code::kInvalidArgument,
              "'max_subsets'");
}

TEST(MdaTest, IgnoresWeights) {
  auto rule = built_in_rule("mda", 2);
  ASSERT_NE(rule, nullptr);
  const std::vector<double> weights = {1, 1, 8, 1, 1};
  Result<AggregationResult> r = rule->aggregate(five_rows(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {5.0 / 3, 0}, 1e-6);
}

TEST(MdaTest, PermutationInvariant) {
  at::Tensor rows = random_rows(10, 5, 31);
  auto rule = built_in_rule("mda", 3);
  ASSERT_NE(rule, nullptr);
  expect_permutation_invariant(*rule, rows);
}

TEST(MdaTest, TranslationEquivariant) {
  at::Tensor rows = random_rows(10, 5, 32);
  at::Tensor shift = at::linspace(-50, 50, 5, at::kDouble);
  auto rule = built_in_rule("mda", 3);
  ASSERT_NE(rule, nullptr);
  expect_translation_equivariant(*rule, rows, shift);
}

TEST(MdaTest, NeverSelectsRowsFarAway) {
  at::Tensor rows = random_rows(9, 4, 33, at::kFloat);
  rows.narrow(0, 6, 3).fill_(1e6);
  auto rule = built_in_rule("mda", 3);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  expect_within_honest_range(r->aggregate, rows, 6);
  EXPECT_NEAR(sum_of(r->row_weights), 1.0, 1e-12);
}

TEST(MdaTest, DiagnosticsCanBeSkipped) {
  auto rule = built_in_rule("mda", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, without_diagnostics());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->row_weights.empty() && r->selected.empty());
}

}  // namespace
}  // namespace cohort
