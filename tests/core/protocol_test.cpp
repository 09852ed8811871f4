// The protocol: every message kind survives encode and decode, the signing
// bytes cover every field, and the names of kinds, error codes and dtypes.
// What the decoder refuses is in protocol_decode_test.cpp; the sample
// messages are in protocol_testing.h.
#include "cohort/protocol.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cohort/proto/cohort.capnp.h"
#include "protocol_testing.h"

namespace cohort::protocol_testing {
namespace {

Message round_trip(const Message& m) {
  std::vector<uint8_t> bytes = encode_message(m);
  Result<Message> decoded = decode_message(bytes);
  EXPECT_TRUE(decoded.ok()) << decoded.status().to_string();
  return decoded.ok() ? std::move(decoded).value() : Message{Bye{"<decode failed>"}};
}

// ------------------------------------------------------------ round trips

TEST(ProtocolRoundTripTest, Hello) {
  Message m = sample_hello();
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, Welcome) {
  Message m = Welcome{3, "fashion-fedavg", 50, {}, {}};
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, WelcomeWithTheWorkersReceipts) {
  Welcome welcome{3, "fashion-fedavg", 50, {}, {}};
  welcome.receipts = {sample_receipt(), sample_receipt()};
  welcome.receipts[1].task_id = 99;
  Message m = welcome;
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, TaskNamingAModelArchive) {
  Task t = sample_task();
  t.model_name = "torchscript";
  t.model_archive = bytes32(0x44);
  t.hyper.loss = LossKind::kNll;
  Message m = t;
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, ModelRequestAndModelArchive) {
  Message request = ModelRequest{bytes32(0x45)};
  EXPECT_EQ(round_trip(request), request);
  Message archive = ModelArchiveMessage{bytes32(0x46), uint64_t{5} << 30, 321};
  EXPECT_EQ(round_trip(archive), archive);
  EXPECT_EQ(message_kind(request), "model-request");
  EXPECT_EQ(message_kind(archive), "model-archive");
}

TEST(ProtocolRoundTripTest, TaskWithSeveralTensors) {
  Message m = sample_task();
  Message back = round_trip(m);
  EXPECT_EQ(back, m);
  ASSERT_TRUE(std::holds_alternative<Task>(back));
  const PayloadHeader& h = std::get<Task>(back).model;
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[1].shape, (std::vector<int64_t>{20, 1, 5, 5}));
  EXPECT_TRUE(h.tensors[2].shape.empty());
}

TEST(ProtocolRoundTripTest, Update) {
  Message m = sample_update();
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, RoundResult) {
  Message m = sample_round_result();
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, ErrorReply) {
  Message m = sample_error();
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, Bye) {
  Message m = Bye{"job done"};
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, UpdateWithoutCommitment) {
  Update u = sample_update();
  u.commitment.reset();
  Message m = u;
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, Challenge) {
  Message m = sample_challenge();
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, Reveal) {
  Message m = sample_reveal();
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, RoundResultWithReceipt) {
  RoundResult r = sample_round_result();
  r.receipt = sample_receipt();
  Message m = r;
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolSigningTest, EveryFieldOfATaskIsCovered) {
  const PublicKey worker = bytes32(0xee);
  const auto base = task_signing_bytes(sample_task(), worker);
  std::vector<std::function<void(Task&)>> edits = {
      [](Task& t) { t.round++; },
      [](Task& t) { t.task_id++; },
      [](Task& t) { t.model_name = "mlp"; },
      [](Task& t) { t.hyper.learning_rate *= 0.99; },
      [](Task& t) { t.hyper.batch_size++; },
      [](Task& t) { t.hyper.keep_momentum = !t.hyper.keep_momentum; },
      [](Task& t) { t.hyper.loss = LossKind::kBceWithLogits; },
      [](Task& t) { t.data.part_index++; },
      [](Task& t) { t.seed++; },
      [](Task& t) { t.deadline_unix_ms++; },
      [](Task& t) { t.model.digest[0] ^= 1; },
      [](Task& t) { t.proof.params.segment_steps++; },
      [](Task& t) { t.proof.total_steps++; },
      [](Task& t) { t.proof.secret_commitment[5] ^= 1; },
      [](Task& t) { t.proof.min_stake++; },
      [](Task& t) { t.proof.dataset_digest[0] ^= 1; },
      [](Task& t) { t.proof.challenge.audit_probability = 1.0; },
      [](Task& t) { t.proof.challenge.segments_per_audit++; },
      [](Task& t) { t.proof.start_momentum[31] ^= 1; },
      [](Task& t) { t.model_archive[0] ^= 1; },
  };
  for (size_t i = 0; i < edits.size(); ++i) {
    Task t = sample_task();
    edits[i](t);
    EXPECT_NE(task_signing_bytes(t, worker), base) << "edit " << i;
  }
  Task t = sample_task();
  t.signature.fill(0);  // the signature itself is not covered
  EXPECT_EQ(task_signing_bytes(t, worker), base);
  EXPECT_NE(task_signing_bytes(sample_task(), bytes32(0xef)), base);
}

TEST(ProtocolSigningTest, UpdateCommitmentChallengeAndRevealAreCovered) {
  const PublicKey worker = bytes32(0xee);
  Update u = sample_update();
  const auto update_bytes = update_signing_bytes(u, worker);
  u.commitment->root[0] ^= 1;
  EXPECT_NE(update_signing_bytes(u, worker), update_bytes);
  u = sample_update();
  u.commitment->last.proof[1][0] ^= 1;
  EXPECT_NE(update_signing_bytes(u, worker), update_bytes);
  u = sample_update();
  u.delta.digest[3] ^= 1;
  EXPECT_NE(update_signing_bytes(u, worker), update_bytes);
  u = sample_update();
  u.num_samples++;
  EXPECT_NE(update_signing_bytes(u, worker), update_bytes);

  ChallengeMessage c = sample_challenge();
  const auto challenge_bytes = challenge_signing_bytes(c, worker);
  c.challenge.segments.back()++;
  EXPECT_NE(challenge_signing_bytes(c, worker), challenge_bytes);

  Reveal r = sample_reveal();
  const auto reveal_bytes = reveal_signing_bytes(r, worker);
  r.segments[1].after.leaf.batches[0] ^= 1;
  EXPECT_NE(reveal_signing_bytes(r, worker), reveal_bytes);
  r = sample_reveal();
  r.states.digest[0] ^= 1;
  EXPECT_NE(reveal_signing_bytes(r, worker), reveal_bytes);
}

TEST(ProtocolSigningTest, KindsAreDomainSeparated) {
  // A signature over one kind of message never verifies as another: the
  // domain tags differ even for default-constructed messages.
  const PublicKey worker{};
  const auto task = task_signing_bytes(Task{}, worker);
  const auto update = update_signing_bytes(Update{}, worker);
  const auto challenge = challenge_signing_bytes(ChallengeMessage{}, worker);
  const auto reveal = reveal_signing_bytes(Reveal{}, worker);
  EXPECT_NE(task, update);
  EXPECT_NE(update, challenge);
  EXPECT_NE(challenge, reveal);
  EXPECT_NE(task, reveal);
}

TEST(ProtocolTest, RevealTensorNamesSortInSegmentOrder) {
  EXPECT_EQ(reveal_tensor_name(3, false, false), "s000003.before.parameters");
  EXPECT_LT(reveal_tensor_name(9, true, true), reveal_tensor_name(10, false, false));
  EXPECT_LT(reveal_tensor_name(9, false, true), reveal_tensor_name(9, false, false));
}

TEST(ProtocolRoundTripTest, EveryErrorCode) {
  for (uint16_t raw = 0; raw <= 12; ++raw) {
    Message m = ErrorReply{static_cast<ErrorCode>(raw), "x", 1, 2};
    EXPECT_EQ(round_trip(m), m) << "code " << raw;
  }
}

TEST(ProtocolRoundTripTest, EveryPartitionSchemeAndDeviceKind) {
  for (PartitionScheme scheme : {PartitionScheme::kIid, PartitionScheme::kDirichlet,
                                 PartitionScheme::kGamma, PartitionScheme::kNone}) {
    Task t = sample_task();
    t.data.scheme = scheme;
    Message m = t;
    EXPECT_EQ(round_trip(m), m) << partition_scheme_name(scheme);
  }
  Hello h = sample_hello();
  h.device.kind = DeviceKind::kCpu;
  Message m = h;
  EXPECT_EQ(round_trip(m), m);
}

TEST(ProtocolRoundTripTest, RoundTripDetectsAChangedField) {
  // Guards the tests above: equality really compares the decoded fields.
  Task t = sample_task();
  std::vector<uint8_t> bytes = encode_message(t);
  t.model.tensors[1].shape[0] = 21;
  Result<Message> decoded = decode_message(bytes);
  ASSERT_TRUE(decoded.ok());
  EXPECT_NE(decoded.value(), Message{t});
}

TEST(ProtocolTest, MessageKindNames) {
  EXPECT_EQ(message_kind(Hello{}), "hello");
  EXPECT_EQ(message_kind(Welcome{}), "welcome");
  EXPECT_EQ(message_kind(Task{}), "task");
  EXPECT_EQ(message_kind(Update{}), "update");
  EXPECT_EQ(message_kind(RoundResult{}), "round-result");
  EXPECT_EQ(message_kind(ErrorReply{}), "error");
  EXPECT_EQ(message_kind(Bye{}), "bye");
  EXPECT_EQ(message_kind(ChallengeMessage{}), "challenge");
  EXPECT_EQ(message_kind(Reveal{}), "reveal");
}

TEST(ProtocolTest, RoundResultWithoutModelHashDecodesAsZeros) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setVersion(kProtocolVersion);
  envelope.getBody().initRoundResult().setRound(2);
  Result<Message> decoded = decode_message(to_bytes(builder));
  ASSERT_TRUE(decoded.ok()) << decoded.status().to_string();
  const auto& r = std::get<RoundResult>(decoded.value());
  EXPECT_EQ(r.round, 2u);
  EXPECT_EQ(r.model_hash, Digest{});
}

