#include "cohort/tensor_codec.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <vector>

namespace cohort {
namespace {

class TensorCodecTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ASSERT_TRUE(init_crypto().ok()); }
};

// Three tensors, 3 + 6 + 1 = 10 values, already in canonical order.
Layout small_layout() {
  return Layout{{
      TensorSpec{"fc.bias", DType::kFloat32, {3}},
      TensorSpec{"fc.weight", DType::kFloat32, {2, 3}},
      TensorSpec{"scale", DType::kFloat32, {}},
  }};
}

// 0.1 * i - 0.45 for i = 0..9: -0.45, -0.35, ..., 0.45 (none exact in binary).
at::Tensor small_flat() { return at::arange(10, at::kFloat).mul(0.1).sub(0.45); }

std::vector<float> values_of(const at::Tensor& t) {
  at::Tensor c = t.to(at::kFloat).contiguous();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

EncodedPayload encode_or_die(const Layout& layout, const at::Tensor& flat, size_t chunk_bytes,
                             DType wire = DType::kFloat32) {
  Result<EncodedPayload> r = encode_payload(layout, flat, chunk_bytes, wire);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) std::abort();
  return std::move(r).value();
}

// Owned copies of the chunk bytes, so tests can edit them.
std::vector<std::vector<uint8_t>> chunk_bytes_of(const EncodedPayload& payload) {
  std::vector<std::vector<uint8_t>> out;
  for (const Frame& m : payload.chunks()) out.emplace_back(m.data(), m.data() + m.size());
  return out;
}

Frames to_messages(const std::vector<std::vector<uint8_t>>& chunks) {
  Frames out;
  for (const auto& c : chunks) out.push_back(Frame::copy_of(c));
  return out;
}

std::vector<size_t> sizes_of(const Frames& chunks) {
  std::vector<size_t> out;
  for (const auto& c : chunks) out.push_back(c.size());
  return out;
}

Status decode_status(const PayloadHeader& header, Frames chunks,
                     const PayloadLimits& limits = PayloadLimits(),
                     const Layout* expected = nullptr) {
  return decode_payload(header, std::move(chunks), limits, expected).status();
}

// ------------------------------------------------------------ layout

TEST_F(TensorCodecTest, LayoutNumelSumsTensors) {
  EXPECT_EQ(small_layout().numel(), 10);
  EXPECT_EQ(Layout{}.numel(), 0);
}

TEST_F(TensorCodecTest, ValidateLayoutAcceptsSortedUniqueNames) {
  EXPECT_TRUE(validate_layout(small_layout()).ok());
  EXPECT_TRUE(validate_layout(Layout{}).ok());
}

TEST_F(TensorCodecTest, ValidateLayoutRejectsUnsortedNames) {
  Layout l = small_layout();
  std::swap(l.tensors[0], l.tensors[1]);  // fc.weight before fc.bias
  Status s = validate_layout(l);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("fc.bias"), std::string::npos) << s.message();
}

TEST_F(TensorCodecTest, ValidateLayoutRejectsDuplicateNames) {
  Layout l = small_layout();
  l.tensors[1].name = "fc.bias";
  EXPECT_EQ(validate_layout(l).code(), Status::Code::kInvalidArgument);
}

TEST_F(TensorCodecTest, ValidateLayoutRejectsEmptyNameAndNegativeDimension) {
  Layout unnamed = small_layout();
  unnamed.tensors[0].name = "";
  EXPECT_EQ(validate_layout(unnamed).code(), Status::Code::kInvalidArgument);
  Layout negative = small_layout();
  negative.tensors[1].shape = {2, -3};
  EXPECT_EQ(validate_layout(negative).code(), Status::Code::kInvalidArgument);
}

