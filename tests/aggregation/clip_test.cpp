#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using namespace pre_testing;

TEST(ClipTest, ByzflVector) {
  // ByzFL Clipping(2.0): row 1 [1,2,3] has norm sqrt(14) > 2, so it becomes
  // [1,2,3] * 2/sqrt(14); rows 2 and 3 (norms sqrt(77), sqrt(194)) likewise.
  auto clip = make_step(make_clip, 0);
  ASSERT_NE(clip, nullptr);
  Result<UpdateStack> out = apply_to(*clip, byzfl_rows());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->rows.scalar_type(), at::kFloat);
  std::vector<double> got = values_of(out->rows);
  const std::vector<double> row1 = {0.53452248, 1.06904497, 1.60356745};
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(got[j], row1[j], 1e-6) << j;
  for (int j = 0; j < 3; ++j) {
    EXPECT_NEAR(got[3 + j], (4 + j) * 2 / std::sqrt(77.0), 1e-6) << j;
    EXPECT_NEAR(got[6 + j], (7 + j) * 2 / std::sqrt(194.0), 1e-6) << j;
  }
  expect_mixing_reproduces(*out, byzfl_rows(), 1e-6);
}

TEST(ClipTest, RowsWithinTheBoundAndZeroRowsAreKept) {
  // c = 1: [3,4] (norm 5) -> [0.6,0.8]; [0.6,0.8] has norm exactly 1 and is
  // kept; the zero row stays zero (no 0/0). Mixing = diag(0.2, 1, 1).
  auto clip = make_step(make_clip, 0, {{"c", "1"}});
  at::Tensor rows = rows_of({{3, 4}, {0.6, 0.8}, {0, 0}}, at::kDouble);
  Result<UpdateStack> out = apply_to(*clip, rows);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->rows.scalar_type(), at::kDouble);
  expect_rows_near(out->rows, rows_of({{0.6, 0.8}, {0.6, 0.8}, {0, 0}}, at::kDouble), 1e-15);
  expect_rows_near(out->mixing, rows_of({{0.2, 0, 0}, {0, 1, 0}, {0, 0, 1}}, at::kDouble), 1e-15);
  expect_mixing_reproduces(*out, rows, 1e-15);
}

TEST(ClipTest, WeightsPassThrough) {
  auto clip = make_step(make_clip, 0);
  Result<UpdateStack> out = apply_to(*clip, byzfl_rows(), {1.0, 2.0, 5.0});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->weights, (std::vector<double>{1.0, 2.0, 5.0}));
  Result<UpdateStack> unweighted = apply_to(*clip, byzfl_rows());
  ASSERT_TRUE(unweighted.ok());
  EXPECT_TRUE(unweighted->weights.empty());
}

TEST(ClipTest, ComposesWithTheIncomingMixing) {
  // c = 10 scales [30,40] by 1/5; a second clip at c = 1 scales the result
  // [6,8] by 1/10: the composed mixing is diag(1/50, 1).
  auto loose = make_step(make_clip, 0, {{"c", "10"}});
  auto tight = make_step(make_clip, 0, {{"c", "1"}});
  at::Tensor rows = rows_of({{30, 40}, {0.3, 0.4}}, at::kDouble);
  Result<UpdateStack> first = apply_to(*loose, rows);
  ASSERT_TRUE(first.ok());
  Result<UpdateStack> second = tight->apply(*first, AggregationContext{});
  ASSERT_TRUE(second.ok());
  expect_rows_near(second->mixing, rows_of({{0.02, 0}, {0, 1}}, at::kDouble), 1e-15);
  expect_mixing_reproduces(*second, rows, 1e-14);
}

TEST(ClipTest, PermutingRowsPermutesTheOutput) {
  auto clip = make_step(make_clip, 0);
  const std::vector<int64_t> perm = {2, 0, 1};
  Result<UpdateStack> plain = apply_to(*clip, byzfl_rows());
  Result<UpdateStack> shuffled = apply_to(*clip, permuted(byzfl_rows(), perm));
  ASSERT_TRUE(plain.ok() && shuffled.ok());
  expect_rows_near(shuffled->rows, permuted(plain->rows, perm), 0.0);
}

TEST(ClipTest, HugeRowsEndUpWithNormC) {
  at::Tensor rows = rows_of({{1, 0}, {1e6, -1e6}, {0, 1e6}});
  auto clip = make_step(make_clip, 0, {{"c", "2.5"}});
  Result<UpdateStack> out = apply_to(*clip, rows);
  ASSERT_TRUE(out.ok());
  std::vector<double> norms = values_of(at::linalg_vector_norm(out->rows, 2, {1}));
  EXPECT_NEAR(norms[0], 1.0, 1e-6);
  EXPECT_NEAR(norms[1], 2.5, 1e-6);
  EXPECT_NEAR(norms[2], 2.5, 1e-6);
}

TEST(ClipTest, RejectsBadC) {
  for (const char* c : {"0", "-1", "abc", "inf"}) {
    Status status = factory_error(make_clip, 0, {{"c", c}});
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument) << c;
  }
  EXPECT_NE(factory_error(make_clip, 0, {{"c", "-1"}}).message().find("clip needs c > 0, got c=-1"),
            std::string::npos);
}

TEST(ClipTest, RejectsMalformedStacks) {
  auto clip = make_step(make_clip, 0);
  EXPECT_EQ(apply_to(*clip, at::ones({3})).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(apply_to(*clip, at::ones({2, 2}, at::kLong)).status().code(), Status::Code::kInvalidArgument);
  Status mismatch = apply_to(*clip, byzfl_rows(), {1.0}).status();
  EXPECT_EQ(mismatch.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(mismatch.message().rfind("clip: ", 0), 0u) << mismatch.message();
}

}  // namespace
}  // namespace cohort
