// Durations a job or a flag may ask for, and the deadlines computed from
// them, without overflow.
//
// Every duration Cohort takes ([round] deadline_seconds and
// registration_timeout_seconds, [proof] reveal_seconds, `cohort worker
// --idle-timeout`) is a finite number of seconds in (0, kMaxDurationSeconds].
// The bound is far above any wait a job means and far below the point where
// a steady_clock time point (64-bit nanoseconds: about 292 years) or a Unix
// time in milliseconds overflows; before it existed, 1e10 seconds wrapped to
// a deadline in the past, and an honest worker that revealed at once was
// slashed for missing its reveal deadline.
//
// The deadline functions saturate, so even a caller that skipped the check
// gets a deadline that is late, never one that is early. Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace cohort {

// One year of 366 days, in seconds.
inline constexpr double kMaxDurationSeconds = 366.0 * 24 * 3600;

// "" when `seconds` is a valid duration; otherwise the problem, e.g.
// "must be in (0, 31622400] seconds (at most a year), got 1e+10".
std::string duration_problem(double seconds);

// `seconds` from `now`; time_point::max() when that does not fit, `now` for
// zero, negative or NaN seconds.
std::chrono::steady_clock::time_point steady_deadline(
    double seconds, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

// The Unix time in milliseconds `seconds` from `now` (the machine's time in
// the first form): the task deadline on the wire, saturating at INT64_MAX.
int64_t unix_ms_deadline(double seconds);
int64_t unix_ms_deadline(double seconds, std::chrono::system_clock::time_point now);

}  // namespace cohort