TEST_F(TensorCodecTest, ValidateLayoutRejectsElementCountOverflow) {
  const int64_t big = int64_t{1} << 32;
  Layout one_tensor{{TensorSpec{"w", DType::kFloat32, {big, big}}}};  // 2^64 values
  EXPECT_EQ(validate_layout(one_tensor).code(), Status::Code::kInvalidArgument);
  const int64_t half = int64_t{1} << 62;
  Layout summed{{TensorSpec{"a", DType::kFloat32, {half}}, TensorSpec{"b", DType::kFloat32, {half}}}};
  EXPECT_EQ(validate_layout(summed).code(), Status::Code::kInvalidArgument);  // 2^63 in total
}

// ------------------------------------------------------------ digest

TEST_F(TensorCodecTest, DigestIsEqualForEqualInputs) {
  EXPECT_EQ(digest_of(small_layout(), small_flat()), digest_of(small_layout(), small_flat()));
  EXPECT_NE(digest_of(small_layout(), small_flat()), Digest{});
}

TEST_F(TensorCodecTest, DigestChangesWithAnyValue) {
  const Digest base = digest_of(small_layout(), small_flat());
  for (int64_t i = 0; i < 10; ++i) {
    at::Tensor changed = small_flat();
    changed[i] += 1e-6;
    EXPECT_NE(digest_of(small_layout(), changed), base) << "value " << i;
  }
}

TEST_F(TensorCodecTest, DigestChangesWithNameOrShape) {
  const Digest base = digest_of(small_layout(), small_flat());
  Layout renamed = small_layout();
  renamed.tensors[2].name = "scalf";
  EXPECT_NE(digest_of(renamed, small_flat()), base);
  Layout reshaped = small_layout();
  reshaped.tensors[1].shape = {3, 2};  // same element count
  EXPECT_NE(digest_of(reshaped, small_flat()), base);
  Layout flattened = small_layout();
  flattened.tensors[1].shape = {6};
  EXPECT_NE(digest_of(flattened, small_flat()), base);
}

TEST_F(TensorCodecTest, DigestIsOverFloat32Values) {
  // The flat tensor's own dtype and the layout's dtype field do not matter.
  const Digest base = digest_of(small_layout(), small_flat());
  EXPECT_EQ(digest_of(small_layout(), small_flat().to(at::kDouble)), base);
  Layout tagged = small_layout();
  for (TensorSpec& s : tagged.tensors) s.dtype = DType::kFloat16;
  EXPECT_EQ(digest_of(tagged, small_flat()), base);
}

// ------------------------------------------------------------ encode

TEST_F(TensorCodecTest, EncodeFloat32HeaderDescribesPayload) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  EXPECT_EQ(p.header().tensors, small_layout().tensors);
  EXPECT_EQ(p.header().total_bytes, 40u);
  EXPECT_EQ(p.header().chunk_count, 1u);
  EXPECT_EQ(p.header().digest, digest_of(small_layout(), small_flat()));
}

TEST_F(TensorCodecTest, EncodeRejectsBadInputs) {
  EXPECT_EQ(encode_payload(small_layout(), small_flat(), 0).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(encode_payload(small_layout(), at::zeros({9}), 64).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(encode_payload(small_layout(), at::zeros({2, 5}), 64).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(encode_payload(small_layout(), at::zeros({10}, at::kDouble), 64).status().code(),
            Status::Code::kInvalidArgument);
}

TEST_F(TensorCodecTest, EncodeRejectsLayoutWhoseNumelOverflows) {
  // 2^32 * 2^32 wraps to 0 in 64 bits; an empty tensor must not match it.
  const int64_t big = int64_t{1} << 32;
  Layout huge{{TensorSpec{"w", DType::kFloat32, {big, big}}}};
  Result<EncodedPayload> r = encode_payload(huge, at::zeros({0}), 64);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
}

TEST_F(TensorCodecTest, ChunkSizesSplitTheBytes) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 12);  // 40 bytes
  Frames chunks = p.chunks();
  EXPECT_EQ(p.header().chunk_count, 4u);
  EXPECT_EQ(sizes_of(chunks), (std::vector<size_t>{12, 12, 12, 4}));
}

TEST_F(TensorCodecTest, ChunkSizeIsRoundedDownToWholeElements) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 10);  // -> 8
  Frames chunks = p.chunks();
  EXPECT_EQ(p.header().chunk_count, 5u);
  EXPECT_EQ(sizes_of(chunks), (std::vector<size_t>{8, 8, 8, 8, 8}));
  EncodedPayload tiny = encode_or_die(small_layout(), small_flat(), 1);  // -> one element
  EXPECT_EQ(tiny.header().chunk_count, 10u);
  EXPECT_EQ(sizes_of(tiny.chunks()), std::vector<size_t>(10, 4));
  EncodedPayload half = encode_or_die(small_layout(), small_flat(), 7, DType::kFloat16);  // -> 6
  EXPECT_EQ(sizes_of(half.chunks()), (std::vector<size_t>{6, 6, 6, 2}));
}

