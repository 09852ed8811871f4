#include "cohort/protocol.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cohort/proto/cohort.capnp.h"

namespace cohort {
namespace {

// 32 bytes first, first+1, ... so that every byte differs from the default 0.
std::array<uint8_t, 32> bytes32(uint8_t first) {
  std::array<uint8_t, 32> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

PayloadHeader three_tensor_header() {
  PayloadHeader h;
  h.tensors = {
      TensorSpec{"conv1.bias", DType::kFloat16, {20}},
      TensorSpec{"conv1.weight", DType::kBFloat16, {20, 1, 5, 5}},
      TensorSpec{"scalar", DType::kFloat64, {}},
  };
  h.total_bytes = 20 * 2 + 500 * 2 + 8;
  h.chunk_count = 3;
  h.digest = bytes32(0xa0);
  return h;
}

Hello sample_hello() {
  Hello m;
  m.worker_key = bytes32(1);
  m.device = DeviceInfo{DeviceKind::kCuda, "NVIDIA H100", 16, uint64_t{80} << 30};
  m.dataset = DatasetInfo{"fashion-mnist", 60000, 10};
  m.software = "cohort 0.1.0";
  return m;
}

Task sample_task() {
  Task m;
  m.round = 7;
  m.task_id = 0x1122334455667788ull;
  m.model_name = "cnn";
  m.hyper = Hyperparameters{25, 1.5, 64, 0.125, 0.9, 0.0005, true};
  m.data = DataSelection{PartitionScheme::kDirichlet, 8, 3, 0.3, 0.75, 99};
  m.seed = 123456789;
  m.deadline_unix_ms = -1700000000123;  // signed field: a negative value must survive
  m.model = three_tensor_header();
  m.proof.params = ProofParams{50, DeterminismProfile::kTolerant, 0.004};
  m.proof.total_steps = 470;
  m.proof.secret_commitment = bytes32(0x11);
  m.proof.reveal_seconds = 30.5;
  m.proof.min_stake = 300'000'000;
  m.proof.dataset_digest = bytes32(0x22);
  m.proof.challenge = ChallengeParams{0.375, 4};
  m.proof.start_momentum = bytes32(0x33);
  m.signature.fill(0x5a);
  return m;
}

LeafOpening sample_leaf(uint32_t index) {
  LeafOpening opening;
  opening.leaf = LeafData{index, uint64_t{index} * 50, bytes32(0x30), bytes32(0x31), bytes32(0x32)};
  opening.proof = {bytes32(0x33), bytes32(0x34), bytes32(0x35)};
  return opening;
}

UpdateCommitment sample_commitment() {
  return UpdateCommitment{bytes32(0x50), 470, 50, sample_leaf(0), sample_leaf(10)};
}

Update sample_update() {
  Update m;
  m.round = 9;
  m.task_id = 42;
  m.num_samples = 7500;
  m.metrics = TrainMetrics{0.4375, 0.8125, 25, 3.25};
  m.base_model_hash = bytes32(0x40);
  m.delta = three_tensor_header();
  m.delta.chunk_count = 11;
  m.delta.digest = bytes32(0x70);
  m.commitment = sample_commitment();
  m.signature.fill(0x6b);
  return m;
}

ChallengeMessage sample_challenge() {
  ChallengeMessage m;
  m.round = 3;
  m.task_id = 99;
  m.secret = bytes32(0x77);
  m.challenge = Challenge{true, {2, 7, 10}};
  m.signature.fill(0x7c);
  return m;
}

Reveal sample_reveal() {
  Reveal m;
  m.round = 3;
  m.task_id = 99;
  m.segments = {SegmentProof{2, sample_leaf(1), sample_leaf(2)}, SegmentProof{10, sample_leaf(9), sample_leaf(10)}};
  m.states = three_tensor_header();
  m.signature.fill(0x8d);
  return m;
}

Receipt sample_receipt() {
  Receipt r;
  r.round = 3;
  r.task_id = 99;
  r.worker = bytes32(0x01);
  r.update_hash = bytes32(0x02);
  r.verdict = Verdict::kFailed;
  r.reason = "segment 7: parameters differ after re-execution";
  r.reward = 0;
  r.slashed = 150'000'000;
  r.chain_seq = 41;
  r.chain_hash = bytes32(0x03);
  r.coordinator = bytes32(0x04);
  r.signature.fill(0x9e);
  return r;
}

RoundResult sample_round_result() {
  return RoundResult{12, true, "late by 3 s", 0.8867, 0.3125, 5, bytes32(0x90), {}};
}

ErrorReply sample_error() {
  return ErrorReply{ErrorCode::kTooLarge, "payload too large", 4, 77};
}

Message round_trip(const Message& m) {
  std::vector<uint8_t> bytes = encode_message(m);
  Result<Message> decoded = decode_message(bytes);
  EXPECT_TRUE(decoded.ok()) << decoded.status().to_string();
  return decoded.ok() ? std::move(decoded).value() : Message{Bye{"<decode failed>"}};
}

std::vector<uint8_t> to_bytes(capnp::MessageBuilder& builder) {
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

// A well-formed version-1 Hello envelope built directly with Cap'n Proto, so
// tests can then break one field.
proto::Hello::Builder init_raw_hello(capnp::MallocMessageBuilder& builder) {
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setVersion(kProtocolVersion);
  auto hello = envelope.getBody().initHello();
  auto key = bytes32(1);
  hello.setWorkerKey(kj::arrayPtr(key.data(), key.size()));
  hello.initDevice().setName("cpu");
  hello.initDataset().setKind("idx");
  hello.setSoftware("cohort");
  return hello;
}

proto::Task::Builder init_raw_task(capnp::MallocMessageBuilder& builder) {
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setVersion(kProtocolVersion);
  auto task = envelope.getBody().initTask();
  task.setModelName("cnn");
  auto model = task.initModel();
  auto digest = bytes32(2);
  model.setDigest(kj::arrayPtr(digest.data(), digest.size()));
  auto tensors = model.initTensors(1);
  tensors[0].setName("w");
  tensors[0].initShape(1).set(0, 4);
  return task;
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

TEST(ProtocolDecodeTest, WelcomeWithMoreReceiptsThanTheListLimitIsRefused) {
  Welcome welcome{3, "job", 5, {}, {}};
  welcome.receipts.assign(3, sample_receipt());
  DecodeLimits limits;
  limits.max_list_entries = 2;
  Result<Message> decoded = decode_message(encode_message(welcome), limits);
  EXPECT_EQ(decoded.status().code(), Status::Code::kResourceExhausted) << decoded.status().to_string();
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

TEST(ProtocolDecodeTest, OverlongMerkleProofIsResourceExhausted) {
  Update u = sample_update();
  u.commitment->first.proof.assign(2000, bytes32(1));
  Result<Message> decoded = decode_message(encode_message(u));
  EXPECT_EQ(decoded.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(decoded.status().message().find("Merkle proof"), std::string::npos);
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

// ------------------------------------------------------------ version

TEST(ProtocolDecodeTest, WrongVersionIsFailedPreconditionNamingIt) {
  for (uint32_t version : {0u, kProtocolVersion - 1, kProtocolVersion + 1, 4000000000u}) {
    std::vector<uint8_t> bytes = encode_message_with_version(Bye{"x"}, version);
    Result<Message> r = decode_message(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kFailedPrecondition);
    EXPECT_NE(r.status().message().find("unsupported protocol version " + std::to_string(version)),
              std::string::npos)
        << r.status().message();
    EXPECT_EQ(error_code_for(r.status()), ErrorCode::kUnsupportedVersion);
  }
}

TEST(ProtocolDecodeTest, EncodeWithCurrentVersionEqualsEncodeMessage) {
  Message m = sample_error();
  EXPECT_EQ(encode_message_with_version(m, kProtocolVersion), encode_message(m));
}

// ------------------------------------------------------------ garbage

TEST(ProtocolDecodeTest, EmptyInputIsCorruption) {
  Result<Message> r = decode_message({});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

TEST(ProtocolDecodeTest, LengthNotMultipleOfEightIsCorruption) {
  std::vector<uint8_t> bytes = encode_message(sample_task());
  bytes.push_back(0);
  Result<Message> r = decode_message(bytes);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_EQ(decode_message(std::span<const uint8_t>(bytes.data(), 13)).status().code(),
            Status::Code::kCorruption);
}

TEST(ProtocolDecodeTest, TruncatedMessageIsCorruption) {
  const std::vector<uint8_t> bytes = encode_message(sample_task());
  ASSERT_GT(bytes.size(), 16u);
  for (size_t size = 8; size < bytes.size(); size += 8) {
    Result<Message> r = decode_message(std::span<const uint8_t>(bytes.data(), size));
    ASSERT_FALSE(r.ok()) << "size " << size;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << "size " << size;
  }
}

TEST(ProtocolDecodeTest, RandomBytesAreRejected) {
  std::mt19937_64 rng(20240601);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<uint8_t> bytes(8 * (1 + trial % 32));
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng());
    Result<Message> r = decode_message(bytes);
    EXPECT_FALSE(r.ok()) << "trial " << trial;
  }
}

TEST(ProtocolDecodeTest, FlippedBytesNeverCrash) {
  // Any outcome is fine except a crash or an exception escaping.
  const std::vector<uint8_t> good = encode_message(sample_update());
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::vector<uint8_t> bytes = good;
      bytes[i] ^= mask;
      Result<Message> r = decode_message(bytes);
      if (!r.ok()) {
        EXPECT_FALSE(r.status().message().empty());
      }
    }
  }
}

TEST(ProtocolDecodeTest, OversizedEnvelopeIsResourceExhausted) {
  const std::vector<uint8_t> bytes = encode_message(sample_task());
  DecodeLimits limits;
  limits.max_envelope_bytes = bytes.size() - 8;
  Result<Message> r = decode_message(bytes, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  limits.max_envelope_bytes = bytes.size();  // exactly at the limit is fine
  EXPECT_TRUE(decode_message(bytes, limits).ok());
}

// ------------------------------------------------------------ field checks

TEST(ProtocolDecodeTest, WorkerKeyOfWrongLengthIsCorruption) {
  for (size_t size : {size_t{0}, size_t{31}, size_t{33}}) {
    capnp::MallocMessageBuilder builder;
    auto hello = init_raw_hello(builder);
    std::vector<uint8_t> key(size, 7);
    hello.setWorkerKey(kj::arrayPtr(key.data(), key.size()));
    Result<Message> r = decode_message(to_bytes(builder));
    ASSERT_FALSE(r.ok()) << size;
    EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << size;
    EXPECT_NE(r.status().message().find("worker key"), std::string::npos);
  }
}

TEST(ProtocolDecodeTest, RawHelloBuilderIsValid) {
  // Guards the tests that break one field of init_raw_hello.
  capnp::MallocMessageBuilder builder;
  init_raw_hello(builder);
  EXPECT_TRUE(decode_message(to_bytes(builder)).ok());
  capnp::MallocMessageBuilder task_builder;
  init_raw_task(task_builder);
  Result<Message> r = decode_message(to_bytes(task_builder));
  EXPECT_TRUE(r.ok()) << r.status().to_string();
}

TEST(ProtocolDecodeTest, PayloadDigestOfWrongLengthIsCorruption) {
  capnp::MallocMessageBuilder builder;
  auto task = init_raw_task(builder);
  uint8_t short_digest[16] = {};
  task.getModel().setDigest(kj::arrayPtr(short_digest, sizeof(short_digest)));
  Result<Message> r = decode_message(to_bytes(builder));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

TEST(ProtocolDecodeTest, TextOverLimitIsResourceExhausted) {
  DecodeLimits limits;
  limits.max_text_bytes = 10;
  EXPECT_TRUE(decode_message(encode_message(Bye{std::string(10, 'a')}), limits).ok());
  Result<Message> r = decode_message(encode_message(Bye{std::string(11, 'a')}), limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  EXPECT_EQ(error_code_for(r.status()), ErrorCode::kTooLarge);

  // The default limit (4096) applies to every text field, e.g. a tensor name.
  Task t = sample_task();
  t.model.tensors[0].name = std::string(4097, 'n');
  EXPECT_EQ(decode_message(encode_message(t)).status().code(), Status::Code::kResourceExhausted);
}

TEST(ProtocolDecodeTest, TooManyTensorsIsResourceExhausted) {
  DecodeLimits limits;
  limits.max_tensors = 2;
  Result<Message> r = decode_message(encode_message(sample_task()), limits);  // 3 tensors
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
  limits.max_tensors = 3;
  EXPECT_TRUE(decode_message(encode_message(sample_task()), limits).ok());
}

TEST(ProtocolDecodeTest, RankOverLimitIsResourceExhausted) {
  DecodeLimits limits;
  limits.max_tensor_rank = 3;
  Result<Message> r = decode_message(encode_message(sample_task()), limits);  // rank 4
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kResourceExhausted);
}

TEST(ProtocolDecodeTest, NegativeDimensionIsCorruption) {
  Task t = sample_task();
  t.model.tensors[0].shape = {-1};
  Result<Message> r = decode_message(encode_message(t));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
}

TEST(ProtocolDecodeTest, OutOfRangeDTypeIsCorruption) {
  capnp::MallocMessageBuilder builder;
  auto task = init_raw_task(builder);
  task.getModel().getTensors()[0].setDtype(static_cast<proto::DType>(99));
  Result<Message> r = decode_message(to_bytes(builder));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_NE(r.status().message().find("99"), std::string::npos) << r.status().message();
}

TEST(ProtocolDecodeTest, FirstOutOfRangeValueOfEachEnumIsCorruption) {
  {
    capnp::MallocMessageBuilder builder;
    init_raw_task(builder).getModel().getTensors()[0].setDtype(static_cast<proto::DType>(4));
    EXPECT_EQ(decode_message(to_bytes(builder)).status().code(), Status::Code::kCorruption);
  }
  {
    capnp::MallocMessageBuilder builder;
    init_raw_task(builder).getData().setScheme(static_cast<proto::PartitionScheme>(4));
    EXPECT_EQ(decode_message(to_bytes(builder)).status().code(), Status::Code::kCorruption);
  }
  {
    capnp::MallocMessageBuilder builder;
    init_raw_hello(builder).getDevice().setKind(static_cast<proto::DeviceKind>(2));
    EXPECT_EQ(decode_message(to_bytes(builder)).status().code(), Status::Code::kCorruption);
  }
  {
    capnp::MallocMessageBuilder builder;
    auto envelope = builder.initRoot<proto::Envelope>();
    envelope.setVersion(kProtocolVersion);
    envelope.getBody().initError().setCode(static_cast<proto::ErrorCode>(14));
    EXPECT_EQ(decode_message(to_bytes(builder)).status().code(), Status::Code::kCorruption);
  }
  {
    capnp::MallocMessageBuilder builder;
    init_raw_task(builder).initProof().setProfile(static_cast<proto::DeterminismProfile>(2));
    EXPECT_EQ(decode_message(to_bytes(builder)).status().code(), Status::Code::kCorruption);
  }
  {
    RoundResult r = sample_round_result();
    r.receipt = sample_receipt();
    capnp::MallocMessageBuilder builder;
    auto envelope = builder.initRoot<proto::Envelope>();
    envelope.setVersion(kProtocolVersion);
    auto result = envelope.getBody().initRoundResult();
    auto receipt = result.initReceipt();
    auto key = bytes32(1);
    receipt.setWorkerKey(kj::arrayPtr(key.data(), key.size()));
    receipt.setVerdict(static_cast<proto::Verdict>(6));
    EXPECT_EQ(decode_message(to_bytes(builder)).status().code(), Status::Code::kCorruption);
  }
}

// ------------------------------------------------------------ error codes

TEST(ProtocolTest, ErrorCodeForMapsStatusCodes) {
  EXPECT_EQ(error_code_for(Status::corruption("x")), ErrorCode::kMalformedMessage);
  EXPECT_EQ(error_code_for(Status::resource_exhausted("x")), ErrorCode::kTooLarge);
  EXPECT_EQ(error_code_for(Status::deadline_exceeded("x")), ErrorCode::kDeadlineExceeded);
  EXPECT_EQ(error_code_for(Status::unavailable("x")), ErrorCode::kUnavailable);
  EXPECT_EQ(error_code_for(Status::invalid_argument("x")), ErrorCode::kInvalidUpdate);
  EXPECT_EQ(error_code_for(Status::failed_precondition("unsupported protocol version 2")),
            ErrorCode::kUnsupportedVersion);
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
}  // namespace cohort
