#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "distance_rule_testing.h"

namespace cohort {
namespace {

using namespace distance_testing;

// Rows (1, 1) + t (0.6, 0.8) for t = -2, -1, 0, 1, 12: centred on the mean
// (t = 2) they are (t - 2) u with u = (0.6, 0.8), so v = +-u and the scores
// are (t - 2)^2 = 16, 9, 4, 1, 100. f = 1 keeps the 4 lowest, t = -2..1,
// whose mean t = -0.5 gives (1 - 0.3, 1 - 0.4) = (0.7, 0.6). With d = 2 <= b
// every iteration sees both coordinates, so the seed plays no part.
at::Tensor rows_on_a_line(at::ScalarType dtype = at::kFloat) {
  return rows_of({{-0.2, -0.6}, {0.4, 0.2}, {1, 1}, {1.6, 1.8}, {8.2, 10.6}}, dtype);
}

TEST(DncTest, HandWorkedRowsOnALine) {
  auto rule = built_in_rule("dnc", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows_on_a_line(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kFloat);
  expect_values_near(r->aggregate, {0.7, 0.6}, 1e-6);
  EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.25, 0.25, 0.25, 0.25, 0}));
}

TEST(DncTest, HandWorkedTwoAxes) {
  // (-4, 0), (4, 0), (0, 1), (0, -1), (0, 0) have mean 0 and C^T C =
  // diag(32, 2): v = (+-1, 0), scores 16, 16, 0, 0, 0. f = 2 keeps the
  // three zeros: mean (0, 0). Moved by (5, 7) the output moves with it.
  auto rule = built_in_rule("dnc", 2);
  ASSERT_NE(rule, nullptr);
  at::Tensor rows = rows_of({{-4, 0}, {4, 0}, {0, 1}, {0, -1}, {0, 0}});
  for (double dx : {0.0, 5.0}) {
    at::Tensor shift = at::tensor({dx, 7.0 * dx / 5.0}, at::kFloat);
    Result<AggregationResult> r = rule->aggregate(rows + shift, {}, AggregationContext{});
    ASSERT_TRUE(r.ok()) << r.status().to_string();
    expect_values_near(r->aggregate, {dx, 7.0 * dx / 5.0}, 1e-5);
    EXPECT_EQ(r->selected, (std::vector<int64_t>{2, 3, 4}));
  }
}

TEST(DncTest, Float64) {
  auto rule = built_in_rule("dnc", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_on_a_line(at::kDouble), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  expect_values_near(r->aggregate, {0.7, 0.6}, 1e-14);
}

TEST(DncTest, EmptyIntersectionGivesZeros) {
  // (0, 0), (1, 10), (2, 5), f = 2 keeps one row per iteration. Sampling
  // coordinate 0 (values 0, 1, 2, centred -1, 0, 1) keeps row 1; sampling
  // coordinate 1 (0, 10, 5, centred -5, 5, 0) keeps row 2. Over 20 draws of
  // b = 1 coordinate both appear (all alike has probability 2^-19), so no
  // row is kept every time.
  auto rule = built_in_rule("dnc", 2, {{"b", "1"}, {"niters", "20"}});
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r =
      rule->aggregate(rows_of({{0, 0}, {1, 10}, {2, 5}}), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{0, 0}));
  EXPECT_TRUE(r->selected.empty());
  EXPECT_EQ(r->row_weights, (std::vector<double>{0, 0, 0}));
}

TEST(DncTest, SameSeedSameResult) {
  at::Tensor rows = random_rows(12, 300, 41, at::kFloat);
  auto rule = built_in_rule("dnc", 3, {{"b", "20"}});
  ASSERT_NE(rule, nullptr);
  AggregationContext context;
  context.seed = 1234;
  Result<AggregationResult> a = rule->aggregate(rows, {}, context);
  Result<AggregationResult> b = rule->aggregate(rows, {}, context);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(at::equal(a->aggregate, b->aggregate));
  EXPECT_EQ(a->selected, b->selected);
}

