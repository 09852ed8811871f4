// The ledger's rules: how one chain entry changes the ledger's contents.
// The Ledger applies each entry it appends with apply(), and verification
// replays the whole chain with the same function, so the tables a Ledger
// writes are by construction what a replay gives.
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

#include "chain.h"
#include "cohort/ledger.h"

namespace cohort::ledger {

// The rows an entry created or changed, for the writer.
struct Changes {
  std::set<PublicKey> accounts;
  std::vector<uint64_t> submissions;  // task ids
  std::vector<uint64_t> rewards;      // task ids
  std::vector<uint64_t> receipts;     // task ids
  std::optional<uint64_t> deposit;    // entry seq
  std::optional<uint64_t> incident;   // entry seq
  std::optional<uint64_t> slash;      // entry seq
  std::optional<uint32_t> round;
};

// Applies entry `seq` (hash `hash`) to `contents`, or returns why the entry
// is not allowed (InvalidArgument, FailedPrecondition, NotFound) and leaves
// `contents` unchanged. Receipts it creates carry no signature yet.
Result<Changes> apply(LedgerContents& contents, uint64_t seq, const Digest& hash, const EntryBody& body);

// The round entry that closes `round` with `budget`: the split of the budget
// over the round's paid submissions. FailedPrecondition if the round is
// closed or has a pending submission; InvalidArgument for a negative budget.
Result<RoundEntry> settle_round(const LedgerContents& contents, uint32_t round, Amount budget);

// The amount slash(fraction) takes from `stake`: floor(stake * fraction),
// exact for every int64 stake. `fraction` must be in [0, 1].
Amount slash_amount(Amount stake, double fraction);

}  // namespace cohort::ledger
