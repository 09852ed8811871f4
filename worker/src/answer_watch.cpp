#include "answer_watch.h"

#include <string>

namespace cohort {

void AnswerWatch::check(std::chrono::steady_clock::duration waited) {
  if (answered_ || warned_ || waited < kPatience) return;
  warned_ = true;
  log_.warn("nothing answers at " + options_.coordinator + " yet (no reply after " + std::to_string(kPatience.count()) +
            " s): is a coordinator running at this address?" +
            (options_.curve ? "" : " A coordinator with CURVE (the default) never answers a --no-curve worker: "
                                   "pass --coordinator-key instead.") +
            " Waiting up to --idle-timeout (" + std::to_string(options_.idle_timeout.count() / 1000) + " s).");
}

}  // namespace cohort
