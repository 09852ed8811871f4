// Verification of an open ledger database (see verify_ledger in
// cohort/ledger.h), shared by verify_ledger, read_ledger and Ledger::open.
#pragma once

#include <optional>

#include "cohort/ledger.h"
#include "sqlite.h"

namespace cohort::ledger {

struct Verified {
  LedgerContents contents;  // the tables, proven equal to the chain's replay
  LedgerReport report;
};

// Checks the chain, heads, receipts and tables of `db` in one read snapshot.
// Corruption naming the first problem.
Result<Verified> verify_database(sqlite::Database& db, const std::optional<PublicKey>& expected_coordinator);

}  // namespace cohort::ledger
