#include "connection_watches.h"

#include <string>

namespace cohort {

ConnectionWatch::ConnectionWatch(zmq::context_t& context, zmq::socket_t& socket, bool connected)
    : monitor_(context, socket, ZMQ_EVENT_CONNECTED), connected_before_(connected) {}

bool ConnectionWatch::reconnected() {
  int made = 0;
  while (monitor_.next(std::chrono::milliseconds(0))) ++made;
  const bool again = made > (connected_before_ ? 0 : 1);
  connected_before_ = connected_before_ || made > 0;
  return again;
}

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
