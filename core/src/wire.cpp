#include "cohort/wire.h"

#include "cohort/transport.h"

namespace cohort {
namespace {

// Frees the owner reference a zero-copy ZeroMQ message held.
void release_owner(void* /*data*/, void* hint) { delete static_cast<std::shared_ptr<const void>*>(hint); }

// A ZeroMQ message that sends `frame`'s bytes without copying them.
zmq::message_t borrowing(const Frame& frame) {
  return zmq::message_t(const_cast<uint8_t*>(frame.data()), frame.size(), &release_owner,
                        new std::shared_ptr<const void>(frame.owner()));
}

// A received ZeroMQ message as an exclusive frame. Over tcp:// and ipc://
// the bytes are the receiver's own; over inproc:// ZeroMQ hands a zero-copy
// message over by reference, so they may be the sender's: senders never
// write a tensor they have sent (tensor_codec.h), which keeps this true
// enough for decode_payload to adopt them.
Frame frame_of(zmq::message_t message) {
  auto owner = std::make_shared<zmq::message_t>(std::move(message));
  std::span<uint8_t> bytes(static_cast<uint8_t*>(owner->data()), owner->size());
  return Frame::exclusive(std::move(owner), bytes);
}

// Reads the remaining frames of a multipart message, keeping at most
// `keep` of them.
size_t drain_frames(zmq::socket_t& socket, Frames& kept, size_t keep, size_t& dropped) {
  size_t bytes = 0;
  while (socket.get(zmq::sockopt::rcvmore)) {
    zmq::message_t frame;
    (void)socket.recv(frame, zmq::recv_flags::none);
    bytes += frame.size();
    if (kept.size() < keep) {
      kept.push_back(frame_of(std::move(frame)));
    } else {
      ++dropped;
    }
  }
  return bytes;
}

}  // namespace

Result<size_t> send_message(zmq::socket_t& socket, Outgoing outgoing, std::string_view routing_id) {
  try {
    size_t bytes = 0;
    if (!routing_id.empty()) {
      socket.send(zmq::message_t(routing_id.data(), routing_id.size()), zmq::send_flags::sndmore);
    }
    std::vector<uint8_t> envelope = encode_message(outgoing.message);
    bytes += envelope.size();
    auto more = outgoing.payload.empty() ? zmq::send_flags::none : zmq::send_flags::sndmore;
    socket.send(zmq::message_t(envelope.data(), envelope.size()), more);
    for (size_t i = 0; i < outgoing.payload.size(); ++i) {
      bytes += outgoing.payload[i].size();
      bool last = i + 1 == outgoing.payload.size();
      socket.send(borrowing(outgoing.payload[i]), last ? zmq::send_flags::none : zmq::send_flags::sndmore);
    }
    return bytes;
  } catch (const zmq::error_t& e) {
    return Status::io_error(std::string("send failed: ") + e.what());
  }
}

void decode_incoming(Incoming& in, std::span<const uint8_t> envelope, size_t dropped_frames,
                     size_t max_payload_frames, const DecodeLimits& limits) {
  if (dropped_frames > 0) {
    in.message = Status::resource_exhausted("message has " + std::to_string(in.payload.size() + dropped_frames) +
                                            " payload frames, limit " + std::to_string(max_payload_frames));
    in.payload.clear();
    return;
  }
  in.message = decode_message(envelope, limits);
}

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
    in.peer = first.to_string();
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
  decode_incoming(in, {static_cast<const uint8_t*>(envelope.data()), envelope.size()}, dropped,
                  max_payload_frames, limits);
  return in;
}

}  // namespace cohort
