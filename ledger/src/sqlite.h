// A thin RAII layer over the SQLite C API: a connection with cached prepared
// statements, a statement with typed binding and column access, and a
// transaction that rolls back unless committed. Errors are
// values: IoError, or Corruption for a file that is not a database.
// Not thread-safe (one owner thread, like the Ledger).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "cohort/status.h"

namespace cohort::sqlite {

class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement() { sqlite3_finalize(stmt_); }

  // Binds parameters 1..n in order (clearing earlier bindings and the
  // cursor). Integers bind as INTEGER, string_view as TEXT, byte spans as
  // BLOB, nullptr as NULL.
  template <class... Args>
  Statement& bind(const Args&... args) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    int index = 0;
    (bind_one(++index, args), ...);
    return *this;
  }

  // Advances to the next row: true for a row, false when done.
  Result<bool> step();
  // Steps to completion (INSERT, UPDATE, ...).
  Status run();

  // Ends a read early (releases the statement's snapshot).
  void reset() { sqlite3_reset(stmt_); }

  int type(int column) const { return sqlite3_column_type(stmt_, column); }  // SQLITE_INTEGER, ...
  std::string_view name(int column) const { return sqlite3_column_name(stmt_, column); }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  std::string text(int column) const;
  std::span<const uint8_t> blob(int column) const;

 private:
  void bind_one(int index, int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
  void bind_one(int index, std::string_view value);
  void bind_one(int index, std::span<const uint8_t> value);
  void bind_one(int index, std::nullptr_t) { sqlite3_bind_null(stmt_, index); }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

class Database {
 public:
  // Opens `path` read-write (creating it) or read-only.
  static Result<std::unique_ptr<Database>> open(const std::filesystem::path& path, bool read_only);
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements without parameters.
  Status exec(const char* sql);
  // A prepared statement for `sql`, cached for the connection's lifetime;
  // `sql` must be a string literal (its address is the cache key).
  Result<Statement*> prepare(const char* sql);

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::map<const char*, std::unique_ptr<Statement>> statements_;
};

// BEGIN on construction (check begun()); ROLLBACK on destruction unless
// commit() succeeded. A write transaction takes the write lock at once
// (BEGIN IMMEDIATE); a read transaction reads one snapshot throughout.
class Transaction {
 public:
  enum class Kind { kRead, kWrite };
  Transaction(Database& db, Kind kind);
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  const Status& begun() const { return begun_; }
  Status commit();

 private:
  Database& db_;
  Status begun_;
  bool open_ = false;
};

}  // namespace cohort::sqlite
