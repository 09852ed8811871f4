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

bool verify_receipt(const Receipt& receipt) {
  return verify_signature(receipt.coordinator, receipt.signed_bytes(), receipt.signature);
}

}  // namespace cohort
