#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using namespace pre_testing;

TEST(ArcTest, ByzflVector) {
  // n = 3, f = 1: k = floor(2 * (1/3) * 2) = 1. Row 3 (norm sqrt(194)) is
  // clipped to the next largest norm, sqrt(77): [7,8,9] * sqrt(77/194).
  auto arc = make_step(make_arc, 1);
  ASSERT_NE(arc, nullptr);
  Result<UpdateStack> out = apply_to(*arc, byzfl_rows());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->rows.scalar_type(), at::kFloat);
  expect_rows_near(out->rows, rows_of({{1, 2, 3}, {4, 5, 6}, {4.41004009, 5.04004582, 5.67005155}}), 1e-6);
  expect_mixing_reproduces(*out, byzfl_rows(), 1e-6);
}

TEST(ArcTest, ClipsTheKLargestToTheNextNorm) {
  // n = 10, f = 3: k = floor(2 * 3 * 7 / 10) = floor(4.2) = 4, so rows 7..10
  // are clipped to 6, the largest of the rest.
  at::Tensor rows = at::arange(1, 11, at::kDouble).reshape({10, 1});
  Result<UpdateStack> out = apply_to(*make_step(make_arc, 3), rows);
  ASSERT_TRUE(out.ok());
  expect_rows_near(out->rows, rows_of({{1}, {2}, {3}, {4}, {5}, {6}, {6}, {6}, {6}, {6}}, at::kDouble), 1e-14);
  expect_mixing_reproduces(*out, rows, 1e-15);
}

TEST(ArcTest, NormsNotValuesDecide) {
  // n = 3, f = 1, k = 1: norms 10, 1, 2, so [-10] is clipped to norm 2.
  Result<UpdateStack> out = apply_to(*make_step(make_arc, 1), rows_of({{-10}, {1}, {2}}, at::kDouble));
  ASSERT_TRUE(out.ok());
  expect_rows_near(out->rows, rows_of({{-2}, {1}, {2}}, at::kDouble), 1e-15);
}

TEST(ArcTest, FZeroAndTiedNormsChangeNothing) {
  at::Tensor rows = byzfl_rows(at::kDouble);
  Result<UpdateStack> none = apply_to(*make_step(make_arc, 0), rows);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(values_of(none->rows), values_of(rows));
  // k = 1 but the largest norm equals the bound (all norms are 5).
  at::Tensor tied = rows_of({{3, 4}, {0, 5}, {-5, 0}}, at::kDouble);
  Result<UpdateStack> same = apply_to(*make_step(make_arc, 1), tied);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(values_of(same->rows), values_of(tied));
  expect_rows_near(same->mixing, at::eye(3, at::kDouble), 0.0);
}

TEST(ArcTest, AnOutlierIsClippedToTheHonestNorms) {
  // n = 5, f = 1: k = floor(2 * 4 / 5) = 1, so the row at 1e6 takes the
  // largest honest norm, 4 * sqrt(2), and keeps its direction.
  at::Tensor rows = rows_of({{1, 1}, {2, 2}, {3, 3}, {4, 4}, {1e6, 1e6}});
  Result<UpdateStack> out = apply_to(*make_step(make_arc, 1), rows);
  ASSERT_TRUE(out.ok());
  expect_rows_near(out->rows, rows_of({{1, 1}, {2, 2}, {3, 3}, {4, 4}, {4, 4}}), 1e-5);
}

TEST(ArcTest, PermutingRowsPermutesTheOutput) {
  at::Tensor rows = rows_of({{1, 0}, {0, 7}, {3, 3}, {-9, 1}, {2, -2}}, at::kDouble);
  auto arc = make_step(make_arc, 2);
  const std::vector<int64_t> perm = {4, 2, 0, 1, 3};
  Result<UpdateStack> plain = apply_to(*arc, rows);
  Result<UpdateStack> shuffled = apply_to(*arc, permuted(rows, perm));
  ASSERT_TRUE(plain.ok() && shuffled.ok());
  expect_rows_near(shuffled->rows, permuted(plain->rows, perm), 0.0);
}

TEST(ArcTest, WeightsPassThrough) {
  Result<UpdateStack> out = apply_to(*make_step(make_arc, 1), byzfl_rows(), {1.0, 2.0, 3.0});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->weights, (std::vector<double>{1.0, 2.0, 3.0}));
}

TEST(ArcTest, NeedsFBelowN) {
  Result<UpdateStack> out = apply_to(*make_step(make_arc, 3), byzfl_rows());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(out.status().message().find("arc needs f < n, got n=3, f=3"), std::string::npos)
      << out.status().message();
  EXPECT_EQ(factory_error(make_arc, -1, {}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(apply_to(*make_step(make_arc, 1), at::ones({3})).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
