// The worker's session with its coordinator: the DEALER socket, connected
// (with CURVE, once a handshake completed) and registered with a Hello; a
// Hello again when the connection was made anew (the coordinator
// restarted) or on request (it answered NotRegistered); and how long the
// coordinator has been silent. What the messages mean is the dispatcher's
// (dispatch.h). Resource type; one thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <zmq.hpp>

#include "cohort/log.h"
#include "cohort/protocol.h"
#include "cohort/wire.h"
#include "cohort/worker.h"
#include "connection_watches.h"

namespace cohort {

class CoordinatorSession {
 public:
  // How long a receive waits before the caller looks at its stop token and
  // the connection again.
  static constexpr std::chrono::milliseconds kPollInterval{200};

  // Connects to options.coordinator and says `hello`. With CURVE the
  // coordinator's key authenticates the server, so options.coordinator_key
  // must be set. Errors: a malformed address (InvalidArgument), the CURVE
  // handshake failed or none completed within options.idle_timeout
  // (connect_authenticated, transport.h), the Hello cannot be sent.
  static Result<std::unique_ptr<CoordinatorSession>> open(zmq::context_t& context, const WorkerOptions& options,
                                                          const Identity& identity, Hello hello, Logger& log);
  CoordinatorSession(const CoordinatorSession&) = delete;
  CoordinatorSession& operator=(const CoordinatorSession&) = delete;

  // Says Hello again (the coordinator forgot this connection).
  Status register_again();
  // Says Hello again when the socket connected anew since the last call.
  Status register_again_if_reconnected();

  Status send(Outgoing outgoing);

  enum class Silence {
    kNone,           // go on waiting
    kNeverAnswered,  // no coordinator answered within idle_timeout
    kFellSilent,     // one did, then nothing came for idle_timeout
  };
  // Where the wait stands; warns once, early, when nothing answers yet.
  Silence silence();

  // One message, waiting up to kPollInterval (less when idle_timeout is
  // nearer), or nullopt. A message (even a malformed one) counts as heard.
  std::optional<Incoming> receive();

 private:
  CoordinatorSession(zmq::context_t& context, const WorkerOptions& options, Hello hello, Logger& log);
  Status connect(zmq::context_t& context, const Identity& identity);

  const WorkerOptions& options_;
  Logger& log_;
  Hello hello_;
  zmq::socket_t socket_;
  std::optional<ConnectionWatch> connections_;  // from the first connection on
  AnswerWatch answers_;
  std::chrono::steady_clock::time_point last_heard_;  // or when registration was sent
};

}  // namespace cohort
