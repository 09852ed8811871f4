#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <span>
#include <vector>

#include "cohort/random.h"
#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using namespace pre_testing;

// The documented shuffle: Rng(seed) applied to 0..n-1.
std::vector<int64_t> shuffled_order(int64_t n, uint64_t seed) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  Rng rng(seed);
  rng.shuffle(std::span<int64_t>(order));
  return order;
}

// Powers of ten, so every bucket mean tells which rows it holds.
at::Tensor powers_of_ten(at::ScalarType dtype) { return rows_of({{1}, {10}, {100}, {1000}, {10000}}, dtype); }

TEST(BucketingTest, BucketsAreMeansOfConsecutiveShuffledRows) {
  // n = 5, s = 2: buckets {o0, o1}, {o2, o3} and the partial {o4}.
  const uint64_t seed = 7;
  const std::vector<int64_t> o = shuffled_order(5, seed);
  const std::vector<double> x = {1, 10, 100, 1000, 10000};
  at::Tensor rows = powers_of_ten(at::kFloat);
  Result<UpdateStack> out = apply_to(*make_step(make_bucketing, 0), rows, {}, seed);
  ASSERT_TRUE(out.ok()) << out.status().to_string();
  EXPECT_EQ(out->rows.scalar_type(), at::kFloat);
  const std::vector<double> want = {(x[o[0]] + x[o[1]]) / 2, (x[o[2]] + x[o[3]]) / 2, x[o[4]]};
  EXPECT_EQ(values_of(out->rows), want);
  EXPECT_TRUE(out->weights.empty());
  at::Tensor mixing = at::zeros({3, 5}, at::kDouble);
  mixing[0][o[0]] = 0.5;
  mixing[0][o[1]] = 0.5;
  mixing[1][o[2]] = 0.5;
  mixing[1][o[3]] = 0.5;
  mixing[2][o[4]] = 1.0;
  expect_rows_near(out->mixing, mixing, 0.0);
  expect_mixing_reproduces(*out, rows, 1e-7);
}

TEST(BucketingTest, TheSeedDecidesTheBuckets) {
  auto bucketing = make_step(make_bucketing, 0);
  at::Tensor rows = powers_of_ten(at::kDouble);
  Result<UpdateStack> first = apply_to(*bucketing, rows, {}, 42);
  Result<UpdateStack> again = apply_to(*bucketing, rows, {}, 42);
  ASSERT_TRUE(first.ok() && again.ok());
  EXPECT_EQ(values_of(first->rows), values_of(again->rows));
  bool some_seed_differs = false;
  for (uint64_t seed = 0; seed < 10; ++seed) {
    Result<UpdateStack> other = apply_to(*bucketing, rows, {}, seed);
    ASSERT_TRUE(other.ok());
    some_seed_differs |= values_of(other->rows) != values_of(first->rows);
  }
  EXPECT_TRUE(some_seed_differs);
}

TEST(BucketingTest, SizeOneShufflesAndSizeNAverages) {
  at::Tensor rows = powers_of_ten(at::kDouble);
  Result<UpdateStack> singles = apply_to(*make_step(make_bucketing, 0, {{"s", "1"}}), rows, {}, 3);
  ASSERT_TRUE(singles.ok());
  std::vector<double> got = values_of(singles->rows);
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<double>{1, 10, 100, 1000, 10000}));
  for (const char* s : {"5", "9"}) {
    Result<UpdateStack> one = apply_to(*make_step(make_bucketing, 0, {{"s", s}}), rows, {}, 3);
    ASSERT_TRUE(one.ok());
    expect_rows_near(one->rows, rows_of({{11111.0 / 5}}, at::kDouble), 1e-11);
  }
}

TEST(BucketingTest, WeightedBucketsUseAndSumTheirWeights) {
  // Rows 0 and 4 with weights 1 and 3 in one bucket: (0*1 + 4*3) / 4 = 3,
  // weight 4, whatever the order.
  Result<UpdateStack> out =
      apply_to(*make_step(make_bucketing, 0), rows_of({{0}, {4}}, at::kDouble), {1.0, 3.0}, 5);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(values_of(out->rows), (std::vector<double>{3.0}));
  EXPECT_EQ(out->weights, (std::vector<double>{4.0}));
}

TEST(BucketingTest, ABucketOfZeroWeightTakesThePlainMean) {
  // Weights 2, 0, 0, 0 on rows 1, 10, 100, 1000 with s = 2: the bucket holding
  // row 0 has weight 2 and is row 0 alone in effect; the other has weight 0
  // and is the plain mean of its two rows.
  const uint64_t seed = 11;
  const std::vector<int64_t> o = shuffled_order(4, seed);
  const std::vector<double> x = {1, 10, 100, 1000};
  Result<UpdateStack> out = apply_to(*make_step(make_bucketing, 0),
                                     rows_of({{1}, {10}, {100}, {1000}}, at::kDouble), {2, 0, 0, 0}, seed);
  ASSERT_TRUE(out.ok());
  const bool row0_first = o[0] == 0 || o[1] == 0;
  const int64_t other = row0_first ? 2 : 0;
  std::vector<double> want(2);
  want[row0_first ? 0 : 1] = 1.0;
  want[row0_first ? 1 : 0] = (x[o[other]] + x[o[other + 1]]) / 2;
  EXPECT_EQ(values_of(out->rows), want);
  EXPECT_EQ(out->weights, row0_first ? (std::vector<double>{2, 0}) : (std::vector<double>{0, 2}));
}

TEST(BucketingTest, TranslationEquivariant) {
  at::Tensor rows = rows_of({{1, -1}, {2, 5}, {3, 0}, {4, 4}, {5, 9}, {6, 2}, {7, 7}}, at::kDouble);
  at::Tensor shift = at::tensor({-3.0, 50.0}, at::kDouble);
  auto bucketing = make_step(make_bucketing, 0, {{"s", "3"}});
  Result<UpdateStack> base = apply_to(*bucketing, rows, {}, 9);
  Result<UpdateStack> shifted = apply_to(*bucketing, rows + shift, {}, 9);
  ASSERT_TRUE(base.ok() && shifted.ok());
  EXPECT_EQ(base->rows.size(0), 3);
  expect_rows_near(shifted->rows, base->rows + shift, 1e-13);
}

TEST(BucketingTest, ComposesWithTheIncomingMixing) {
  at::Tensor rows = powers_of_ten(at::kDouble);
  Result<UpdateStack> clipped = apply_to(*make_step(make_clip, 0, {{"c", "50"}}), rows);
  ASSERT_TRUE(clipped.ok());
  AggregationContext context;
  context.seed = 1;
  Result<UpdateStack> out = make_step(make_bucketing, 0)->apply(*clipped, context);
  ASSERT_TRUE(out.ok());
  expect_mixing_reproduces(*out, rows, 1e-12);
}

TEST(BucketingTest, RejectsBadS) {
  for (const char* s : {"0", "-2", "1.5", "two"}) {
    EXPECT_EQ(factory_error(make_bucketing, 0, {{"s", s}}).code(), Status::Code::kInvalidArgument) << s;
  }
  EXPECT_NE(factory_error(make_bucketing, 0, {{"s", "0"}}).message().find("bucketing needs s >= 1, got s=0"),
            std::string::npos);
}

TEST(BucketingTest, RejectsMalformedStacks) {
  auto bucketing = make_step(make_bucketing, 0);
  EXPECT_EQ(apply_to(*bucketing, at::zeros({2, 2, 2})).status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(apply_to(*bucketing, byzfl_rows(), {0.0, 0.0, 0.0}).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
