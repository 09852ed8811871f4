// A worker driven by hand from a test: it sends exactly the messages the
// test names, signed with its own key, and hands back what the coordinator
// answers, over a DEALER socket or a peer end of an InProcessChannel. Used
// by the in-process coordinator suite (tests/coordinator/) and the
// hostile-input tests (tests/integration/, sockets only).
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>
#include <zmq.hpp>

#include "cohort/channel.h"
#include "cohort/crypto.h"
#include "cohort/protocol.h"
#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "cohort/wire.h"

namespace cohort::testing {

class HandWorker {
 public:
  // Connects to `endpoint` through `context` (which must outlive it), with
  // CURVE when `curve_server` (the coordinator's key) is given.
  HandWorker(zmq::context_t& context, const std::string& endpoint,
             std::optional<PublicKey> curve_server = std::nullopt, Identity identity = Identity::generate())
      : identity_(std::move(identity)), socket_(std::in_place, context, zmq::socket_type::dealer) {
    socket_->set(zmq::sockopt::linger, 0);
    if (curve_server) {
      EXPECT_TRUE(make_curve_client(*socket_, identity_, *curve_server).ok());
    }
    socket_->connect(endpoint);
  }

  // Talks through `peer` (no socket: send_raw, send_bytes and socket() are
  // for the socket kind only).
  explicit HandWorker(std::shared_ptr<InProcessChannel::Peer> peer, Identity identity = Identity::generate())
      : identity_(std::move(identity)), peer_(std::move(peer)) {}
  HandWorker(HandWorker&&) = default;
  HandWorker& operator=(HandWorker&&) = default;
  // As a closed socket: the coordinator's later sends to it fail.
  ~HandWorker() {
    if (peer_) peer_->disconnect();
  }

  const Identity& identity() const { return identity_; }
  zmq::socket_t& socket() { return *socket_; }

  Hello hello() const {
    Hello hello;
    hello.worker_key = identity_.public_key();
    hello.device.name = "cpu";
    hello.dataset = DatasetInfo{"fashion-mnist", 60000, 10};
    return hello;
  }

  Update signed_update(Update update) const {
    update.signature = identity_.sign(update_signing_bytes(update, identity_.public_key()));
    return update;
  }

  void send(Message message, Frames payload = {}) {
    Outgoing outgoing{std::move(message), std::move(payload)};
    ASSERT_TRUE((peer_ ? peer_->send(std::move(outgoing)) : send_message(*socket_, std::move(outgoing))).ok());
  }
  void send_raw(const std::string& bytes) { socket_->send(zmq::buffer(bytes)); }
  void send_bytes(const std::vector<uint8_t>& envelope) { socket_->send(zmq::buffer(envelope.data(), envelope.size())); }

  // Sends a signed update for `task` whose delta is `delta` (zeros when
  // undefined), trained on `samples` samples.
  void send_update(const Task& task, at::Tensor delta = {}, uint64_t samples = 32) {
    const Layout layout{task.model.tensors};
    if (!delta.defined()) delta = at::zeros({layout.numel()});
    auto encoded = encode_payload(layout, delta, 1 << 20);
    ASSERT_TRUE(encoded.ok()) << encoded.status().to_string();
    Update update = update_for(task);
    update.num_samples = samples;
    update.delta = encoded->header();
    send(signed_update(update), encoded->chunks());
  }

  // An unsigned update for `task` with no delta yet.
  static Update update_for(const Task& task) {
    Update update;
    update.round = task.round;
    update.task_id = task.task_id;
    update.num_samples = 32;
    update.base_model_hash = task.model.digest;
    return update;
  }

  // The next message, which must decode.
  Incoming next(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
    std::optional<Incoming> in = peer_ ? peer_->receive(timeout) : receive_message(*socket_, false, timeout);
    EXPECT_TRUE(in.has_value()) << "no reply from the coordinator";
    if (!in) return Incoming{};
    EXPECT_TRUE(in->message.ok()) << in->message.status().to_string();
    return std::move(*in);
  }

  // The next message, which must be a T (nullopt, and a failure, otherwise).
  template <typename T>
  std::optional<T> next_as(std::chrono::milliseconds timeout = std::chrono::milliseconds(60000)) {
    Incoming in = next(timeout);
    if (!in.message.ok()) return std::nullopt;
    T* message = std::get_if<T>(&in.message.value());
    EXPECT_NE(message, nullptr) << "expected another message than " << message_kind(in.message.value());
    if (message == nullptr) return std::nullopt;
    return std::move(*message);
  }

  ErrorCode next_error_code() {
    std::optional<ErrorReply> error = next_as<ErrorReply>();
    return error ? error->code : ErrorCode::kInternal;
  }

 private:
  Identity identity_;
  std::optional<zmq::socket_t> socket_;              // one of the two
  std::shared_ptr<InProcessChannel::Peer> peer_;
};

}  // namespace cohort::testing