TEST(DncTest, ZeroFilteringIsTheMean) {
  auto rule = built_in_rule("dnc", 2, {{"c", "0"}});
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows_on_a_line(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok());
  // Mean t = 2: (1 + 1.2, 1 + 1.6).
  expect_values_near(r->aggregate, {2.2, 2.6}, 1e-6);
}

TEST(DncTest, Preconditions) {
  auto rule = built_in_rule("dnc", 3);
  ASSERT_NE(rule, nullptr);
  expect_code(rule->aggregate(random_rows(3, 4, 1), {}, AggregationContext{}).status(),
              Status::Code::kFailedPrecondition, "dnc needs n > c*f, got n=3, f=3, c=1");
  auto doubled = built_in_rule("dnc", 2, {{"c", "2"}});
  ASSERT_NE(doubled, nullptr);
  expect_code(doubled->aggregate(random_rows(4, 4, 1), {}, AggregationContext{}).status(),
              Status::Code::kFailedPrecondition, "c=2");
  expect_code(rule->aggregate(at::zeros({5, 0}), {}, AggregationContext{}).status(),
              Status::Code::kInvalidArgument, "no coordinates (d = 0)");
}

TEST(DncTest, RejectsBadParameters) {
  expect_code(creation_error("dnc", 1, {{"niters", "0"}}), Status::Code::kInvalidArgument,
              "niters must be >= 1, got 0");
  expect_code(creation_error("dnc", 1, {{"b", "0"}}), Status::Code::kInvalidArgument,
              "b must be >= 1, got 0");
  expect_code(creation_error("dnc", 1, {{"c", "-0.5"}}), Status::Code::kInvalidArgument,
              "c must be >= 0, got -0.5");
  expect_code(creation_error("dnc", 1, {{"c", "lots"}}), Status::Code::kInvalidArgument, "'c'");
}

TEST(DncTest, IgnoresWeights) {
  auto rule = built_in_rule("dnc", 1);
  ASSERT_NE(rule, nullptr);
  const std::vector<double> weights = {1, 2, 3, 4, 5};
  Result<AggregationResult> r = rule->aggregate(rows_on_a_line(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok());
  expect_values_near(r->aggregate, {0.7, 0.6}, 1e-6);
}

TEST(DncTest, PermutationInvariant) {
  // Coordinates are sampled independently of the row order.
  at::Tensor rows = random_rows(10, 50, 42);
  auto rule = built_in_rule("dnc", 2, {{"b", "20"}});
  ASSERT_NE(rule, nullptr);
  expect_permutation_invariant(*rule, rows);
}

TEST(DncTest, TranslationEquivariant) {
  at::Tensor rows = random_rows(10, 50, 43);
  at::Tensor shift = at::linspace(-50, 50, 50, at::kDouble);
  auto rule = built_in_rule("dnc", 2, {{"b", "20"}});
  ASSERT_NE(rule, nullptr);
  expect_translation_equivariant(*rule, rows, shift);
}

TEST(DncTest, DiscardsRowsFarAwayWhateverTheSample) {
  at::Tensor rows = random_rows(10, 200, 44, at::kFloat);
  rows.narrow(0, 8, 2).fill_(1e6);
  auto rule = built_in_rule("dnc", 2, {{"b", "10"}});
  ASSERT_NE(rule, nullptr);
  for (uint64_t seed : {0u, 1u, 2u, 3u}) {
    AggregationContext context;
    context.seed = seed;
    Result<AggregationResult> r = rule->aggregate(rows, {}, context);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->selected, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7})) << seed;
    expect_within_honest_range(r->aggregate, rows, 8);
    EXPECT_NEAR(sum_of(r->row_weights), 1.0, 1e-12);
  }
}

TEST(DncTest, DiagnosticsCanBeSkipped) {
  auto rule = built_in_rule("dnc", 1);
  ASSERT_NE(rule, nullptr);
  Result<AggregationResult> r = rule->aggregate(rows_on_a_line(), {}, without_diagnostics());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->row_weights.empty() && r->selected.empty());
}

}  // namespace
}  // namespace cohort
