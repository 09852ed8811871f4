// Sending and receiving protocol messages over ZeroMQ sockets.
//
// One protocol message is one ZeroMQ multipart message:
//   [routing id]  - only on a ROUTER socket (the coordinator side)
//   envelope      - a Cap'n Proto Envelope (protocol.h)
//   payload...    - zero or more raw tensor chunks (tensor_codec.h)
// Receiving always drains every frame of the multipart message, so a
// malformed message never desynchronises the socket.
//
// Outgoing and Incoming are what every Channel (channel.h) carries; the
// socket functions here are the ZeroMQ layer under RouterChannel and the
// worker. Sockets are not thread-safe; these functions must be called by
// the thread that owns the socket.
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include "cohort/frame.h"
#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

struct Outgoing {
  Outgoing(Message m, Frames frames = {})  // NOLINT: implicit by design
      : message(std::move(m)), payload(std::move(frames)) {}

  Message message;
  Frames payload;  // tensor chunks, sent zero-copy
};

struct Incoming {
  // Who sent it: the peer's routing id on a ROUTER socket (and the name a
  // Channel answers it by); "" on a DEALER.
  std::string peer;
  Result<Message> message = Status::internal("no message");
  Frames payload;  // exclusive frames (frame.h) when they came off a socket
  size_t bytes = 0;  // all frames, for metrics
  // The CURVE key the sender's connection authenticated with, in hex (the
  // ZAP user id, transport.h); "" on a connection without CURVE.
  std::string user_id;
};

// Sends one message, to `routing_id` on a ROUTER socket (empty on a DEALER).
// Payload frames are sent without copying: ZeroMQ holds their owners until
// it has sent them. Returns the bytes sent, or IoError if ZeroMQ refused
// (e.g. the peer is gone on a ROUTER with ZMQ_ROUTER_MANDATORY).
Result<size_t> send_message(zmq::socket_t& socket, Outgoing outgoing, std::string_view routing_id = {});

// Finishes a received message: decodes `envelope` into in.message, or, when
// `dropped_frames` payload frames beyond `max_payload_frames` were not
// kept, reports ResourceExhausted and drops the payload. For channels that
// read messages off something other than a socket.
void decode_incoming(Incoming& in, std::span<const uint8_t> envelope, size_t dropped_frames,
                     size_t max_payload_frames, const DecodeLimits& limits);

// Waits up to `timeout` for one message. Returns nullopt on timeout.
// `has_routing_id` must be true for ROUTER sockets. Decoding errors are
// reported in Incoming::message, with `peer` set so the sender can be
// answered. Payload frames beyond `max_payload_frames` are drained and
// reported as ResourceExhausted.
std::optional<Incoming> receive_message(zmq::socket_t& socket, bool has_routing_id,
                                        std::chrono::milliseconds timeout,
                                        const DecodeLimits& limits = DecodeLimits(),
                                        size_t max_payload_frames = 65536);

}  // namespace cohort
