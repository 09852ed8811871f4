// The ledger's hash chain: typed entries, their canonical JSON bodies, entry
// hashes and the signed bytes of heads (format in docs/LEDGER.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "cohort/crypto.h"
#include "cohort/ledger.h"

namespace cohort::ledger {

// The body of each entry kind. Every mutating Ledger call appends one entry.
struct GenesisEntry {  // "genesis": always entry 1
  PublicKey coordinator{};
};
struct AccountEntry {  // "account": ensure_account
  PublicKey key{};
};
struct DepositEntry {  // "deposit"
  PublicKey worker{};
  Amount amount = 0;
  std::string memo;
};
struct SubmissionEntry {  // "submission"
  Submission submission;
};
struct IncidentEntry {  // "incident"
  PublicKey worker{};
  uint32_t round = 0;
  uint64_t task_id = 0;
  std::string kind;
  std::string detail;
};
struct VerdictEntry {  // "verdict"
  uint64_t task_id = 0;
  Verdict verdict = Verdict::kPending;
  std::string reason;
};
struct SlashEntry {  // "slash"
  PublicKey worker{};
  uint64_t task_id = 0;
  Amount amount = 0;
  bool ban = false;
  std::string reason;
};
struct Payment {
  uint64_t task_id = 0;
  PublicKey worker{};
  Amount amount = 0;
  bool operator==(const Payment&) const = default;
};
struct RoundEntry {  // "round": close_round
  uint32_t round = 0;
  Amount budget = 0;
  std::vector<Payment> rewards;  // by task id
  Amount unassigned = 0;
};

using EntryBody = std::variant<GenesisEntry, AccountEntry, DepositEntry, SubmissionEntry, IncidentEntry,
                               VerdictEntry, SlashEntry, RoundEntry>;

// The entry kind stored in chain.kind ("genesis", "deposit", ...).
std::string kind_of(const EntryBody& body);
// Canonical JSON: keys sorted, no spaces, keys and digests as lowercase hex,
// amounts and ids as integers, verdicts by name.
std::string encode(const EntryBody& body);
// Parses a stored kind and body. Corruption naming what is wrong.
Result<EntryBody> decode(std::string_view kind, std::string_view body);

// BLAKE2b-256 of CanonicalBytes("cohort-ledger-entry-v1").u64(seq)
// .bytes(prev).text(kind).text(body).
Digest entry_hash(uint64_t seq, const Digest& prev, std::string_view kind, std::string_view body);

// What a head signature covers: CanonicalBytes("cohort-ledger-head-v1")
// .u64(seq).bytes(hash).u64(previous head's seq, 0 for the first)
// .u32(1 if the head closes a round else 0).u32(round or 0).
struct Head {
  uint64_t seq = 0;
  Digest hash{};
  uint64_t prev_seq = 0;
  std::optional<uint32_t> round;
  Signature signature{};
  std::vector<uint8_t> signed_bytes() const;
};

}  // namespace cohort::ledger
