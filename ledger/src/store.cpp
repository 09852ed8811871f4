#include "store.h"

#include <limits>

namespace cohort::ledger {
namespace {

using sqlite::Database;
using sqlite::Statement;

// Integers that are ids or counts are stored as their int64 bit pattern.
int64_t i64(uint64_t value) { return static_cast<int64_t>(value); }

constexpr const char* kTables[] = {"chain",       "heads",     "accounts", "deposits", "submissions",
                                   "incidents",   "slashes",   "rewards",  "rounds",   "receipts"};

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS chain(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, body TEXT NOT NULL,
                                 prev BLOB NOT NULL, hash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS heads(seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, prev_seq INTEGER NOT NULL,
                                 round INTEGER, signature BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS accounts(key BLOB PRIMARY KEY, stake INTEGER NOT NULL, balance INTEGER NOT NULL,
                                    reputation INTEGER NOT NULL, banned INTEGER NOT NULL, ban_reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deposits(seq INTEGER PRIMARY KEY, worker BLOB NOT NULL, amount INTEGER NOT NULL,
                                    memo TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS submissions(task_id INTEGER PRIMARY KEY, round INTEGER NOT NULL, worker BLOB NOT NULL,
                                       commitment_root BLOB NOT NULL, update_hash BLOB NOT NULL,
                                       samples INTEGER NOT NULL, verdict INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS incidents(seq INTEGER PRIMARY KEY, worker BLOB NOT NULL, round INTEGER NOT NULL,
                                     task_id INTEGER NOT NULL, kind TEXT NOT NULL, detail TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS slashes(seq INTEGER PRIMARY KEY, worker BLOB NOT NULL, task_id INTEGER NOT NULL,
                                   amount INTEGER NOT NULL, ban INTEGER NOT NULL, reason TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rewards(task_id INTEGER PRIMARY KEY, round INTEGER NOT NULL, worker BLOB NOT NULL,
                                   amount INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS rounds(round INTEGER PRIMARY KEY, budget INTEGER NOT NULL, paid INTEGER NOT NULL,
                                  unassigned INTEGER NOT NULL, head_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS receipts(task_id INTEGER PRIMARY KEY, round INTEGER NOT NULL, worker BLOB NOT NULL,
                                    update_hash BLOB NOT NULL, verdict INTEGER NOT NULL, reason TEXT NOT NULL,
                                    reward INTEGER NOT NULL, slashed INTEGER NOT NULL, chain_seq INTEGER NOT NULL,
                                    chain_hash BLOB NOT NULL, coordinator BLOB NOT NULL, signature BLOB NOT NULL);
)sql";

// Reads one row's columns with their stored types checked; the first
// problem ("stake is not an integer") is kept for the caller to report.
class RowReader {
 public:
  explicit RowReader(const Statement& s) : s_(s) {}

  int64_t integer(int column) {
    if (s_.type(column) != SQLITE_INTEGER) fail(column, "is not an integer");
    return s_.integer(column);
  }
  uint64_t u64(int column) { return static_cast<uint64_t>(integer(column)); }
  uint32_t u32(int column) {
    const int64_t value = integer(column);
    if (value < 0 || value > std::numeric_limits<uint32_t>::max()) fail(column, "is out of range");
    return static_cast<uint32_t>(value);
  }
  bool boolean(int column) {
    const int64_t value = integer(column);
    if (value != 0 && value != 1) fail(column, "is not 0 or 1");
    return value == 1;
  }
  Verdict verdict(int column) {
    const int64_t value = integer(column);
    if (value < 0 || value > static_cast<int64_t>(Verdict::kVoided)) fail(column, "is not a verdict");
    return static_cast<Verdict>(value);
  }
  std::string text(int column) {
    if (s_.type(column) != SQLITE_TEXT) fail(column, "is not text");
    return s_.text(column);
  }
  template <size_t N>
  std::array<uint8_t, N> bytes(int column) {
    std::array<uint8_t, N> out{};
    std::span<const uint8_t> blob = s_.blob(column);
    if (s_.type(column) != SQLITE_BLOB || blob.size() != N) {
      fail(column, "is not a " + std::to_string(N) + "-byte blob");
    } else {
      std::copy(blob.begin(), blob.end(), out.begin());
    }
    return out;
  }
  Digest digest(int column) { return bytes<32>(column); }
  std::optional<uint32_t> optional_u32(int column) {
    if (s_.type(column) == SQLITE_NULL) return std::nullopt;
    return u32(column);
  }

  const std::string& problem() const { return problem_; }

 private:
  void fail(int column, const std::string& what) {
    if (problem_.empty()) problem_ = std::string(s_.name(column)) + " " + what;
  }

  const Statement& s_;
  std::string problem_;
};

// Runs `sql` (whose column 0 is the rowid) and hands each row to `read`,
// which returns false to stop early. Rows with a bad value are Corruption
// "table T, rowid R: <problem>".
template <class Read>
Status for_each_row(Database& db, const char* sql, std::string_view table, Read read) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare(sql));
  s->bind();
  for (;;) {
    Result<bool> row = s->step();
    if (!row.ok() || !*row) return row.status();
    RowReader reader(*s);
    const Status status = read(reader);
    const std::string where = "table " + std::string(table) + ", rowid " + std::to_string(s->integer(0));
    if (!reader.problem().empty() || !status.ok()) {
      s->reset();
      return Status::corruption(where + ": " + (reader.problem().empty() ? status.message() : reader.problem()));
    }
  }
}

// Reads a whole table into `out`, keyed by what `read` returns.
template <class K, class V, class Read>
Status read_table(Database& db, const char* sql, std::string_view table, std::map<K, V>& out, Read read) {
  return for_each_row(db, sql, table, [&](RowReader& r) -> Status {
    auto [key, value] = read(r);
    if (!out.emplace(key, std::move(value)).second) return Status::corruption("duplicate row");
    return Status();
  });
}

Status write_account(Database& db, const Account& a) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT OR REPLACE INTO accounts VALUES(?, ?, ?, ?, ?, ?)"));
  return s->bind(std::span<const uint8_t>(a.key), a.stake, a.balance, a.reputation, int64_t{a.banned},
                 std::string_view(a.ban_reason))
      .run();
}

Status write_submission(Database& db, const SubmissionRecord& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s,
                          db.prepare("INSERT OR REPLACE INTO submissions VALUES(?, ?, ?, ?, ?, ?, ?, ?)"));
  const Submission& m = r.submission;
  return s->bind(i64(m.task_id), int64_t{m.round}, std::span<const uint8_t>(m.worker),
                 std::span<const uint8_t>(m.commitment_root), std::span<const uint8_t>(m.update_hash),
                 i64(m.samples), static_cast<int64_t>(r.verdict), std::string_view(r.reason))
      .run();
}

Status write_reward(Database& db, const RewardRecord& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO rewards VALUES(?, ?, ?, ?)"));
  return s->bind(i64(r.task_id), int64_t{r.round}, std::span<const uint8_t>(r.worker), r.amount).run();
}

Status write_receipt(Database& db, const Receipt& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s,
                          db.prepare("INSERT INTO receipts VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
  return s->bind(i64(r.task_id), int64_t{r.round}, std::span<const uint8_t>(r.worker),
                 std::span<const uint8_t>(r.update_hash), static_cast<int64_t>(r.verdict),
                 std::string_view(r.reason), r.reward, r.slashed, i64(r.chain_seq),
                 std::span<const uint8_t>(r.chain_hash), std::span<const uint8_t>(r.coordinator),
                 std::span<const uint8_t>(r.signature))
      .run();
}

Status write_deposit(Database& db, const DepositRecord& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO deposits VALUES(?, ?, ?, ?)"));
  return s->bind(i64(r.seq), std::span<const uint8_t>(r.worker), r.amount, std::string_view(r.memo)).run();
}

Status write_incident(Database& db, const IncidentRecord& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO incidents VALUES(?, ?, ?, ?, ?, ?)"));
  return s->bind(i64(r.seq), std::span<const uint8_t>(r.worker), int64_t{r.round}, i64(r.task_id),
                 std::string_view(r.kind), std::string_view(r.detail))
      .run();
}

Status write_slash(Database& db, const SlashRecord& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO slashes VALUES(?, ?, ?, ?, ?, ?)"));
  return s->bind(i64(r.seq), std::span<const uint8_t>(r.worker), i64(r.task_id), r.amount, int64_t{r.ban},
                 std::string_view(r.reason))
      .run();
}

Status write_round(Database& db, const RoundRecord& r) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO rounds VALUES(?, ?, ?, ?, ?)"));
  return s->bind(int64_t{r.round}, r.budget, r.paid, r.unassigned, i64(r.head_seq)).run();
}

}  // namespace

Status create_schema(Database& db) { return db.exec(kSchema); }

Status check_schema(Database& db) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?"));
  for (const char* table : kTables) {
    COHORT_RETURN_IF_ERROR(s->bind(std::string_view(table)).step().status());
    const bool present = s->integer(0) == 1;
    s->reset();
    if (!present) return Status::corruption("not a ledger: table " + std::string(table) + " is missing");
  }
  return Status();
}

Result<bool> chain_is_empty(Database& db) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("SELECT count(*) FROM chain"));
  COHORT_RETURN_IF_ERROR(s->bind().step().status());
  const bool empty = s->integer(0) == 0;
  s->reset();
  return empty;
}

Result<std::vector<StoredEntry>> read_chain(Database& db) {
  std::vector<StoredEntry> chain;
  COHORT_RETURN_IF_ERROR(for_each_row(db, "SELECT seq, kind, body, prev, hash FROM chain ORDER BY seq", "chain",
                                      [&](RowReader& r) {
                                        chain.push_back({r.u64(0), r.text(1), r.text(2), r.digest(3), r.digest(4)});
                                        return Status();
                                      }));
  return chain;
}

Result<std::vector<Head>> read_heads(Database& db) {
  std::vector<Head> heads;
  COHORT_RETURN_IF_ERROR(for_each_row(db, "SELECT seq, hash, prev_seq, round, signature FROM heads ORDER BY seq",
                                      "heads", [&](RowReader& r) {
                                        heads.push_back({r.u64(0), r.digest(1), r.u64(2), r.optional_u32(3),
                                                         r.bytes<64>(4)});
                                        return Status();
                                      }));
  return heads;
}

Result<LedgerContents> read_tables(Database& db) {
  LedgerContents c;
  COHORT_RETURN_IF_ERROR(read_table(
      db, "SELECT rowid, key, stake, balance, reputation, banned, ban_reason FROM accounts", "accounts", c.accounts,
      [](RowReader& r) {
        Account a{r.digest(1), r.integer(2), r.integer(3), r.integer(4), r.boolean(5), r.text(6)};
        return std::pair(a.key, a);
      }));
  COHORT_RETURN_IF_ERROR(read_table(db, "SELECT seq, worker, amount, memo FROM deposits", "deposits", c.deposits,
                                    [](RowReader& r) {
                                      DepositRecord d{r.u64(0), r.digest(1), r.integer(2), r.text(3)};
                                      return std::pair(d.seq, d);
                                    }));
  COHORT_RETURN_IF_ERROR(read_table(
      db,
      "SELECT task_id, round, worker, commitment_root, update_hash, samples, verdict, reason FROM submissions",
      "submissions", c.submissions, [](RowReader& r) {
        SubmissionRecord s{{r.u32(1), r.u64(0), r.digest(2), r.digest(3), r.digest(4), r.u64(5)},
                           r.verdict(6),
                           r.text(7)};
        return std::pair(s.submission.task_id, s);
      }));
  COHORT_RETURN_IF_ERROR(read_table(db, "SELECT seq, worker, round, task_id, kind, detail FROM incidents",
                                    "incidents", c.incidents, [](RowReader& r) {
                                      IncidentRecord i{r.u64(0),  r.digest(1), r.u32(2),
                                                       r.u64(3),  r.text(4),   r.text(5)};
                                      return std::pair(i.seq, i);
                                    }));
  COHORT_RETURN_IF_ERROR(read_table(db, "SELECT seq, worker, task_id, amount, ban, reason FROM slashes", "slashes",
                                    c.slashes, [](RowReader& r) {
                                      SlashRecord s{r.u64(0),     r.digest(1), r.u64(2),
                                                    r.integer(3), r.boolean(4), r.text(5)};
                                      return std::pair(s.seq, s);
                                    }));
  COHORT_RETURN_IF_ERROR(read_table(db, "SELECT task_id, round, worker, amount FROM rewards", "rewards", c.rewards,
                                    [](RowReader& r) {
                                      RewardRecord w{r.u64(0), r.u32(1), r.digest(2), r.integer(3)};
                                      return std::pair(w.task_id, w);
                                    }));
  COHORT_RETURN_IF_ERROR(read_table(db, "SELECT round, budget, paid, unassigned, head_seq FROM rounds", "rounds",
                                    c.rounds, [](RowReader& r) {
                                      RoundRecord d{r.u32(0), r.integer(1), r.integer(2), r.integer(3), r.u64(4)};
                                      return std::pair(d.round, d);
                                    }));
  COHORT_RETURN_IF_ERROR(read_table(
      db,
      "SELECT task_id, round, worker, update_hash, verdict, reason, reward, slashed, chain_seq, chain_hash, "
      "coordinator, signature FROM receipts",
      "receipts", c.receipts, [](RowReader& r) {
        Receipt t{.round = r.u32(1),
                  .task_id = r.u64(0),
                  .worker = r.digest(2),
                  .update_hash = r.digest(3),
                  .verdict = r.verdict(4),
                  .reason = r.text(5),
                  .reward = r.integer(6),
                  .slashed = r.integer(7),
                  .chain_seq = r.u64(8),
                  .chain_hash = r.digest(9),
                  .coordinator = r.digest(10),
                  .signature = r.bytes<64>(11)};
        return std::pair(t.task_id, t);
      }));
  return c;
}

Status write_entry(Database& db, const StoredEntry& e) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO chain VALUES(?, ?, ?, ?, ?)"));
  return s->bind(i64(e.seq), std::string_view(e.kind), std::string_view(e.body), std::span<const uint8_t>(e.prev),
                 std::span<const uint8_t>(e.hash))
      .run();
}

Status write_head(Database& db, const Head& h) {
  COHORT_ASSIGN_OR_RETURN(Statement * s, db.prepare("INSERT INTO heads VALUES(?, ?, ?, ?, ?)"));
  if (h.round) {
    s->bind(i64(h.seq), std::span<const uint8_t>(h.hash), i64(h.prev_seq), int64_t{*h.round},
            std::span<const uint8_t>(h.signature));
  } else {
    s->bind(i64(h.seq), std::span<const uint8_t>(h.hash), i64(h.prev_seq), nullptr,
            std::span<const uint8_t>(h.signature));
  }
  return s->run();
}

Status write_changes(Database& db, const LedgerContents& c, const Changes& changes) {
  for (const PublicKey& key : changes.accounts) COHORT_RETURN_IF_ERROR(write_account(db, c.accounts.at(key)));
  for (uint64_t task : changes.submissions) COHORT_RETURN_IF_ERROR(write_submission(db, c.submissions.at(task)));
  for (uint64_t task : changes.rewards) COHORT_RETURN_IF_ERROR(write_reward(db, c.rewards.at(task)));
  for (uint64_t task : changes.receipts) COHORT_RETURN_IF_ERROR(write_receipt(db, c.receipts.at(task)));
  if (changes.deposit) COHORT_RETURN_IF_ERROR(write_deposit(db, c.deposits.at(*changes.deposit)));
  if (changes.incident) COHORT_RETURN_IF_ERROR(write_incident(db, c.incidents.at(*changes.incident)));
  if (changes.slash) COHORT_RETURN_IF_ERROR(write_slash(db, c.slashes.at(*changes.slash)));
  if (changes.round) COHORT_RETURN_IF_ERROR(write_round(db, c.rounds.at(*changes.round)));
  return Status();
}

}  // namespace cohort::ledger
