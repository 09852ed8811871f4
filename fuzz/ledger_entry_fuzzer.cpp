// Fuzzes the ledger chain's entry decoder (ledger/src/chain.h), which
// `cohort ledger verify` runs on every stored entry of a ledger that may
// have been tampered with.
//
// Input: one byte choosing the entry kind, then the JSON body.
// Invariants: a body that decodes has the kind it was stored under, and its
// canonical encoding decodes to an entry that encodes to the same text.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chain.h"
#include "fuzz_check.h"

namespace {

// The kinds chain.cpp knows, and one it does not.
constexpr std::array<std::string_view, 9> kKinds = {"genesis",  "account", "deposit", "submission", "incident",
                                                    "verdict",  "slash",   "round",   "unknown"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cohort;
  if (size == 0) return 0;
  const std::string_view kind = kKinds[data[0] % kKinds.size()];
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  Result<ledger::EntryBody> entry = ledger::decode(kind, body);
  if (!entry.ok()) return 0;
  fuzz::check(ledger::kind_of(*entry) == kind, "a decoded entry has the kind it was stored under");
  const std::string canonical = ledger::encode(*entry);
  Result<ledger::EntryBody> again = ledger::decode(kind, canonical);
  fuzz::check(again.ok(), "the canonical encoding of an entry decodes");
  fuzz::check(ledger::encode(*again) == canonical, "re-encoding an entry is stable");
  return 0;
}
