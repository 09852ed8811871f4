#include "rate_limiter.h"

#include <gtest/gtest.h>

namespace cohort {
namespace {

using Decision = RateLimiter::Decision;
using std::chrono::milliseconds;

TEST(RateLimiterTest, ABurstPassesThenOnlyTheRate) {
  RateLimiter limiter(/*rate=*/10.0, /*burst=*/3.0);
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.admit("a", t0), Decision::kAllow) << i;
  EXPECT_EQ(limiter.admit("a", t0), Decision::kRefuseAndTell);
  EXPECT_EQ(limiter.admit("a", t0), Decision::kRefuseSilently);
  EXPECT_EQ(limiter.admit("a", t0 + milliseconds(50)), Decision::kRefuseSilently);  // half a token
  EXPECT_EQ(limiter.admit("a", t0 + milliseconds(100)), Decision::kAllow);          // one token
  EXPECT_EQ(limiter.admit("a", t0 + milliseconds(100)), Decision::kRefuseAndTell);  // a new streak
  // Idle peers refill only up to the burst.
  const auto later = t0 + std::chrono::seconds(60);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(limiter.admit("a", later), Decision::kAllow) << i;
  EXPECT_NE(limiter.admit("a", later), Decision::kAllow);
}

TEST(RateLimiterTest, PeersHaveTheirOwnBuckets) {
  RateLimiter limiter(1.0, 1.0);
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(limiter.admit("a", t0), Decision::kAllow);
  EXPECT_EQ(limiter.admit("a", t0), Decision::kRefuseAndTell);
  EXPECT_EQ(limiter.admit("b", t0), Decision::kAllow);
}

TEST(RateLimiterTest, ZeroRateMeansNoLimit) {
  RateLimiter limiter(0.0, 1.0);
  const auto t0 = RateLimiter::Clock::now();
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(limiter.admit("a", t0), Decision::kAllow);
  EXPECT_EQ(limiter.peers(), 0u);
}

TEST(RateLimiterTest, IdlePeersAreForgottenWhenThereAreMany) {
  RateLimiter limiter(1.0, 2.0);
  const auto t0 = RateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 5000; ++i) limiter.admit("peer-" + std::to_string(i), t0);
  EXPECT_EQ(limiter.peers(), 5000u);  // none idle yet: all kept
  // Ten seconds later every bucket is full again, so the next newcomer
  // clears them out, and nobody's allowance changes.
  limiter.admit("newcomer", t0 + std::chrono::seconds(10));
  EXPECT_EQ(limiter.peers(), 1u);
  EXPECT_EQ(limiter.admit("peer-1", t0 + std::chrono::seconds(10)), Decision::kAllow);
}

}  // namespace
}  // namespace cohort