TEST_F(TensorCodecTest, ChunksCanBeTakenTwiceWithIdenticalBytes) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 12);
  std::vector<std::vector<uint8_t>> first = chunk_bytes_of(p);
  std::vector<std::vector<uint8_t>> second = chunk_bytes_of(p);
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(first, second);
  // Both sets decode.
  EXPECT_TRUE(decode_payload(p.header(), p.chunks(), PayloadLimits()).ok());
  EXPECT_TRUE(decode_payload(p.header(), p.chunks(), PayloadLimits()).ok());
}

TEST_F(TensorCodecTest, ChunkBytesAreLittleEndianFloat32InOrder) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  std::vector<std::vector<uint8_t>> bytes = chunk_bytes_of(p);
  ASSERT_EQ(bytes.size(), 1u);
  ASSERT_EQ(bytes[0].size(), 40u);
  float third = 0;
  std::memcpy(&third, bytes[0].data() + 8, 4);
  EXPECT_EQ(third, small_flat()[2].item<float>());
}

// ------------------------------------------------------------ round trips

TEST_F(TensorCodecTest, Float32RoundTripOneChunkIsExact) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  Result<DecodedPayload> d = decode_payload(p.header(), p.chunks(), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->layout, small_layout());
  EXPECT_EQ(d->flat.scalar_type(), at::kFloat);
  EXPECT_EQ(d->flat.dim(), 1);
  EXPECT_EQ(values_of(d->flat), values_of(small_flat()));
}

TEST_F(TensorCodecTest, Float32RoundTripManyChunksIsExact) {
  for (size_t chunk_bytes : {size_t{4}, size_t{8}, size_t{10}, size_t{12}, size_t{39}}) {
    EncodedPayload p = encode_or_die(small_layout(), small_flat(), chunk_bytes);
    // Owned copies, as a socket would deliver them.
    Result<DecodedPayload> d =
        decode_payload(p.header(), to_messages(chunk_bytes_of(p)), PayloadLimits());
    ASSERT_TRUE(d.ok()) << chunk_bytes << ": " << d.status().to_string();
    EXPECT_EQ(values_of(d->flat), values_of(small_flat())) << chunk_bytes;
  }
}

TEST_F(TensorCodecTest, Float64WireRoundTripIsExact) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 16, DType::kFloat64);
  EXPECT_EQ(p.header().total_bytes, 80u);
  EXPECT_EQ(p.header().chunk_count, 5u);
  for (const TensorSpec& s : p.header().tensors) EXPECT_EQ(s.dtype, DType::kFloat64);
  Result<DecodedPayload> d = decode_payload(p.header(), p.chunks(), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->flat.scalar_type(), at::kFloat);
  EXPECT_EQ(d->layout, small_layout());  // decoded layout carries float32
  EXPECT_EQ(values_of(d->flat), values_of(small_flat()));
}

