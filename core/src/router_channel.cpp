#include "cohort/router_channel.h"

#include "cohort/transport.h"

namespace cohort {
namespace {

class RouterChannel final : public Channel {
 public:
  explicit RouterChannel(zmq::context_t& context) : socket_(context, zmq::socket_type::router) {}

  Status bind(zmq::context_t& context, const NetworkSection& network, const Identity& identity, Logger& log) {
    socket_.set(zmq::sockopt::router_mandatory, 1);  // sends to a gone peer fail
    socket_.set(zmq::sockopt::maxmsgsize, network.max_message_bytes);
    // Per peer: ZeroMQ stops reading from a peer whose queue is full.
    socket_.set(zmq::sockopt::rcvhwm, network.max_pending_messages);
    socket_.set(zmq::sockopt::linger, 2000);
    if (network.curve) COHORT_RETURN_IF_ERROR(secure(context, network, identity, log));
    try {
      socket_.bind(network.listen);
    } catch (const zmq::error_t& e) {
      return Status::io_error("cannot listen on " + network.listen + ": " + e.what());
    }
    log.info("listening on " + endpoint() +
             (!network.curve                ? " without CURVE (plaintext)"
              : network.allow_list.empty() ? " with CURVE, open registration"
                                           : " with CURVE, allow-list " + network.allow_list.string()));
    return Status();
  }

  Result<size_t> send(const std::string& peer, Outgoing outgoing) override {
    return send_message(socket_, std::move(outgoing), peer);
  }

  std::optional<Incoming> receive(std::chrono::milliseconds timeout, const ReceiveLimits& limits) override {
    return receive_message(socket_, /*has_routing_id=*/true, timeout, limits.decode, limits.max_payload_frames);
  }

  std::string endpoint() const override { return socket_.get(zmq::sockopt::last_endpoint); }

 private:
  // CurveZMQ with the identity's key; a ZAP handler admits clients.
  Status secure(zmq::context_t& context, const NetworkSection& network, const Identity& identity, Logger& log) {
    Admission admission;
    if (!network.allow_list.empty()) {
      COHORT_ASSIGN_OR_RETURN(admission.allow_list, read_allow_list(network.allow_list));
    }
    COHORT_ASSIGN_OR_RETURN(zap_, ZapHandler::start(context, admission, log));
    make_curve_server(socket_, identity);
    return Status();
  }

  std::unique_ptr<ZapHandler> zap_;  // with CURVE; declared before socket_ so that it outlives it
  zmq::socket_t socket_;
};

}  // namespace

Result<std::unique_ptr<Channel>> listen_router(zmq::context_t& context, const NetworkSection& network,
                                               const Identity& identity, Logger& log) {
  auto channel = std::make_unique<RouterChannel>(context);
  COHORT_RETURN_IF_ERROR(channel->bind(context, network, identity, log));
  return std::unique_ptr<Channel>(std::move(channel));
}

}  // namespace cohort
