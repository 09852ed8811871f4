#include "cohort/wire.h"

#include "cohort/transport.h"

namespace cohort {

Result<size_t> send_message(zmq::socket_t& socket, Outgoing outgoing,
                            const zmq::message_t* routing_id) {
  try {
    size_t bytes = 0;
    if (routing_id != nullptr) {
      socket.send(zmq::message_t(routing_id->data(), routing_id->size()),
                  zmq::send_flags::sndmore);
    }
    std::vector<uint8_t> envelope = encode_message(outgoing.message);
    bytes += envelope.size();
    auto more = outgoing.payload.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore;
    socket.send(zmq::message_t(envelope.data(), envelope.size()), more);
    for (size_t i = 0; i < outgoing.payload.size(); ++i) {
      bytes += outgoing.payload[i].size();
      bool last = i + 1 == outgoing.payload.size();
      socket.send(outgoing.payload[i], last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
    return bytes;
  } catch (const zmq::error_t& e) {
    return Status::io_error(std::string("send failed: ") + e.what());
  }
}

namespace {

// Reads the remaining frames of a multipart message, keeping at most
// `keep` of them.
size_t drain_frames(zmq::socket_t& socket, std::vector<zmq::message_t>& kept, size_t keep,
                    size_t& dropped) {
  size_t bytes = 0;
  while (socket.get(zmq::sockopt::rcvmore)) {
    zmq::message_t frame;
    (void)socket.recv(frame, zmq::recv_flags::none);
    bytes += frame.size();
    if (kept.size() < keep) {
      kept.push_back(std::move(frame));
    } else {
      ++dropped;
    }
  }
  return bytes;
}

}  // namespace

std::optional<Incoming> receive_message(zmq::socket_t& socket, bool has_routing_id,
                                        std::chrono::milliseconds timeout,
                                        const DecodeLimits& limits, size_t max_payload_frames) {
  zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
  if (zmq::poll(&item, 1, timeout) == 0) return std::nullopt;

  Incoming in;
  zmq::message_t first;
  if (!socket.recv(first, zmq::recv_flags::dontwait)) return std::nullopt;
  in.bytes += first.size();
  zmq::message_t envelope;
  if (has_routing_id) {
    in.routing_id = std::move(first);
    if (!socket.get(zmq::sockopt::rcvmore)) {
      in.message = Status::corruption("message has no envelope frame");
      return in;
    }
    (void)socket.recv(envelope, zmq::recv_flags::none);
    in.bytes += envelope.size();
  } else {
    envelope = std::move(first);
  }
  in.user_id = authenticated_user(envelope);
  size_t dropped = 0;
  in.bytes += drain_frames(socket, in.payload, max_payload_frames, dropped);
  if (dropped > 0) {
    in.message = Status::resource_exhausted("message has " +
                                            std::to_string(in.payload.size() + dropped) +
                                            " payload frames, limit " +
                                            std::to_string(max_payload_frames));
    in.payload.clear();
    return in;
  }
  in.message = decode_message(
      {static_cast<const uint8_t*>(envelope.data()), envelope.size()}, limits);
  return in;
}

}  // namespace cohort