TEST_F(TensorCodecTest, Float16WireRoundTripIsWithinHalfPrecision) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 6, DType::kFloat16);
  EXPECT_EQ(p.header().total_bytes, 20u);
  EXPECT_EQ(p.header().chunk_count, 4u);
  EXPECT_NE(p.header().digest, digest_of(small_layout(), small_flat()));
  Result<DecodedPayload> d = decode_payload(p.header(), p.chunks(), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();  // the digest verified
  std::vector<float> want = values_of(small_flat());
  std::vector<float> got = values_of(d->flat);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], std::abs(want[i]) * 0x1p-11) << i;  // half an fp16 ulp
  }
  // 0.1 * 5 - 0.45 = 0.05 as float32; hand-rounded to fp16: 1638.4/1024 * 2^-5
  // -> 1638/1024 * 2^-5 = 0.0499877929...
  EXPECT_FLOAT_EQ(got[5], 1638.0f / 1024.0f / 32.0f);
}

TEST_F(TensorCodecTest, BFloat16WireRoundTripIsWithinBFloat16Precision) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20, DType::kBFloat16);
  EXPECT_EQ(p.header().total_bytes, 20u);
  Result<DecodedPayload> d = decode_payload(p.header(), p.chunks(), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  std::vector<float> want = values_of(small_flat());
  std::vector<float> got = values_of(d->flat);
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_NEAR(got[i], want[i], std::abs(want[i]) * 0x1p-8) << i;  // half a bf16 ulp
  }
  EXPECT_NE(got, want);  // really narrowed
}

TEST_F(TensorCodecTest, EmptyLayoutRoundTrips) {
  EncodedPayload p = encode_or_die(Layout{}, at::zeros({0}), 64);
  EXPECT_EQ(p.header().total_bytes, 0u);
  EXPECT_EQ(p.header().chunk_count, 0u);
  Result<DecodedPayload> d = decode_payload(p.header(), p.chunks(), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->flat.numel(), 0);
}

TEST_F(TensorCodecTest, SingleExclusiveChunkDecodeIsZeroCopyAndOutlivesTheFrame) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  // As a received message arrives: a frame nobody else holds.
  std::optional<Frames> chunks = to_messages(chunk_bytes_of(p));
  ASSERT_TRUE((*chunks)[0].is_exclusive());
  const void* wire_bytes = (*chunks)[0].data();
  Result<DecodedPayload> d = decode_payload(p.header(), std::move(*chunks), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(d->flat.data_ptr(), wire_bytes);  // adopted, not copied
  chunks.reset();  // the frames are gone; the decoded tensor keeps the bytes alive
  EXPECT_EQ(values_of(d->flat), values_of(small_flat()));
}

// The encoder's chunks share the sender's tensor (an in-process channel
// delivers them as they are): the decoded tensor must not alias it, or
// writing one would change the other.
TEST_F(TensorCodecTest, SharedChunkIsCopiedSoTheSendersTensorStaysItsOwn) {
  at::Tensor flat = small_flat().clone();
  EncodedPayload p = encode_or_die(small_layout(), flat, 1 << 20);
  Frames chunks = p.chunks();
  ASSERT_FALSE(chunks[0].is_exclusive());
  EXPECT_EQ(chunks[0].data(), flat.const_data_ptr());  // sending does not copy
  Result<DecodedPayload> d = decode_payload(p.header(), std::move(chunks), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_NE(d->flat.data_ptr(), flat.data_ptr());
  d->flat.add_(1.0f);
  EXPECT_EQ(values_of(flat), values_of(small_flat()));
}

TEST_F(TensorCodecTest, SingleReceivedChunkOutlivesItsMessage) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  std::optional<DecodedPayload> decoded;
  {
    std::vector<std::vector<uint8_t>> owned = chunk_bytes_of(p);
    Result<DecodedPayload> d = decode_payload(p.header(), to_messages(owned), PayloadLimits());
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    decoded = std::move(d).value();
    std::fill(owned[0].begin(), owned[0].end(), uint8_t{0xff});  // the source vector is gone
  }
  EXPECT_EQ(values_of(decoded->flat), values_of(small_flat()));
}

