// Fuzzes decode_message: every envelope a peer sends (all eleven message kinds
// go through it, under the default DecodeLimits the coordinator and the
// worker use).
//
// Invariant: a message that decodes re-encodes to an envelope that decodes
// again, and re-encoding that is stable (byte-equal). Bytes are compared
// rather than messages so that a NaN field does not count as a difference.
#include <cstddef>
#include <cstdint>
#include <variant>
#include <vector>

#include "cohort/protocol.h"
#include "fuzz_check.h"

namespace {

using namespace cohort;

// The signed bytes and receipt checks run on decoded fields; exercise them.
struct SignedBytes {
  PublicKey peer{};
  void operator()(const Task& m) const { (void)task_signing_bytes(m, peer); }
  void operator()(const Update& m) const { (void)update_signing_bytes(m, peer); }
  void operator()(const ChallengeMessage& m) const { (void)challenge_signing_bytes(m, peer); }
  void operator()(const Reveal& m) const { (void)reveal_signing_bytes(m, peer); }
  void operator()(const RoundResult& m) const {
    if (m.receipt) (void)verify_receipt(*m.receipt);
  }
  void operator()(const auto&) const {}
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Result<Message> decoded = decode_message({data, size});
  if (!decoded.ok()) {
    (void)error_code_for(decoded.status());
    return 0;
  }
  (void)message_kind(*decoded);
  std::visit(SignedBytes{}, *decoded);

  const std::vector<uint8_t> encoded = encode_message(*decoded);
  Result<Message> again = decode_message(encoded);
  fuzz::check(again.ok(), "a decoded message re-encodes to an envelope that decodes");
  fuzz::check(again->index() == decoded->index(), "re-decoding keeps the message kind");
  fuzz::check(encode_message(*again) == encoded, "re-encoding a decoded message is stable");
  return 0;
}
