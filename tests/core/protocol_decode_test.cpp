// The protocol's decoder: wrong versions, garbage, and fields out of their
// range or over the limits are refused with the status that says which
// (the sample messages are in protocol_testing.h).
#include "cohort/protocol.h"

#include <capnp/message.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "cohort/proto/cohort.capnp.h"
#include "protocol_testing.h"

namespace cohort::protocol_testing {
namespace {

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

// ------------------------------------------------------------ limits on lists

TEST(ProtocolDecodeTest, WelcomeWithMoreReceiptsThanTheListLimitIsRefused) {
  Welcome welcome{3, "job", 5, {}, {}};
  welcome.receipts.assign(3, sample_receipt());
  DecodeLimits limits;
  limits.max_list_entries = 2;
  Result<Message> decoded = decode_message(encode_message(welcome), limits);
  EXPECT_EQ(decoded.status().code(), Status::Code::kResourceExhausted) << decoded.status().to_string();
}

TEST(ProtocolDecodeTest, OverlongMerkleProofIsResourceExhausted) {
  Update u = sample_update();
  u.commitment->first.proof.assign(2000, bytes32(1));
  Result<Message> decoded = decode_message(encode_message(u));
  EXPECT_EQ(decoded.status().code(), Status::Code::kResourceExhausted);
  EXPECT_NE(decoded.status().message().find("Merkle proof"), std::string::npos);
}

// ------------------------------------------------------------ version

TEST(ProtocolDecodeTest, WrongVersionIsFailedPreconditionNamingIt) {
  for (uint32_t version : {0u, kProtocolVersion - 1, kProtocolVersion + 1, 4000000000u}) {
    std::vector<uint8_t> bytes = encode_message_with_version(Bye{"x"}, version);
    Result<Message> r = decode_message(bytes);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), Status::Code::kUnsupported);
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

}  // namespace
}  // namespace cohort::protocol_testing