TEST_F(TensorCodecTest, SmallSingleChunkOutlivesItsMessage) {
  // Two floats: small enough for ZeroMQ to keep the bytes inside the message.
  Layout layout{{TensorSpec{"w", DType::kFloat32, {2}}}};
  at::Tensor flat = at::tensor({1.5f, -2.25f});
  EncodedPayload p = encode_or_die(layout, flat, 64);
  std::optional<DecodedPayload> decoded;
  {
    Result<DecodedPayload> d =
        decode_payload(p.header(), to_messages(chunk_bytes_of(p)), PayloadLimits());
    ASSERT_TRUE(d.ok()) << d.status().to_string();
    decoded = std::move(d).value();
  }
  EXPECT_EQ(values_of(decoded->flat), (std::vector<float>{1.5f, -2.25f}));
}

// ------------------------------------------------------------ decode errors

TEST_F(TensorCodecTest, DecodeRejectsChunkCountMismatch) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 8);  // 5 chunks
  Frames chunks = p.chunks();
  chunks.pop_back();
  EXPECT_EQ(decode_status(p.header(), std::move(chunks)).code(), Status::Code::kCorruption);
  Frames extra = p.chunks();
  extra.push_back(Frame::copy_of({}));
  EXPECT_EQ(decode_status(p.header(), std::move(extra)).code(), Status::Code::kCorruption);
}

// An empty frame is legal and carries no bytes at all (its data() may be
// null): joining must skip it, not copy from it (UBSan, fuzz seed
// tensor_codec/empty-chunk-among-chunks).
TEST_F(TensorCodecTest, AnEmptyChunkAmongTheChunksJoinsToTheSameTensor) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 8);
  Frames chunks = p.chunks();
  chunks.insert(chunks.begin() + 1, Frame::copy_of({}));
  PayloadHeader header = p.header();
  header.chunk_count += 1;
  Result<DecodedPayload> d = decode_payload(header, std::move(chunks), PayloadLimits());
  ASSERT_TRUE(d.ok()) << d.status().to_string();
  EXPECT_EQ(values_of(d->flat), values_of(small_flat()));
}

TEST_F(TensorCodecTest, DecodeRejectsTotalBytesThatDisagreeWithTensors) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  PayloadHeader header = p.header();
  header.total_bytes = 44;  // tensors need 40
  std::vector<std::vector<uint8_t>> bytes = chunk_bytes_of(p);
  bytes[0].resize(44);
  Status s = decode_status(header, to_messages(bytes));
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("40"), std::string::npos) << s.message();
}

TEST_F(TensorCodecTest, DecodeRejectsChunkBytesThatDisagreeWithHeader) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 8);
  std::vector<std::vector<uint8_t>> shorter = chunk_bytes_of(p);
  shorter.back().resize(4);
  EXPECT_EQ(decode_status(p.header(), to_messages(shorter)).code(), Status::Code::kCorruption);
  std::vector<std::vector<uint8_t>> longer = chunk_bytes_of(p);
  longer.front().push_back(0);
  EXPECT_EQ(decode_status(p.header(), to_messages(longer)).code(), Status::Code::kCorruption);
}

TEST_F(TensorCodecTest, DecodeEnforcesByteLimit) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 8);
  PayloadLimits limits;
  limits.max_bytes = 39;
  EXPECT_EQ(decode_status(p.header(), p.chunks(), limits).code(),
            Status::Code::kResourceExhausted);
  limits.max_bytes = 40;
  EXPECT_TRUE(decode_status(p.header(), p.chunks(), limits).ok());
}

TEST_F(TensorCodecTest, DecodeEnforcesChunkLimit) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 8);  // 5 chunks
  PayloadLimits limits;
  limits.max_chunks = 4;
  EXPECT_EQ(decode_status(p.header(), p.chunks(), limits).code(),
            Status::Code::kResourceExhausted);
  limits.max_chunks = 5;
  EXPECT_TRUE(decode_status(p.header(), p.chunks(), limits).ok());
}

TEST_F(TensorCodecTest, DecodeRejectsTamperedByte) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 12);
  std::vector<std::vector<uint8_t>> bytes = chunk_bytes_of(p);
  bytes[2][1] ^= 0x01;
  Status s = decode_status(p.header(), to_messages(bytes));
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("digest"), std::string::npos) << s.message();

  // With verification off, the changed bytes come through.
  PayloadLimits trusting;
  trusting.verify_digest = false;
  Result<DecodedPayload> d = decode_payload(p.header(), to_messages(bytes), trusting);
  ASSERT_TRUE(d.ok());
  EXPECT_NE(values_of(d->flat), values_of(small_flat()));
}

