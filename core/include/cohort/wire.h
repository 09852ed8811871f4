// Sending and receiving protocol messages over ZeroMQ sockets.
//
// One protocol message is one ZeroMQ multipart message:
//   [routing id]  - only on a ROUTER socket (the coordinator side)
//   envelope      - a Cap'n Proto Envelope (protocol.h)
//   payload...    - zero or more raw tensor chunks (tensor_codec.h)
// Receiving always drains every frame of the multipart message, so a
// malformed message never desynchronises the socket.
//
// Sockets are not thread-safe; these functions must be called by the thread
// that owns the socket.
#pragma once

#include <chrono>
#include <optional>
#include <vector>

#include <zmq.hpp>

#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

struct Outgoing {
  Outgoing(Message m, std::vector<zmq::message_t> frames = {})  // NOLINT: implicit by design
      : message(std::move(m)), payload(std::move(frames)) {}

  Message message;
  std::vector<zmq::message_t> payload;  // tensor chunks, sent zero-copy
};

struct Incoming {
  std::optional<zmq::message_t> routing_id;  // set on ROUTER sockets
  Result<Message> message = Status::internal("no message");
  std::vector<zmq::message_t> payload;
  size_t bytes = 0;  // all frames, for metrics
  // The CURVE key the sender's connection authenticated with, in hex (the
  // ZAP user id, transport.h); "" on a connection without CURVE.
  std::string user_id;
};

// Sends one message. Returns the bytes sent, or IoError if ZeroMQ refused
// (e.g. the peer is gone on a ROUTER with ZMQ_ROUTER_MANDATORY).
Result<size_t> send_message(zmq::socket_t& socket, Outgoing outgoing,
                            const zmq::message_t* routing_id = nullptr);

// Waits up to `timeout` for one message. Returns nullopt on timeout.
// `has_routing_id` must be true for ROUTER sockets. Decoding errors are
// reported in Incoming::message, with routing_id set so the sender can be
// answered. Payload frames beyond `max_payload_frames` are drained and
// reported as ResourceExhausted.
std::optional<Incoming> receive_message(zmq::socket_t& socket, bool has_routing_id,
                                        std::chrono::milliseconds timeout,
                                        const DecodeLimits& limits = DecodeLimits(),
                                        size_t max_payload_frames = 65536);

}  // namespace cohort
