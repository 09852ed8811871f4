// A Clock (cohort/clock.h) that moves only when a test says so: it starts
// at the machine's time and advance() adds to both its readings.
// Thread-safe: the coordinator reads it on its thread while the test moves it.
#pragma once

#include <atomic>
#include <chrono>

#include "cohort/clock.h"

namespace cohort::testing {

class ManualClock final : public Clock {
 public:
  std::chrono::steady_clock::time_point now() const override { return steady_start_ + offset(); }
  std::chrono::system_clock::time_point wall() const override {
    return wall_start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(offset());
  }
  void advance(std::chrono::nanoseconds by) { offset_ns_ += by.count(); }

 private:
  std::chrono::nanoseconds offset() const { return std::chrono::nanoseconds(offset_ns_.load()); }

  const std::chrono::steady_clock::time_point steady_start_ = std::chrono::steady_clock::now();
  const std::chrono::system_clock::time_point wall_start_ = std::chrono::system_clock::now();
  std::atomic<int64_t> offset_ns_{0};
};

}  // namespace cohort::testing
