#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "distance_rule_testing.h"

namespace cohort {
namespace {

using namespace distance_testing;

// Rows (x, 2x + 1) for x = 0, 1, 3, 7, 20: every squared distance is
// 5 (x_i - x_j)^2. With n = 5, f = 1 each row sums its n-f-2 = 2 nearest:
//   x=0: 1 + 9 = 10     x=1: 1 + 4 = 5     x=3: 4 + 9 = 13
//   x=7: 16 + 36 = 52   x=20: 169 + 289 = 458
// times 5: scores 50, 25, 65, 260, 2290; Krum returns the row x=1: (1, 3).
at::Tensor five_rows(at::ScalarType dtype = at::kFloat) {
  return rows_of({{0, 1}, {1, 3}, {3, 7}, {7, 15}, {20, 41}}, dtype);
}

TEST(KrumTest, ByzFLVectorViolatesTheNeighbourCountPrecondition) {
  // ByzFL's Krum(1) returns [1, 2, 3] here with n-f-1 neighbours; with the
  // paper's n-f-2 = 0 neighbours every score would be 0, so n >= 2f+3 fails.
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}), {}, AggregationContext{});
  ASSERT_FALSE(r.ok());
  expect_code(r.status(), Status::Code::kFailedPrecondition, "krum needs n >= 2f+3, got n=3, f=1");
}

TEST(KrumTest, HandWorkedFiveRows) {
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kFloat);
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{1, 3}));
  ASSERT_EQ(r->scores.size(), 5u);
  const std::vector<double> scores = {50, 25, 65, 260, 2290};
  for (size_t i = 0; i < 5; ++i) EXPECT_NEAR(r->scores[i], scores[i], 1e-3) << i;
  EXPECT_EQ(r->selected, (std::vector<int64_t>{1}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0, 1, 0, 0, 0}));
}

TEST(KrumTest, Float64StaysFloat64) {
  // The five rows scaled by 0.1 (not exact in binary): the winner is
  // still the second row, returned bit for bit.
  at::Tensor rows = five_rows(at::kDouble) * 0.1;
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::equal(r->aggregate, rows[1]));
  EXPECT_NEAR(r->scores[1], 0.25, 1e-12);
}

TEST(KrumTest, TiesGoToTheLowestIndex) {
  // 1-D rows 0, 0, 10, 10, 100 with f = 1 (2 neighbours): rows 0..3 all
  // score 0 + 100 = 100 (row 4: 90^2 + 90^2), so the first row wins.
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{0}, {0}, {10}, {10}, {100}}), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0}));
  EXPECT_EQ(r->scores, (std::vector<double>{100, 100, 100, 100, 2 * 90 * 90}));
}

TEST(KrumTest, NeedsTwoFPlusThreeRows) {
  // n = 2f+2 fails, n = 2f+3 works.
  for (int f : {0, 1, 2}) {
    auto rule = built_in_rule("krum", f);
    ASSERT_NE(rule, nullptr);
    Result<AggregationResult> r =
        rule->aggregate(random_rows(2 * f + 2, 3, 1), {}, AggregationContext{});
    ASSERT_FALSE(r.ok()) << f;
    expect_code(r.status(), Status::Code::kFailedPrecondition, "krum needs n >= 2f+3");
    EXPECT_TRUE(rule->aggregate(random_rows(2 * f + 3, 3, 1), {}, AggregationContext{}).ok());
  }
}

TEST(KrumTest, RejectsMalformedInputAndUnknownParameters) {
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  EXPECT_EQ(rule->aggregate(at::ones({5}), {}, AggregationContext{}).status().code(),
            Status::Code::kInvalidArgument);
  const std::vector<double> too_few = {1, 1};
  EXPECT_EQ(rule->aggregate(five_rows(), too_few, AggregationContext{}).status().code(),
            Status::Code::kInvalidArgument);
  expect_code(creation_error("krum", 1, {{"m", "2"}}), Status::Code::kInvalidArgument, "'m'");
}

TEST(KrumTest, IgnoresWeights) {
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  const std::vector<double> weights = {100, 1, 100, 100, 100};
  Result<AggregationResult> r = rule->aggregate(five_rows(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{1, 3}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0, 1, 0, 0, 0}));
}

TEST(KrumTest, PermutationInvariant) {
  at::Tensor rows = random_rows(9, 6, 7);
  auto rule = built_in_rule("krum", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> base = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(base.ok());
  for (const auto& perm : some_permutations(9)) {
    Result<AggregationResult> r = rule->aggregate(permuted(rows, perm), {}, AggregationContext{});
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(at::equal(r->aggregate, base->aggregate));
    for (size_t i = 0; i < perm.size(); ++i) {
      EXPECT_NEAR(r->scores[i], base->scores[perm[i]], 1e-9);
    }
  }
}

TEST(KrumTest, TranslationEquivariant) {
  at::Tensor rows = random_rows(9, 6, 8);
  at::Tensor shift = at::linspace(-50, 50, 6, at::kDouble);
  auto rule = built_in_rule("krum", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> base = rule->aggregate(rows, {}, AggregationContext{});
  Result<AggregationResult> moved = rule->aggregate(rows + shift, {}, AggregationContext{});
  ASSERT_TRUE(base.ok() && moved.ok());
  EXPECT_EQ(moved->selected, base->selected);
  EXPECT_TRUE(at::allclose(moved->aggregate, base->aggregate + shift, 0, 1e-12));
}

TEST(KrumTest, NeverSelectsRowsFarAway) {
  // f = 2 rows at 1e6 (identical, so each is the other's nearest).
  at::Tensor rows = random_rows(9, 4, 9, at::kFloat);
  rows.narrow(0, 7, 2).fill_(1e6);
  auto rule = built_in_rule("krum", 2);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows, {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->selected.size(), 1u);
  EXPECT_LT(r->selected[0], 7);
  expect_within_honest_range(r->aggregate, rows, 7);
}

TEST(KrumTest, DiagnosticsCanBeSkipped) {
  auto rule = built_in_rule("krum", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(five_rows(), {}, without_diagnostics());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{1, 3}));
  EXPECT_TRUE(r->row_weights.empty());
  EXPECT_TRUE(r->scores.empty());
  EXPECT_TRUE(r->selected.empty());
}

}  // namespace
}  // namespace cohort
