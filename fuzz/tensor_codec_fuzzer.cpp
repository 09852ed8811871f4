// Fuzzes decode_payload (the tensor codec's receiving side) with the header
// a peer sends in a Task, an Update or a Reveal, and, for a Reveal,
// unpack_reveal on what decoded.
//
// Input layout (seed_corpus.cpp writes it):
//   u8 flags          bit 0: verify the digest; bit 1: the reveal has momentum
//   u16 LE length     of the envelope that follows
//   envelope          an encoded Task, Update or Reveal (protocol.h)
//   { u16 LE length, bytes }*   the payload chunks, one ZeroMQ frame each
// A length longer than what remains takes what remains.
//
// Invariants: a decoded payload is a 1-D contiguous float32 tensor of the
// layout's size; encoding it again in the wire dtype and decoding that (with
// the digest checked) gives the same values; unpack_reveal returns one
// opening per revealed segment with states of the announced size.
#include <ATen/ATen.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "cohort/protocol.h"
#include "cohort/reveal_payload.h"
#include "cohort/tensor_codec.h"
#include "fuzz_check.h"

namespace {

using namespace cohort;

constexpr uint8_t kVerifyDigest = 1;
constexpr uint8_t kWithMomentum = 2;

class ByteReader {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes) : rest_(bytes) {}

  bool empty() const { return rest_.empty(); }
  uint8_t u8() { return take(1).empty() ? 0 : last_[0]; }
  // A u16 LE length, then up to that many bytes.
  std::span<const uint8_t> prefixed() {
    std::span<const uint8_t> raw = take(2);
    const size_t length = raw.size() == 2 ? size_t{raw[0]} | size_t{raw[1]} << 8 : 0;
    return take(length);
  }

 private:
  std::span<const uint8_t> take(size_t n) {
    last_ = rest_.first(std::min(n, rest_.size()));
    rest_ = rest_.subspan(last_.size());
    return last_;
  }
  std::span<const uint8_t> rest_;
  std::span<const uint8_t> last_;
};

const PayloadHeader* payload_header_of(const Message& message) {
  if (const auto* task = std::get_if<Task>(&message)) return &task->model;
  if (const auto* update = std::get_if<Update>(&message)) return &update->delta;
  if (const auto* reveal = std::get_if<Reveal>(&message)) return &reveal->states;
  return nullptr;
}

// Equal values, NaN equal to NaN.
bool same_values(const at::Tensor& a, const at::Tensor& b) {
  if (a.sizes() != b.sizes()) return false;
  return at::logical_or(at::eq(a, b), at::logical_and(at::isnan(a), at::isnan(b))).all().item<bool>();
}

void check_reencodes(const PayloadHeader& header, const DecodedPayload& decoded) {
  const DType wire_dtype = header.tensors.empty() ? DType::kFloat32 : header.tensors.front().dtype;
  Result<EncodedPayload> encoded = encode_payload(decoded.layout, decoded.flat, 64, wire_dtype);
  fuzz::check(encoded.ok(), "a decoded payload encodes again");
  Result<DecodedPayload> again =
      decode_payload(encoded->header(), encoded->chunks(), PayloadLimits(), &decoded.layout);
  fuzz::check(again.ok(), "a re-encoded payload decodes with its digest checked");
  fuzz::check(same_values(again->flat, decoded.flat), "re-encoding keeps the values");
}

void check_unpack_reveal(const Reveal& reveal, const DecodedPayload& decoded, bool with_momentum) {
  const int64_t parameter_count = decoded.layout.tensors.empty() ? 0 : decoded.layout.tensors[0].numel();
  Result<std::vector<SegmentOpening>> openings =
      unpack_reveal(reveal, decoded, parameter_count, with_momentum);
  if (!openings.ok()) return;
  fuzz::check(openings->size() == reveal.segments.size(), "one opening per revealed segment");
  for (const SegmentOpening& opening : *openings) {
    fuzz::check(opening.before_state.parameters.numel() == parameter_count &&
                    opening.after_state.parameters.numel() == parameter_count,
                "revealed states have the announced size");
    fuzz::check(opening.before_state.momentum.defined() == with_momentum,
                "momentum is revealed exactly when asked for");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ByteReader input({data, size});
  const uint8_t flags = input.u8();
  Result<Message> message = decode_message(input.prefixed());
  if (!message.ok()) return 0;
  const PayloadHeader* header = payload_header_of(*message);
  if (header == nullptr) return 0;

  Frames chunks;
  while (!input.empty()) chunks.push_back(Frame::copy_of(input.prefixed()));
  PayloadLimits limits;
  limits.verify_digest = (flags & kVerifyDigest) != 0;
  Result<DecodedPayload> decoded = decode_payload(*header, std::move(chunks), limits);
  if (!decoded.ok()) return 0;

  const at::Tensor& flat = decoded->flat;
  fuzz::check(flat.dim() == 1 && flat.scalar_type() == at::kFloat && flat.is_contiguous() &&
                  flat.numel() == decoded->layout.numel(),
              "a decoded payload is a contiguous 1-D float32 tensor of the layout's size");
  check_reencodes(*header, *decoded);
  if (const auto* reveal = std::get_if<Reveal>(&*message)) {
    check_unpack_reveal(*reveal, *decoded, (flags & kWithMomentum) != 0);
  }
  return 0;
}
