// The worker's session with its coordinator: the connection (a
// ClientChannel, from the caller's connector) registered with a Hello; a
// Hello again when the connection was made anew (the coordinator
// restarted) or on request (it answered NotRegistered); and how long the
// coordinator has been silent. What the messages mean is the dispatcher's
// (dispatch.h). Resource type; one thread.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "cohort/channel.h"
#include "cohort/log.h"
#include "cohort/protocol.h"
#include "cohort/wire.h"
#include "cohort/worker.h"
#include "answer_watch.h"

namespace cohort {

class CoordinatorSession {
 public:
  // How long a receive waits before the caller looks at its stop token and
  // the connection again.
  static constexpr std::chrono::milliseconds kPollInterval{200};

  // Connects with `connect` and says `hello`. Errors: the connector's,
  // the Hello cannot be sent.
  static Result<std::unique_ptr<CoordinatorSession>> open(const CoordinatorConnector& connect,
                                                          const WorkerOptions& options, Hello hello, Logger& log);
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
  CoordinatorSession(std::unique_ptr<ClientChannel> connection, const WorkerOptions& options, Hello hello,
                     Logger& log);

  const WorkerOptions& options_;
  Logger& log_;
  Hello hello_;
  std::unique_ptr<ClientChannel> connection_;
  AnswerWatch answers_;
  std::chrono::steady_clock::time_point last_heard_;  // or when registration was sent
};

}  // namespace cohort
