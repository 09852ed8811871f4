// What a worker watches on its connection to the coordinator: whether the
// socket connected again (the coordinator restarted, so the worker must say
// Hello again), and whether anything ever answered (so that a worker at the
// wrong address says so early instead of waiting out its idle timeout).
#pragma once

#include <chrono>

#include <zmq.hpp>

#include "cohort/log.h"
#include "cohort/transport.h"
#include "cohort/worker.h"

namespace cohort {

// Says when the socket connected again after losing its connection (the
// coordinator restarted, or the network failed): the coordinator at the
// other end may not know this connection, so the worker says Hello again.
// A SocketMonitor (transport.h) reports the connections.
class ConnectionWatch {
 public:
  // `connected`: the socket's first connection is already made (then every
  // connection seen is a reconnection).
  ConnectionWatch(zmq::context_t& context, zmq::socket_t& socket, bool connected);

  // Whether a connection was made since the last call, other than the first.
  bool reconnected();

 private:
  SocketMonitor monitor_;
  bool connected_before_;
};

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
