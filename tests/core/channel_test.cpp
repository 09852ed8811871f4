// The Channel contract, for both implementations: a peer's message reaches
// the server with the peer's name, the server's answer reaches the peer,
// decoding errors and frame limits arrive as errors with the sender, and a
// send to a peer that is not there fails.
#include "cohort/channel.h"

#include <gtest/gtest.h>

#include <zmq.hpp>

#include "cohort/crypto.h"
#include "cohort/log.h"
#include "cohort/router_channel.h"
#include "support/frames.h"

namespace cohort {
namespace {

using std::chrono::milliseconds;

using testing::frame_of;
using testing::text_of;

TEST(InProcessChannel, APeersMessageArrivesWithItsNameAndTheAnswerComesBack) {
  InProcessChannel channel;
  std::shared_ptr<InProcessChannel::Peer> peer = channel.connect("w1", "user-key");
  Frame shared = Frame::shared(std::make_shared<std::string>("xyz"), {reinterpret_cast<const uint8_t*>("xyz"), 3});
  ASSERT_TRUE(peer->send({Bye{"leaving"}, {frame_of("abc"), shared}}).ok());

  std::optional<Incoming> in = channel.receive(milliseconds(1000), {});
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->peer, "w1");
  EXPECT_EQ(in->user_id, "user-key");
  ASSERT_TRUE(in->message.ok()) << in->message.status().to_string();
  EXPECT_EQ(std::get<Bye>(in->message.value()).reason, "leaving");
  ASSERT_EQ(in->payload.size(), 2u);
  EXPECT_EQ(text_of(in->payload[0]), "abc");
  // No copy: the sender's bytes, still shared (so nobody may write them).
  EXPECT_EQ(in->payload[1].data(), shared.data());
  EXPECT_FALSE(in->payload[1].is_exclusive());
  EXPECT_EQ(in->bytes, encode_message(Bye{"leaving"}).size() + 6);

  ASSERT_TRUE(channel.send("w1", {Welcome{3, "job", 2, {}, {}}}).ok());
  std::optional<Incoming> reply = peer->receive(milliseconds(1000));
  ASSERT_TRUE(reply && reply->message.ok());
  EXPECT_EQ(std::get<Welcome>(reply->message.value()).worker_index, 3u);
}

TEST(InProcessChannel, ReceiveTimesOutWithNothingPending) {
  InProcessChannel channel;
  std::shared_ptr<InProcessChannel::Peer> peer = channel.connect("w1");
  EXPECT_FALSE(channel.receive(milliseconds(10), {}).has_value());
  EXPECT_FALSE(peer->receive(milliseconds(10)).has_value());
}

TEST(InProcessChannel, SendsToAnUnknownOrDisconnectedPeerFail) {
  InProcessChannel channel;
  EXPECT_EQ(channel.send("nobody", {Bye{"x"}}).status().code(), Status::Code::kUnavailable);
  std::shared_ptr<InProcessChannel::Peer> peer = channel.connect("w1");
  peer->disconnect();
  EXPECT_EQ(channel.send("w1", {Bye{"x"}}).status().code(), Status::Code::kUnavailable);
}

TEST(InProcessChannel, APeerOutlivingTheChannelCannotSend) {
  std::shared_ptr<InProcessChannel::Peer> peer;
  {
    InProcessChannel channel;
    peer = channel.connect("w1");
  }
  EXPECT_EQ(peer->send({Bye{"x"}}).status().code(), Status::Code::kUnavailable);
  EXPECT_FALSE(peer->receive(milliseconds(10)).has_value());
}

TEST(InProcessChannel, TooManyPayloadFramesArriveAsAnErrorWithTheSender) {
  InProcessChannel channel;
  std::shared_ptr<InProcessChannel::Peer> peer = channel.connect("w1");
  ASSERT_TRUE(peer->send({Bye{"first"}, Frames(10, frame_of("x"))}).ok());
  ReceiveLimits limits;
  limits.max_payload_frames = 4;
  std::optional<Incoming> in = channel.receive(milliseconds(1000), limits);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->peer, "w1");
  EXPECT_EQ(in->message.status().code(), Status::Code::kResourceExhausted);
  EXPECT_TRUE(in->payload.empty());
}

TEST(InProcessChannel, AnEnvelopeOverTheDecodeLimitArrivesAsAnError) {
  InProcessChannel channel;
  std::shared_ptr<InProcessChannel::Peer> peer = channel.connect("w1");
  ASSERT_TRUE(peer->send({Bye{std::string(1000, 'x')}}).ok());
  ReceiveLimits limits;
  limits.decode.max_envelope_bytes = 100;
  std::optional<Incoming> in = channel.receive(milliseconds(1000), limits);
  ASSERT_TRUE(in.has_value());
  EXPECT_EQ(in->peer, "w1");
  EXPECT_FALSE(in->message.ok());
}

// The same contract over ZeroMQ: a DEALER talks to listen_router's ROUTER.
// listen_router on loopback, plaintext.
class RouterChannelTest : public ::testing::Test {
 protected:
  RouterChannelTest() {
    network_.listen = "tcp://127.0.0.1:*";
    network_.curve = false;
  }
  Result<std::unique_ptr<Channel>> listen() { return listen_router(context_, network_, Identity::generate(), log_); }

  zmq::context_t context_;
  std::ostringstream log_text_;
  Logger log_{log_text_, LogLevel::kInfo, "test"};
  NetworkSection network_;
};

TEST_F(RouterChannelTest, ADealersMessageArrivesWithItsRoutingIdAndTheAnswerComesBack) {
  Result<std::unique_ptr<Channel>> channel = listen();
  ASSERT_TRUE(channel.ok()) << channel.status().to_string();
  EXPECT_NE(log_text_.str().find("without CURVE"), std::string::npos) << log_text_.str();

  zmq::socket_t dealer(context_, zmq::socket_type::dealer);
  dealer.set(zmq::sockopt::routing_id, "w1");
  dealer.connect((*channel)->endpoint());
  ASSERT_TRUE(send_message(dealer, {Bye{"leaving"}, {frame_of("abc")}}).ok());
  std::optional<Incoming> in = (*channel)->receive(milliseconds(5000), {});
  ASSERT_TRUE(in && in->message.ok());
  EXPECT_EQ(in->peer, "w1");
  ASSERT_EQ(in->payload.size(), 1u);
  EXPECT_EQ(text_of(in->payload[0]), "abc");
  EXPECT_TRUE(in->payload[0].is_exclusive());

  ASSERT_TRUE((*channel)->send("w1", {Welcome{3, "job", 2, {}, {}}}).ok());
  std::optional<Incoming> reply = receive_message(dealer, false, milliseconds(5000));
  ASSERT_TRUE(reply && reply->message.ok());
  EXPECT_EQ(std::get<Welcome>(reply->message.value()).worker_index, 3u);
  // ZMQ_ROUTER_MANDATORY: a peer that is not there is an error, not a drop.
  EXPECT_FALSE((*channel)->send("nobody", {Bye{"x"}}).ok());
}

TEST_F(RouterChannelTest, AnEndpointInUseIsAnIoErrorNamingIt) {
  Result<std::unique_ptr<Channel>> first = listen();
  ASSERT_TRUE(first.ok());
  network_.listen = (*first)->endpoint();
  Result<std::unique_ptr<Channel>> second = listen();
  ASSERT_EQ(second.status().code(), Status::Code::kIoError);
  EXPECT_NE(second.status().message().find(network_.listen), std::string::npos) << second.status().message();
}

}  // namespace
}  // namespace cohort
