#include "connection_watches.h"

#include <cstdint>
#include <string>

namespace cohort {

ConnectionWatch::ConnectionWatch(zmq::context_t& context, zmq::socket_t& socket, bool connected)
    : socket_(socket), events_(context, zmq::socket_type::pair), connected_before_(connected) {
  const std::string address = "inproc://cohort-worker-connections-" + std::to_string(reinterpret_cast<uintptr_t>(this));
  zmq_socket_monitor(socket_.handle(), address.c_str(), ZMQ_EVENT_CONNECTED);
  events_.set(zmq::sockopt::linger, 0);
  events_.connect(address);
}

ConnectionWatch::~ConnectionWatch() { zmq_socket_monitor(socket_.handle(), nullptr, 0); }

bool ConnectionWatch::reconnected() {
  int made = 0;
  zmq::message_t frame;
  while (events_.recv(frame, zmq::recv_flags::dontwait)) {
    while (frame.more()) (void)events_.recv(frame);  // the event's endpoint frame
    ++made;
  }
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
