#include "coordinator_session.h"

#include <algorithm>
#include <utility>

namespace cohort {

Result<std::unique_ptr<CoordinatorSession>> CoordinatorSession::open(const CoordinatorConnector& connect,
                                                                     const WorkerOptions& options, Hello hello,
                                                                     Logger& log) {
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<ClientChannel> connection, connect());
  std::unique_ptr<CoordinatorSession> session(
      new CoordinatorSession(std::move(connection), options, std::move(hello), log));
  COHORT_RETURN_IF_ERROR(session->register_again());
  session->last_heard_ = std::chrono::steady_clock::now();  // the idle timeout starts once registered
  return session;
}

CoordinatorSession::CoordinatorSession(std::unique_ptr<ClientChannel> connection, const WorkerOptions& options,
                                       Hello hello, Logger& log)
    : options_(options), log_(log), hello_(std::move(hello)), connection_(std::move(connection)),
      answers_(options, log) {}

Status CoordinatorSession::register_again() { return send({hello_}); }

Status CoordinatorSession::register_again_if_reconnected() {
  if (!connection_->reconnected()) return Status();
  // A coordinator that restarted does not know this connection.
  log_.info("reconnected to " + options_.coordinator + ": registering again");
  return register_again();
}

Status CoordinatorSession::send(Outgoing outgoing) { return connection_->send(std::move(outgoing)).status(); }

CoordinatorSession::Silence CoordinatorSession::silence() {
  const auto idle = std::chrono::steady_clock::now() - last_heard_;
  answers_.check(idle);
  if (idle < options_.idle_timeout) return Silence::kNone;
  return answers_.ever_answered() ? Silence::kFellSilent : Silence::kNeverAnswered;
}

std::optional<Incoming> CoordinatorSession::receive() {
  const auto idle = std::chrono::steady_clock::now() - last_heard_;
  // Never negative: ZeroMQ would wait forever.
  const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(options_.idle_timeout - idle),
                             std::chrono::milliseconds(0));
  std::optional<Incoming> incoming = connection_->receive(std::min(left, kPollInterval), ReceiveLimits{});
  if (incoming) {
    last_heard_ = std::chrono::steady_clock::now();
    answers_.answered();
  }
  return incoming;
}

}  // namespace cohort
