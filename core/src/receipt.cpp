#include "cohort/receipt.h"

namespace cohort {

std::string_view verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPending: return "pending";
    case Verdict::kPassed: return "passed";
    case Verdict::kUnaudited: return "unaudited";
    case Verdict::kFailed: return "failed";
    case Verdict::kRejected: return "rejected";
    case Verdict::kVoided: return "voided";
  }
  return "unknown";
}

Result<Verdict> parse_verdict(std::string_view name) {
  for (Verdict v : {Verdict::kPending, Verdict::kPassed, Verdict::kUnaudited, Verdict::kFailed,
                    Verdict::kRejected, Verdict::kVoided}) {
    if (verdict_name(v) == name) return v;
  }
  return Status::invalid_argument("unknown verdict '" + std::string(name) + "'");
}

std::vector<uint8_t> Receipt::signed_bytes() const {
  return CanonicalBytes("cohort-receipt-v1")
      .u32(round)
      .u64(task_id)
      .bytes(worker)
      .bytes(update_hash)
      .u32(static_cast<uint32_t>(verdict))
      .text(reason)
      .i64(reward)
      .i64(slashed)
      .u64(chain_seq)
      .bytes(chain_hash)
      .bytes(coordinator)
      .data();
}

bool verify_receipt(const Receipt& receipt) {
  return verify_signature(receipt.coordinator, receipt.signed_bytes(), receipt.signature);
}

}  // namespace cohort
