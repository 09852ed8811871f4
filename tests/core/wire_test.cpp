// ZeroMQ framing: envelopes plus payload frames between a DEALER and a
// ROUTER, in-process.
#include "cohort/wire.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "cohort/tensor_codec.h"
#include "support/frames.h"

namespace cohort {
namespace {

using std::chrono::milliseconds;

using testing::frame_of;
using testing::text_of;

class WireTest : public ::testing::Test {
 protected:
  WireTest() : router_(context_, zmq::socket_type::router), dealer_(context_, zmq::socket_type::dealer) {
    router_.bind("inproc://wire-test");
    dealer_.connect("inproc://wire-test");
  }

  zmq::context_t context_;
  zmq::socket_t router_;
  zmq::socket_t dealer_;
};

TEST_F(WireTest, MessageWithPayloadArrivesWithRoutingIdAndFrames) {
  Frames payload = {frame_of("abc"), frame_of("defg")};
  auto sent = send_message(dealer_, {Bye{"leaving"}, std::move(payload)});
  ASSERT_TRUE(sent.ok());

  auto in = receive_message(router_, /*has_routing_id=*/true, milliseconds(2000));
  ASSERT_TRUE(in.has_value());
  ASSERT_FALSE(in->peer.empty());
  ASSERT_TRUE(in->message.ok()) << in->message.status().to_string();
  EXPECT_EQ(std::get<Bye>(in->message.value()).reason, "leaving");
  ASSERT_EQ(in->payload.size(), 2u);
  EXPECT_EQ(text_of(in->payload[1]), "defg");
  EXPECT_TRUE(in->payload[1].is_exclusive());
  EXPECT_EQ(in->bytes, *sent + in->peer.size());

  // A reply through the routing id reaches the dealer.
  ASSERT_TRUE(send_message(router_, {Welcome{3, "job", 2, {}, {}}}, in->peer).ok());
  auto reply = receive_message(dealer_, false, milliseconds(2000));
  ASSERT_TRUE(reply && reply->message.ok());
  EXPECT_EQ(std::get<Welcome>(reply->message.value()).worker_index, 3u);
}

TEST_F(WireTest, ReceiveTimesOutWithNothingPending) {
  EXPECT_FALSE(receive_message(router_, true, milliseconds(20)).has_value());
}

TEST_F(WireTest, TooManyPayloadFramesAreDrainedAndTheNextMessageStillDecodes) {
  Frames payload(10, frame_of("x"));
  ASSERT_TRUE(send_message(dealer_, {Bye{"first"}, std::move(payload)}).ok());
  ASSERT_TRUE(send_message(dealer_, {Bye{"second"}}).ok());

  auto first = receive_message(router_, true, milliseconds(2000), DecodeLimits(), /*max_payload_frames=*/4);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->message.status().code(), Status::Code::kResourceExhausted);
  EXPECT_TRUE(first->payload.empty());
  auto second = receive_message(router_, true, milliseconds(2000), DecodeLimits(), 4);
  ASSERT_TRUE(second && second->message.ok());
  EXPECT_EQ(std::get<Bye>(second->message.value()).reason, "second");
}

TEST_F(WireTest, GarbageEnvelopeIsReportedWithTheSendersRoutingId) {
  dealer_.send(zmq::str_buffer("not capnp"));
  auto in = receive_message(router_, true, milliseconds(2000));
  ASSERT_TRUE(in.has_value());
  EXPECT_FALSE(in->peer.empty());
  EXPECT_EQ(in->message.status().code(), Status::Code::kCorruption);
}

// 100M parameters (400 MB) is far past Cap'n Proto's 64 MiB traversal limit;
// it must travel as 16 MiB frames and arrive intact.
TEST_F(WireTest, HundredMillionParameterModelTransfers) {
  constexpr int64_t kParams = 100'000'000;
  Layout layout{{TensorSpec{"big.weight", DType::kFloat32, {10'000, 10'000}}}};
  at::Tensor flat = at::arange(kParams, at::kFloat).remainder_(1000.0f);
  auto encoded = encode_payload(layout, flat, size_t{16} << 20);
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(encoded->header().chunk_count, 24u);  // ceil(400,000,000 / 16 MiB)

  Update update;
  update.num_samples = 1;
  update.delta = encoded->header();
  ASSERT_TRUE(send_message(dealer_, {update, encoded->chunks()}).ok());
  auto in = receive_message(router_, true, milliseconds(10000));
  ASSERT_TRUE(in && in->message.ok());
  auto decoded = decode_payload(std::get<Update>(in->message.value()).delta, std::move(in->payload),
                                PayloadLimits{}, &layout);
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  EXPECT_TRUE(at::equal(decoded->flat, flat));
}

}  // namespace
}  // namespace cohort
