#include "cohort/log_throttle.h"

#include <string>

namespace cohort {

void LogThrottle::warn(Logger& log, std::string_view line, Clock::time_point now) {
  if (now - window_start_ >= window_) {
    window_start_ = now;
    in_window_ = 0;
  }
  if (in_window_ >= burst_) {
    ++unreported_;
    ++suppressed_;
    return;
  }
  ++in_window_;
  flush(log);
  log.warn(line);
}

void LogThrottle::flush(Logger& log) {
  if (unreported_ == 0) return;
  log.warn(std::to_string(unreported_) + " similar warning(s) were not logged (at most " +
           std::to_string(burst_) + " per " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(window_).count()) + " s)");
  unreported_ = 0;
}

}  // namespace cohort
