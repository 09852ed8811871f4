// Keeps a flood of similar warnings from flooding the log: at most `burst`
// lines per `window` get through; the others are counted, and the next line
// that gets through (or flush()) says how many were left out. A peer that
// sends garbage from 2,000 fresh keys then costs a few lines, not 2,000.
// Not thread-safe: one owner (a receive loop, the ZAP thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "cohort/log.h"

namespace cohort {

class LogThrottle {
 public:
  using Clock = std::chrono::steady_clock;

  // burst >= 1.
  LogThrottle(int burst, Clock::duration window) : burst_(burst), window_(window) {}

  // Logs `line` to `log` as a warning unless this window's lines are spent.
  void warn(Logger& log, std::string_view line, Clock::time_point now = Clock::now());

  // Logs how many warnings were left out since the last line, if any.
  void flush(Logger& log);

  // Warnings left out so far, in all.
  uint64_t suppressed() const { return suppressed_; }

 private:
  int burst_;
  Clock::duration window_;
  Clock::time_point window_start_{};
  int in_window_ = 0;
  uint64_t unreported_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace cohort
