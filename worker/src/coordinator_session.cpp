#include "coordinator_session.h"

#include <algorithm>
#include <utility>

#include "cohort/endpoint.h"
#include "cohort/transport.h"

namespace cohort {

Result<std::unique_ptr<CoordinatorSession>> CoordinatorSession::open(zmq::context_t& context,
                                                                     const WorkerOptions& options,
                                                                     const Identity& identity, Hello hello,
                                                                     Logger& log) {
  std::unique_ptr<CoordinatorSession> session(new CoordinatorSession(context, options, std::move(hello), log));
  COHORT_RETURN_IF_ERROR(session->connect(context, identity));
  COHORT_RETURN_IF_ERROR(session->register_again());
  session->last_heard_ = std::chrono::steady_clock::now();  // the idle timeout starts once registered
  return session;
}

CoordinatorSession::CoordinatorSession(zmq::context_t& context, const WorkerOptions& options, Hello hello,
                                       Logger& log)
    : options_(options),
      log_(log),
      hello_(std::move(hello)),
      socket_(context, zmq::socket_type::dealer),
      answers_(options, log) {
  socket_.set(zmq::sockopt::linger, 5000);
}

// Watching from before the first connection, or (CURVE) from right after
// the handshake that connect_authenticated waits for.
Status CoordinatorSession::connect(zmq::context_t& context, const Identity& identity) {
  COHORT_RETURN_IF_ERROR(check_endpoint(options_.coordinator, EndpointUse::kConnect)
                             .with_context("the coordinator's address"));
  if (!options_.curve) {
    connections_.emplace(context, socket_, /*connected=*/false);
    try {
      socket_.connect(options_.coordinator);
    } catch (const zmq::error_t& e) {
      return Status::invalid_argument("cannot connect to '" + options_.coordinator + "': " + e.what());
    }
    return Status();
  }
  COHORT_RETURN_IF_ERROR(make_curve_client(socket_, identity, *options_.coordinator_key));
  COHORT_RETURN_IF_ERROR(
      connect_authenticated(context, socket_, options_.coordinator, options_.idle_timeout, &log_));
  connections_.emplace(context, socket_, /*connected=*/true);
  return Status();
}

Status CoordinatorSession::register_again() { return send({hello_}); }

Status CoordinatorSession::register_again_if_reconnected() {
  if (!connections_->reconnected()) return Status();
  // A coordinator that restarted does not know this connection.
  log_.info("reconnected to " + options_.coordinator + ": registering again");
  return register_again();
}

Status CoordinatorSession::send(Outgoing outgoing) { return send_message(socket_, std::move(outgoing)).status(); }

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
  std::optional<Incoming> incoming =
      receive_message(socket_, /*has_routing_id=*/false, std::min(left, kPollInterval));
  if (incoming) {
    last_heard_ = std::chrono::steady_clock::now();
    answers_.answered();
  }
  return incoming;
}

}  // namespace cohort
