#include "cohort/log_throttle.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace cohort {
namespace {

using std::chrono::seconds;

int lines_in(const std::string& text) { return static_cast<int>(std::count(text.begin(), text.end(), '\n')); }

TEST(LogThrottleTest, AFloodCostsBurstLinesPerWindowAndACount) {
  std::ostringstream out;
  Logger log(out, LogLevel::kInfo, "test");
  LogThrottle throttle(5, seconds(10));
  const auto start = LogThrottle::Clock::now();
  for (int i = 0; i < 2000; ++i) throttle.warn(log, "garbage from key " + std::to_string(i), start);
  EXPECT_EQ(lines_in(out.str()), 5);
  EXPECT_EQ(throttle.suppressed(), 1995u);
  // The next window lets lines through again, led by the count.
  throttle.warn(log, "one more", start + seconds(10));
  EXPECT_NE(out.str().find("1995 similar warning(s) were not logged (at most 5 per 10 s)"), std::string::npos)
      << out.str();
  EXPECT_EQ(lines_in(out.str()), 7);
}

TEST(LogThrottleTest, FlushReportsWhatWasLeftOutOnce) {
  std::ostringstream out;
  Logger log(out, LogLevel::kInfo, "test");
  LogThrottle throttle(1, seconds(60));
  const auto now = LogThrottle::Clock::now();
  throttle.warn(log, "first", now);
  throttle.warn(log, "second", now);
  throttle.warn(log, "third", now);
  throttle.flush(log);
  throttle.flush(log);
  EXPECT_EQ(out.str(),
            "[test] warning: first\n[test] warning: 2 similar warning(s) were not logged (at most 1 per 60 s)\n");
}

TEST(LogThrottleTest, QuietTrafficIsLoggedWhole) {
  std::ostringstream out;
  Logger log(out, LogLevel::kInfo, "test");
  LogThrottle throttle(3, seconds(1));
  auto now = LogThrottle::Clock::now();
  for (int i = 0; i < 20; ++i, now += seconds(1)) throttle.warn(log, "line", now);
  EXPECT_EQ(lines_in(out.str()), 20);
  EXPECT_EQ(throttle.suppressed(), 0u);
}

}  // namespace
}  // namespace cohort
