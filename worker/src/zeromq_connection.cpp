// The worker's DEALER connection (worker_connection.h). A socket monitor
// (transport.h) tells when the socket connected again after losing its
// connection (the coordinator restarted, or the network failed).
#include <algorithm>
#include <memory>
#include <utility>

#include "cohort/endpoint.h"
#include "cohort/transport.h"
#include "cohort/wire.h"
#include "cohort/worker_connection.h"

namespace cohort {
namespace {

class DealerConnection final : public ClientChannel {
 public:
  explicit DealerConnection(zmq::context_t& context) : socket_(context, zmq::socket_type::dealer) {
    socket_.set(zmq::sockopt::linger, 5000);
  }

  // Plaintext: watching from before the first connection.
  Status connect(zmq::context_t& context, const std::string& endpoint) {
    watch(context, /*connected=*/false);
    try {
      socket_.connect(endpoint);
    } catch (const zmq::error_t& e) {
      return Status::invalid_argument("cannot connect to '" + endpoint + "': " + e.what());
    }
    return Status();
  }

  // CURVE: watching from right after the handshake connect_authenticated
  // waits for.
  Status connect_with_curve(zmq::context_t& context, const WorkerOptions& options, const Identity& identity,
                            Logger& log) {
    COHORT_RETURN_IF_ERROR(make_curve_client(socket_, identity, *options.coordinator_key));
    COHORT_RETURN_IF_ERROR(
        connect_authenticated(context, socket_, options.coordinator, options.idle_timeout, &log));
    watch(context, /*connected=*/true);
    return Status();
  }

  Result<size_t> send(Outgoing outgoing) override { return send_message(socket_, std::move(outgoing)); }

  std::optional<Incoming> receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) override {
    return receive_message(socket_, /*has_routing_id=*/false, std::max(timeout, std::chrono::milliseconds(0)),
                           limits.decode, limits.max_payload_frames);
  }

  bool reconnected() override {
    int made = 0;
    while (monitor_->next(std::chrono::milliseconds(0))) ++made;
    const bool again = made > (connected_before_ ? 0 : 1);
    connected_before_ = connected_before_ || made > 0;
    return again;
  }

 private:
  void watch(zmq::context_t& context, bool connected) {
    monitor_.emplace(context, socket_, ZMQ_EVENT_CONNECTED);
    connected_before_ = connected;
  }

  zmq::socket_t socket_;
  std::optional<SocketMonitor> monitor_;
  bool connected_before_ = false;  // the first connection was made
};

}  // namespace

Result<CoordinatorConnector> zeromq_connector(zmq::context_t& context, const WorkerOptions& options,
                                             const Identity& identity, Logger& log) {
  COHORT_RETURN_IF_ERROR(check_endpoint(options.coordinator, EndpointUse::kConnect)
                             .with_context("the coordinator's address"));
  if (options.curve && !options.coordinator_key) {
    return Status::invalid_argument(
        "the coordinator's public key is needed to connect with CURVE: pass --coordinator-key (hex, or the "
        "coordinator.pub file in the coordinator's output directory)");
  }
  return CoordinatorConnector([&context, options, &identity, &log]() -> Result<std::unique_ptr<ClientChannel>> {
    auto connection = std::make_unique<DealerConnection>(context);
    if (options.curve) {
      COHORT_RETURN_IF_ERROR(connection->connect_with_curve(context, options, identity, log));
    } else {
      COHORT_RETURN_IF_ERROR(connection->connect(context, options.coordinator));
    }
    return std::unique_ptr<ClientChannel>(std::move(connection));
  });
}

}  // namespace cohort
