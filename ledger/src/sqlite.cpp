#include "sqlite.h"

namespace cohort::sqlite {
namespace {

// What failed, for a user: the statement's SQL is not part of the message
// (callers add which ledger it was).
Status status_of(sqlite3* db, int code) {
  const std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(code);
  if (code == SQLITE_NOTADB) return Status::corruption("not a ledger (SQLite: " + detail + ")");
  if (code == SQLITE_CORRUPT) return Status::corruption("the ledger database is damaged (SQLite: " + detail + ")");
  return Status::io_error("SQLite: " + detail);
}

}  // namespace

void Statement::bind_one(int index, std::string_view value) {
  sqlite3_bind_text(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
}

void Statement::bind_one(int index, std::span<const uint8_t> value) {
  sqlite3_bind_blob(stmt_, index, value.data(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
}

Result<bool> Statement::step() {
  const int code = sqlite3_step(stmt_);
  if (code == SQLITE_ROW) return true;
  if (code == SQLITE_DONE) return false;
  return status_of(db_, code);
}

Status Statement::run() {
  COHORT_ASSIGN_OR_RETURN(bool row, step());
  (void)row;
  const int code = sqlite3_reset(stmt_);
  return code == SQLITE_OK ? Status() : status_of(db_, code);
}

std::string Statement::text(int column) const {
  const auto* chars = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  return chars ? std::string(chars, static_cast<size_t>(sqlite3_column_bytes(stmt_, column))) : std::string();
}

std::span<const uint8_t> Statement::blob(int column) const {
  const auto* bytes = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
  return {bytes, bytes ? static_cast<size_t>(sqlite3_column_bytes(stmt_, column)) : 0};
}

Result<std::unique_ptr<Database>> Database::open(const std::filesystem::path& path, bool read_only) {
  sqlite3* db = nullptr;
  const int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const int code = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  std::unique_ptr<Database> database(new Database(db));  // closes db even when opening failed
  if (code != SQLITE_OK) return status_of(db, code).with_context("cannot open " + path.string());
  sqlite3_busy_timeout(db, 5000);  // wait out another connection's write
  return database;
}

Database::~Database() {
  statements_.clear();  // finalize before closing
  sqlite3_close(db_);
}

Status Database::exec(const char* sql) {
  const int code = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  return code == SQLITE_OK ? Status() : status_of(db_, code);
}

Result<Statement*> Database::prepare(const char* sql) {
  auto it = statements_.find(sql);
  if (it == statements_.end()) {
    sqlite3_stmt* stmt = nullptr;
    const int code = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (code != SQLITE_OK) return status_of(db_, code);
    it = statements_.emplace(sql, std::make_unique<Statement>(db_, stmt)).first;
  }
  return it->second.get();
}

Transaction::Transaction(Database& db, Kind kind)
    : db_(db), begun_(db.exec(kind == Kind::kWrite ? "BEGIN IMMEDIATE" : "BEGIN")), open_(begun_.ok()) {}

Transaction::~Transaction() {
  if (open_) (void)db_.exec("ROLLBACK");
}

Status Transaction::commit() {
  COHORT_RETURN_IF_ERROR(db_.exec("COMMIT"));
  open_ = false;
  return Status();
}

}  // namespace cohort::sqlite
