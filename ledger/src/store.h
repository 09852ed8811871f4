// The ledger's SQLite schema, and reading and writing its rows. Readers
// check every value's type and size and name the table, row and column of
// the first bad one (Corruption).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "chain.h"
#include "cohort/ledger.h"
#include "rules.h"
#include "sqlite.h"

namespace cohort::ledger {

// Creates the tables that do not exist yet.
Status create_schema(sqlite::Database& db);
// Corruption unless every table of the schema exists.
Status check_schema(sqlite::Database& db);

struct StoredEntry {
  uint64_t seq = 0;
  std::string kind;
  std::string body;
  Digest prev{};
  Digest hash{};
};

Result<bool> chain_is_empty(sqlite::Database& db);
// All chain entries, by seq.
Result<std::vector<StoredEntry>> read_chain(sqlite::Database& db);
// All heads, by seq.
Result<std::vector<Head>> read_heads(sqlite::Database& db);
// Every table but chain and heads; coordinator and head are left unset.
Result<LedgerContents> read_tables(sqlite::Database& db);

Status write_entry(sqlite::Database& db, const StoredEntry& entry);
Status write_head(sqlite::Database& db, const Head& head);
// Inserts or replaces the rows `changes` names, as they are in `contents`.
Status write_changes(sqlite::Database& db, const LedgerContents& contents, const Changes& changes);

}  // namespace cohort::ledger
