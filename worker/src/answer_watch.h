// Whether anything ever answered a worker, so that a worker at the wrong
// address says so early instead of waiting out its idle timeout.
#pragma once

#include <chrono>

#include "cohort/log.h"
#include "cohort/worker.h"

namespace cohort {

// Says once, early, that no coordinator has answered yet: a worker pointed
// at the wrong address, or without CURVE at a CURVE coordinator (which
// never answers a plaintext client), would otherwise wait its whole idle
// timeout in silence.
class AnswerWatch {
 public:
  // How long a worker waits for its first answer before it says that
  // nothing answers (it goes on waiting up to its idle timeout).
  static constexpr std::chrono::seconds kPatience{5};

  AnswerWatch(const WorkerOptions& options, Logger& log) : options_(options), log_(log) {}

  void answered() { answered_ = true; }
  bool ever_answered() const { return answered_; }

  // Warns (once) when `waited` without any answer reached kPatience.
  void check(std::chrono::steady_clock::duration waited);

 private:
  const WorkerOptions& options_;
  Logger& log_;
  bool answered_ = false;
  bool warned_ = false;
};

}  // namespace cohort
