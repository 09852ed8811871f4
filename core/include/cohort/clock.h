// The time as a coordinator reads it, lent by main (KJ's style: no hidden
// global clock). Deadlines are points on the steady clock; the wall clock
// only stamps the task deadline a worker is told. SystemClock reads the
// machine's clocks; a test passes one it moves by hand
// (tests/support/manual_clock.h), so that a deadline an hour away passes at
// once. Implementations are thread-safe.
#pragma once

#include <chrono>

namespace cohort {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() const = 0;
  virtual std::chrono::system_clock::time_point wall() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return std::chrono::steady_clock::now(); }
  std::chrono::system_clock::time_point wall() const override { return std::chrono::system_clock::now(); }
};

}  // namespace cohort