TEST_F(TensorCodecTest, DecodeRejectsTamperedHeaderShape) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  PayloadHeader header = p.header();
  header.tensors[1].shape = {3, 2};  // same byte count, different layout
  EXPECT_EQ(decode_status(header, p.chunks()).code(), Status::Code::kCorruption);
}

TEST_F(TensorCodecTest, DecodeChecksExpectedLayout) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  const Layout same = small_layout();
  EXPECT_TRUE(decode_status(p.header(), p.chunks(), PayloadLimits(), &same).ok());
  Layout other = small_layout();
  other.tensors[1].shape = {3, 2};
  Status s = decode_status(p.header(), p.chunks(), PayloadLimits(), &other);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
}

TEST_F(TensorCodecTest, DecodeRejectsUnsortedLayout) {
  Layout unsorted = small_layout();
  std::swap(unsorted.tensors[0], unsorted.tensors[2]);  // still 10 values, 40 bytes
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  PayloadHeader header = p.header();
  header.tensors = unsorted.tensors;
  EXPECT_EQ(decode_status(header, p.chunks()).code(), Status::Code::kInvalidArgument);
}

TEST_F(TensorCodecTest, DecodeRejectsMixedDTypes) {
  EncodedPayload p = encode_or_die(small_layout(), small_flat(), 1 << 20);
  PayloadHeader header = p.header();
  header.tensors[2].dtype = DType::kFloat64;  // 36 + 8 = 44 bytes
  header.total_bytes = 44;
  std::vector<std::vector<uint8_t>> bytes = chunk_bytes_of(p);
  bytes[0].resize(44);
  Status s = decode_status(header, to_messages(bytes));
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("mixes"), std::string::npos) << s.message();
}

TEST_F(TensorCodecTest, DecodeRejectsHeaderWhoseNumelOverflows) {
  const int64_t big = int64_t{1} << 32;
  const int64_t max = std::numeric_limits<int64_t>::max();
  for (std::vector<int64_t> shape : {std::vector<int64_t>{big, big}, std::vector<int64_t>{max, 2},
                                     std::vector<int64_t>{max, max, max}}) {
    PayloadHeader header;
    header.tensors = {TensorSpec{"w", DType::kFloat32, shape}};
    header.total_bytes = 0;
    header.chunk_count = 0;
    Status s = decode_status(header, {});
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(s.code(), Status::Code::kResourceExhausted) << s.to_string();
  }
}

TEST_F(TensorCodecTest, DecodeRejectsTensorsWhoseSumExceedsLimit) {
  // total_bytes (800) and each tensor (800 bytes) fit a 1000-byte limit, but
  // the two tensors together need 1600.
  PayloadHeader header;
  header.tensors = {TensorSpec{"a", DType::kFloat32, {200}}, TensorSpec{"b", DType::kFloat32, {200}}};
  header.total_bytes = 800;
  header.chunk_count = 1;
  PayloadLimits limits;
  limits.max_bytes = 1000;
  Frames chunks = {Frame::copy_of(std::vector<uint8_t>(800))};
  EXPECT_EQ(decode_status(header, std::move(chunks), limits).code(),
            Status::Code::kResourceExhausted);
}

}  // namespace
}  // namespace cohort

namespace cohort {
namespace {

TEST(AllFiniteTest, SpotsNaNAndInfinityAnywhere) {
  at::Tensor values = at::zeros({4, 5});
  EXPECT_TRUE(all_finite(values));
  EXPECT_TRUE(all_finite(at::empty({0})));
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity()}) {
    at::Tensor copy = values.clone();
    copy[3][4] = bad;
    EXPECT_FALSE(all_finite(copy)) << bad;
  }
}

}  // namespace
}  // namespace cohort
