#include "cohort/duration.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <limits>
#include <random>

namespace cohort {
namespace {

using Clock = std::chrono::steady_clock;

TEST(DurationTest, ValidDurationsHaveNoProblem) {
  for (double seconds : {0.001, 1.0, 120.0, 86400.0, kMaxDurationSeconds}) {
    EXPECT_EQ(duration_problem(seconds), "") << seconds;
  }
}

TEST(DurationTest, ZeroNegativeHugeAndNonFiniteDurationsAreNamed) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double seconds : {0.0, -5.0, 1e10, kMaxDurationSeconds * 1.0001, nan, inf, -inf}) {
    const std::string problem = duration_problem(seconds);
    EXPECT_NE(problem.find("at most a year"), std::string::npos) << seconds << ": " << problem;
  }
  EXPECT_EQ(duration_problem(1e10), "must be in (0, 31622400] seconds (at most a year), got 1e+10");
}

// The overflow the hostile probe found: 1e10 seconds in nanoseconds does
// not fit 64 bits, and the deadline wrapped into the past.
TEST(DurationTest, HugeSecondsSaturateInsteadOfWrappingIntoThePast) {
  const Clock::time_point now = Clock::now();
  EXPECT_EQ(steady_deadline(1e10, now), Clock::time_point::max());
  EXPECT_EQ(steady_deadline(1e300, now), Clock::time_point::max());
  EXPECT_EQ(steady_deadline(std::numeric_limits<double>::infinity(), now), Clock::time_point::max());
  EXPECT_GT(unix_ms_deadline(1e10), unix_ms_deadline(1.0));
  EXPECT_EQ(unix_ms_deadline(1e300), std::numeric_limits<int64_t>::max());
}

TEST(DurationTest, ZeroNegativeAndNanSecondsMeanNow) {
  const Clock::time_point now = Clock::now();
  EXPECT_EQ(steady_deadline(0.0, now), now);
  EXPECT_EQ(steady_deadline(-1.0, now), now);
  EXPECT_EQ(steady_deadline(std::numeric_limits<double>::quiet_NaN(), now), now);
}

// Property: over durations from a microsecond to far beyond the bound, a
// deadline is never before `now`, never earlier for a longer duration, and
// within a microsecond of the exact one wherever that fits.
TEST(DurationTest, DeadlinesAreMonotoneAndExactWhereTheyFit) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> exponent(-6.0, 40.0);
  const Clock::time_point now = Clock::now();
  for (int i = 0; i < 10000; ++i) {
    const double a = std::pow(10.0, exponent(rng));
    const double b = std::pow(10.0, exponent(rng));
    const Clock::time_point da = steady_deadline(a, now);
    const Clock::time_point db = steady_deadline(b, now);
    ASSERT_GE(da, now) << a;
    if (a <= b) {
      ASSERT_LE(da, db) << a << " vs " << b;
    }
    if (a <= kMaxDurationSeconds) {
      const double error = std::chrono::duration<double>(da - now).count() - a;
      ASSERT_LT(std::abs(error), 1e-6 + a * 1e-12) << a;
    }
  }
}

}  // namespace
}  // namespace cohort
