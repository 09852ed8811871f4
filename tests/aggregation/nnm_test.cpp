#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <vector>

#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using namespace pre_testing;

TEST(NnmTest, ByzflVector) {
  // n = 3, f = 1: each row averages itself and its nearest other row. Row 2
  // is at squared distance 27 from both others; the tie goes to row 1.
  auto nnm = make_step(make_nnm, 1);
  ASSERT_NE(nnm, nullptr);
  Result<UpdateStack> out = apply_to(*nnm, byzfl_rows());
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->rows.scalar_type(), at::kFloat);
  expect_rows_near(out->rows, rows_of({{2.5, 3.5, 4.5}, {2.5, 3.5, 4.5}, {5.5, 6.5, 7.5}}), 1e-6);
  expect_rows_near(out->mixing, rows_of({{0.5, 0.5, 0}, {0.5, 0.5, 0}, {0, 0.5, 0.5}}, at::kDouble), 0.0);
  expect_mixing_reproduces(*out, byzfl_rows(), 1e-6);
}

TEST(NnmTest, TwoClustersInOneDimension) {
  // Rows 0, 1, 10, 11. f = 2: two nearest -> {0,1}, {1,0}, {10,11}, {11,10}
  // -> 0.5, 0.5, 10.5, 10.5. f = 1: three nearest -> {0,1,10}, {1,0,10},
  // {10,11,1}, {11,10,1} -> 11/3, 11/3, 22/3, 22/3.
  at::Tensor rows = rows_of({{0}, {1}, {10}, {11}}, at::kDouble);
  Result<UpdateStack> pairs = apply_to(*make_step(make_nnm, 2), rows);
  ASSERT_TRUE(pairs.ok());
  expect_rows_near(pairs->rows, rows_of({{0.5}, {0.5}, {10.5}, {10.5}}, at::kDouble), 1e-15);
  Result<UpdateStack> triples = apply_to(*make_step(make_nnm, 1), rows);
  ASSERT_TRUE(triples.ok());
  expect_rows_near(triples->rows, rows_of({{11.0 / 3}, {11.0 / 3}, {22.0 / 3}, {22.0 / 3}}, at::kDouble),
                   1e-14);
  expect_mixing_reproduces(*triples, rows, 1e-14);
}

TEST(NnmTest, FZeroReplacesEveryRowByTheMean) {
  Result<UpdateStack> out = apply_to(*make_step(make_nnm, 0), byzfl_rows(at::kDouble));
  ASSERT_TRUE(out.ok());
  expect_rows_near(out->rows, rows_of({{4, 5, 6}, {4, 5, 6}, {4, 5, 6}}, at::kDouble), 1e-14);
}

TEST(NnmTest, EachRowCountsItselfEvenWhenAnotherRowEqualsIt) {
  // f = 2 leaves one neighbour: the row itself, although row 0 is at the same
  // (zero) distance from row 1 and has the lower index.
  at::Tensor rows = rows_of({{5}, {5}, {0}}, at::kDouble);
  Result<UpdateStack> out = apply_to(*make_step(make_nnm, 2), rows);
  ASSERT_TRUE(out.ok());
  expect_rows_near(out->mixing, at::eye(3, at::kDouble), 0.0);
}

TEST(NnmTest, WeightsAreKeptPerRow) {
  Result<UpdateStack> out = apply_to(*make_step(make_nnm, 1), byzfl_rows(), {3.0, 0.0, 1.0});
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(out->weights, (std::vector<double>{3.0, 0.0, 1.0}));
}

TEST(NnmTest, TranslationAndPermutationEquivariant) {
  // Distinct distances (no ties), so the neighbour sets follow the rows.
  at::Tensor rows = rows_of({{0, 0}, {1, 0}, {0, 3}, {5, 5}, {-2, 2}}, at::kDouble);
  auto nnm = make_step(make_nnm, 2);
  Result<UpdateStack> base = apply_to(*nnm, rows);
  ASSERT_TRUE(base.ok());
  at::Tensor shift = at::tensor({100.0, -7.0}, at::kDouble);
  Result<UpdateStack> shifted = apply_to(*nnm, rows + shift);
  ASSERT_TRUE(shifted.ok());
  expect_rows_near(shifted->rows, base->rows + shift, 1e-12);
  const std::vector<int64_t> perm = {3, 0, 4, 2, 1};
  Result<UpdateStack> shuffled = apply_to(*nnm, permuted(rows, perm));
  ASSERT_TRUE(shuffled.ok());
  expect_rows_near(shuffled->rows, permuted(base->rows, perm), 1e-14);
}

TEST(NnmTest, HonestRowsIgnoreAFarOutlier) {
  // n = 5, f = 1: an honest row's 4 nearest are the 4 honest rows, so its
  // output is their mean (2.5, 2.5), far from the row at 1e6.
  at::Tensor rows = rows_of({{1, 1}, {2, 2}, {3, 3}, {4, 4}, {1e6, 1e6}});
  Result<UpdateStack> out = apply_to(*make_step(make_nnm, 1), rows);
  ASSERT_TRUE(out.ok());
  expect_rows_near(out->rows.narrow(0, 0, 4), rows_of({{2.5, 2.5}, {2.5, 2.5}, {2.5, 2.5}, {2.5, 2.5}}), 1e-5);
}

TEST(NnmTest, NeedsFBelowN) {
  Result<UpdateStack> out = apply_to(*make_step(make_nnm, 3), byzfl_rows());
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(out.status().message().find("nnm needs f < n, got n=3, f=3"), std::string::npos)
      << out.status().message();
  EXPECT_TRUE(apply_to(*make_step(make_nnm, 2), byzfl_rows()).ok());
}

TEST(NnmTest, RejectsNegativeFAndMalformedStacks) {
  EXPECT_EQ(factory_error(make_nnm, -1, {}).code(), Status::Code::kInvalidArgument);
  auto nnm = make_step(make_nnm, 1);
  EXPECT_EQ(apply_to(*nnm, at::zeros({0, 3})).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(apply_to(*nnm, byzfl_rows(), {-1.0, 1.0, 1.0}).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