// ------------------------------------------------------------ error codes

TEST(ProtocolTest, ErrorCodeForMapsStatusCodes) {
  EXPECT_EQ(error_code_for(Status::corruption("x")), ErrorCode::kMalformedMessage);
  EXPECT_EQ(error_code_for(Status::resource_exhausted("x")), ErrorCode::kTooLarge);
  EXPECT_EQ(error_code_for(Status::deadline_exceeded("x")), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(error_code_for(Status::unavailable("x")), ErrorCode::kUnavailable);
  EXPECT_EQ(error_code_for(Status::invalid_argument("x")), ErrorCode::kInvalidUpdate);
  // Chosen by the code, never by the message's words.
  EXPECT_EQ(error_code_for(Status::unsupported("x")), ErrorCode::kUnsupportedVersion);
  EXPECT_EQ(error_code_for(Status::failed_precondition("unsupported protocol version 2")),
            ErrorCode::kWrongRound);
  EXPECT_EQ(error_code_for(Status::failed_precondition("round 3 is closed")),
            ErrorCode::kWrongRound);
  EXPECT_EQ(error_code_for(Status::internal("x")), ErrorCode::kInternal);
  EXPECT_EQ(error_code_for(Status::io_error("x")), ErrorCode::kInternal);
  EXPECT_EQ(error_code_for(Status::not_found("x")), ErrorCode::kInternal);
}

TEST(ProtocolTest, ErrorCodeForGarbageIsMalformedMessage) {
  std::vector<uint8_t> garbage(24, 0xab);
  EXPECT_EQ(error_code_for(decode_message(garbage).status()), ErrorCode::kMalformedMessage);
}

TEST(ProtocolTest, ErrorCodeNames) {
  EXPECT_EQ(error_code_name(ErrorCode::kInternal), "internal");
  EXPECT_EQ(error_code_name(ErrorCode::kUnsupportedVersion), "unsupported version");
  EXPECT_EQ(error_code_name(ErrorCode::kUnavailable), "unavailable");
}

// ------------------------------------------------------------ dtypes

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::kFloat32), 4u);
  EXPECT_EQ(dtype_size(DType::kFloat64), 8u);
  EXPECT_EQ(dtype_size(DType::kFloat16), 2u);
  EXPECT_EQ(dtype_size(DType::kBFloat16), 2u);
  EXPECT_EQ(dtype_name(DType::kFloat32), "float32");
  EXPECT_EQ(dtype_name(DType::kFloat64), "float64");
  EXPECT_EQ(dtype_name(DType::kFloat16), "float16");
  EXPECT_EQ(dtype_name(DType::kBFloat16), "bfloat16");
}

TEST(DTypeTest, ParseInvertsName) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    Result<DType> r = parse_dtype(dtype_name(d));
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, d);
  }
}

TEST(DTypeTest, ParseRejectsUnknownNames) {
  for (const char* name : {"", "fp16", "Float32", "float"}) {
    Result<DType> r = parse_dtype(name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  }
  EXPECT_NE(parse_dtype("fp16").status().message().find("'fp16'"), std::string::npos);
}

TEST(TensorSpecTest, NumelIsProductOfShape) {
  EXPECT_EQ((TensorSpec{"s", DType::kFloat32, {}}).numel(), 1);
  EXPECT_EQ((TensorSpec{"w", DType::kFloat32, {20, 1, 5, 5}}).numel(), 500);
  EXPECT_EQ((TensorSpec{"e", DType::kFloat32, {3, 0}}).numel(), 0);
}

}  // namespace
}  // namespace cohort::protocol_testing
