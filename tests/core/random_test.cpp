#include "cohort/random.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace cohort {
namespace {

// Reference values were computed once with an independent Python transcript
// of SplitMix64 seeding + xoshiro256** (https://prng.di.unimi.it/). The same
// script reproduced SplitMix64's published vector for seed 1234567
// (6457827717110365317, 3203168211198807973, 9817491932198370423).
TEST(RngTest, MatchesReferenceXoshiroOutputs) {
  Rng zero(0);
  EXPECT_EQ(zero.next_u64(), 0x99ec5f36cb75f2b4ULL);
  EXPECT_EQ(zero.next_u64(), 0xbf6e1f784956452aULL);
  EXPECT_EQ(zero.next_u64(), 0x1a5f849d4933e6e0ULL);
  EXPECT_EQ(zero.next_u64(), 0x6aa594f1262d2d2cULL);

  Rng answer(42);
  EXPECT_EQ(answer.next_u64(), 0x15780b2e0c2ec716ULL);
  EXPECT_EQ(answer.next_u64(), 0x6104d9866d113a7eULL);
  EXPECT_EQ(answer.next_u64(), 0xae17533239e499a1ULL);
  EXPECT_EQ(answer.next_u64(), 0xecb8ad4703b360a1ULL);
}

TEST(RngTest, SameSeedSameSequenceDifferentSeedDifferent) {
  Rng a(7), b(7), c(8);
  int differ = 0;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next_u64();
    EXPECT_EQ(x, b.next_u64());
    differ += x != c.next_u64();
  }
  EXPECT_EQ(differ, 100);
}

TEST(RngTest, ForkIsDeterministicIndependentAndLeavesParentAlone) {
  const Rng parent(123);
  Rng untouched = parent;
  Rng f1 = parent.fork(1), f1_again = parent.fork(1), f2 = parent.fork(2);
  Rng fresh(123);
  for (int i = 0; i < 50; ++i) {
    const uint64_t x = f1.next_u64();
    EXPECT_EQ(x, f1_again.next_u64());
    EXPECT_NE(x, f2.next_u64());
    EXPECT_EQ(untouched.next_u64(), fresh.next_u64());  // fork did not advance the parent
  }
  // The fork is not simply the parent's own stream.
  Rng p = parent;
  Rng f0 = parent.fork(0);
  EXPECT_NE(p.next_u64(), f0.next_u64());
}

TEST(RngTest, ForkDependsOnTheParentState) {
  Rng a = Rng(1).fork(5), b = Rng(2).fork(5);
  EXPECT_NE(a.next_u64(), b.next_u64());
  Rng advanced(1);
  advanced.next_u64();
  Rng c = advanced.fork(5), d = Rng(1).fork(5);
  EXPECT_NE(c.next_u64(), d.next_u64());
}

TEST(RngTest, UniformBelowStaysInRangeAndIsRoughlyUniform) {
  Rng rng(2024);
  constexpr uint64_t kBins = 10;
  constexpr int kDraws = 100000;
  std::vector<int> counts(kBins, 0);
  for (int i = 0; i < kDraws; ++i) {
    const uint64_t x = rng.uniform_below(kBins);
    ASSERT_LT(x, kBins);
    ++counts[x];
  }
  const double expected = static_cast<double>(kDraws) / kBins;
  double chi2 = 0.0;
  for (int c : counts) chi2 += (c - expected) * (c - expected) / expected;
  // 9 degrees of freedom: P(chi2 > 40) is about 1e-5.
  EXPECT_LT(chi2, 40.0);

  EXPECT_EQ(rng.uniform_below(1), 0u);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(rng.uniform_below(3), 3u);
}

TEST(RngTest, UniformBelowHandlesHugeBounds) {
  // Just above 2^63 the rejection zone is nearly half of all words.
  Rng rng(5);
  const uint64_t bound = (uint64_t{1} << 63) + 12345;
  int upper_half = 0;
  for (int i = 0; i < 10000; ++i) {
    const uint64_t x = rng.uniform_below(bound);
    ASSERT_LT(x, bound);
    upper_half += x >= bound / 2;
  }
  EXPECT_NEAR(upper_half, 5000, 300);
}

TEST(RngTest, UniformDoubleInUnitInterval) {
  Rng rng(9);
  double sum = 0.0;
  for (int i = 0; i < 100000; ++i) {
    const double u = rng.uniform_double();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 100000, 0.5, 0.01);
}

struct Moments {
  double mean = 0;
  double variance = 0;
};

template <class Draw>
Moments moments(int n, Draw draw) {
  std::vector<double> xs(static_cast<size_t>(n));
  for (double& x : xs) x = draw();
  Moments m;
  m.mean = std::accumulate(xs.begin(), xs.end(), 0.0) / n;
  for (double x : xs) m.variance += (x - m.mean) * (x - m.mean);
  m.variance /= n - 1;
  return m;
}

TEST(RngTest, NormalHasUnitMoments) {
  Rng rng(11);
  const Moments m = moments(100000, [&] { return rng.normal(); });
  EXPECT_NEAR(m.mean, 0.0, 0.02);
  EXPECT_NEAR(m.variance, 1.0, 0.03);
}

// Gamma(k, 1) has mean k and variance k, for both branches (k < 1 and k >= 1).
TEST(RngTest, GammaHasShapeMoments) {
  for (double shape : {0.1, 0.5, 1.0, 2.5, 10.0}) {
    Rng rng(static_cast<uint64_t>(shape * 1000));
    const Moments m = moments(100000, [&] { return rng.gamma(shape); });
    EXPECT_NEAR(m.mean, shape, 0.03 * shape + 0.01) << "shape " << shape;
    EXPECT_NEAR(m.variance, shape, 0.08 * shape + 0.01) << "shape " << shape;
  }
}

TEST(RngTest, GammaIsPositive) {
  Rng rng(3);
  for (int i = 0; i < 10000; ++i) ASSERT_GE(rng.gamma(0.05), 0.0);
  for (int i = 0; i < 10000; ++i) ASSERT_GT(rng.gamma(3.0), 0.0);
}

TEST(RngTest, ShuffleIsASeedDependentPermutation) {
  std::vector<int> base(100);
  std::iota(base.begin(), base.end(), 0);
  auto shuffled = [&](uint64_t seed) {
    std::vector<int> v = base;
    Rng rng(seed);
    rng.shuffle(std::span(v));
    return v;
  };
  const std::vector<int> a = shuffled(1);
  EXPECT_EQ(a, shuffled(1));
  EXPECT_NE(a, shuffled(2));
  EXPECT_NE(a, base);
  std::vector<int> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, base);
}

TEST(RngTest, ShuffleHandlesTinySpans) {
  Rng rng(1);
  std::vector<int> empty;
  rng.shuffle(std::span(empty));
  std::vector<int> one{42};
  rng.shuffle(std::span(one));
  EXPECT_EQ(one, std::vector<int>{42});
}

}  // namespace
}  // namespace cohort
