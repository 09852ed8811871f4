// Settlement values shared by the ledger, the wire and the worker: amounts,
// verdicts and the coordinator-signed receipt a worker gets per settled
// task (docs/LEDGER.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/amount.h"
#include "cohort/crypto.h"
#include "cohort/status.h"

namespace cohort {

// Stored in the ledger and on the wire: never renumber.
enum class Verdict : uint8_t {
  kPending = 0,
  kPassed = 1,     // audited, re-execution matched: paid
  kUnaudited = 2,  // not selected for audit: paid
  kFailed = 3,     // the audit failed: slashed, banned, not paid
  kRejected = 4,   // never aggregated (invalid update, bad signature): not paid, not slashed
  kVoided = 5,     // the audit could not finish through no fault shown: not paid, not slashed
};
std::string_view verdict_name(Verdict verdict);
// "passed" -> Verdict::kPassed. InvalidArgument for an unknown name.
Result<Verdict> parse_verdict(std::string_view name);

struct Receipt {
  uint32_t round = 0;
  uint64_t task_id = 0;
  PublicKey worker{};
  Digest update_hash{};
  Verdict verdict = Verdict::kPending;
  std::string reason;
  Amount reward = 0;
  Amount slashed = 0;
  uint64_t chain_seq = 0;  // the ledger chain head the receipt was issued at
  Digest chain_hash{};
  PublicKey coordinator{};
  Signature signature{};

  // CanonicalBytes("cohort-receipt-v1") over every field but the signature.
  std::vector<uint8_t> signed_bytes() const;
  bool operator==(const Receipt&) const = default;
};

// True when `receipt.signature` is the coordinator's signature over its bytes.
bool verify_receipt(const Receipt& receipt);

// The one JSON form of a receipt: an object on one line with every field,
// keys, digests and the signature in hex, the verdict by name (verdict_name)
// and amounts in micro-tokens; the task id under "task", as in the ledger's
// chain entries. A worker's receipts file holds one per line
// (docs/LEDGER.md, "A worker's receipts file").
std::string receipt_json(const Receipt& receipt);

// Parses receipt_json's form, and the older one that named the task id
// "task_id" (receipts files written before the ledger's key was adopted).
// Does not check the signature (verify_receipt). Errors: Corruption, saying
// which field is missing or wrong.
Result<Receipt> parse_receipt_json(std::string_view text);

}  // namespace cohort
