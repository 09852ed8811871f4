#include "cohort/duration.h"

#include <cmath>
#include <limits>

#include "cohort/number_text.h"

namespace cohort {

std::string duration_problem(double seconds) {
  if (std::isfinite(seconds) && seconds > 0 && seconds <= kMaxDurationSeconds) return {};
  return "must be in (0, " + number_text(kMaxDurationSeconds) + "] seconds (at most a year), got " +
         number_text(seconds);
}

std::chrono::steady_clock::time_point steady_deadline(double seconds, std::chrono::steady_clock::time_point now) {
  using Clock = std::chrono::steady_clock;
  using Ticks = std::chrono::duration<double, Clock::period>;
  if (!(seconds > 0)) return now;  // also NaN
  const double wanted = std::chrono::duration_cast<Ticks>(std::chrono::duration<double>(seconds)).count();
  const double room = Ticks(Clock::time_point::max() - now).count();
  // Doubles round: stay clear of the last representable ticks.
  if (wanted >= room * 0.999) return Clock::time_point::max();
  return now + Clock::duration(static_cast<Clock::rep>(wanted));
}

int64_t unix_ms_deadline(double seconds) { return unix_ms_deadline(seconds, std::chrono::system_clock::now()); }

int64_t unix_ms_deadline(double seconds, std::chrono::system_clock::time_point from) {
  using namespace std::chrono;
  const int64_t now = duration_cast<milliseconds>(from.time_since_epoch()).count();
  if (!(seconds > 0)) return now;
  const double room = static_cast<double>(std::numeric_limits<int64_t>::max() - now);
  const double wanted = seconds * 1000.0;
  if (wanted >= room * 0.999) return std::numeric_limits<int64_t>::max();
  return now + static_cast<int64_t>(wanted);
}

}  // namespace cohort
