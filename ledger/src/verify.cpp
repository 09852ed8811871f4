#include "verify.h"

#include "chain.h"
#include "rules.h"
#include "store.h"

namespace cohort::ledger {
namespace {

std::string entry_name(uint64_t seq) { return "entry " + std::to_string(seq); }

// The first chain entry whose seq, prev or hash is wrong.
Status check_links(const std::vector<StoredEntry>& chain) {
  if (chain.empty()) return Status::corruption("the chain is empty");
  Digest prev{};
  for (size_t i = 0; i < chain.size(); ++i) {
    const StoredEntry& e = chain[i];
    const uint64_t seq = i + 1;
    if (e.seq != seq) {
      return Status::corruption(entry_name(seq) + ": missing (the chain goes from entry " + std::to_string(i) +
                                " to entry " + std::to_string(e.seq) + ")");
    }
    if (e.prev != prev) return Status::corruption(entry_name(seq) + ": prev is not the hash of the entry before");
    if (entry_hash(e.seq, e.prev, e.kind, e.body) != e.hash) {
      return Status::corruption(entry_name(seq) + ": hash does not match its contents");
    }
    prev = e.hash;
  }
  return Status();
}

Result<PublicKey> genesis_key(const StoredEntry& first) {
  Result<EntryBody> body = decode(first.kind, first.body);
  if (!body.ok()) return body.status().with_context(entry_name(1));
  if (!std::holds_alternative<GenesisEntry>(*body)) return Status::corruption("entry 1: not the genesis entry");
  return std::get<GenesisEntry>(*body).coordinator;
}

// Heads form a list (each names the one before it), each signs the hash of
// the entry it is at, and the last is at the last entry.
Status check_heads(const std::vector<Head>& heads, const std::vector<StoredEntry>& chain,
                   const PublicKey& coordinator) {
  uint64_t prev = 0;
  for (const Head& h : heads) {
    const std::string where = "head at " + entry_name(h.seq);
    if (h.seq == 0 || h.seq > chain.size()) return Status::corruption(where + ": the chain has no such entry");
    if (h.prev_seq != prev) {
      return Status::corruption(where + ": it follows the head at " + entry_name(h.prev_seq) +
                                " but the table's previous head is at " + entry_name(prev));
    }
    if (h.hash != chain[h.seq - 1].hash) return Status::corruption(where + ": its hash is not the entry's hash");
    if (!verify_signature(coordinator, h.signed_bytes(), h.signature)) {
      return Status::corruption(where + ": the coordinator's signature does not verify");
    }
    prev = h.seq;
  }
  if (prev != chain.size()) {
    return Status::corruption(entry_name(chain.size()) + ": not covered by a signed head (the last head is at " +
                              entry_name(prev) + ")");
  }
  return Status();
}

Result<LedgerContents> replay(const std::vector<StoredEntry>& chain) {
  LedgerContents state;
  for (const StoredEntry& e : chain) {
    const std::string where = entry_name(e.seq) + " (" + e.kind + ")";
    Result<EntryBody> body = decode(e.kind, e.body);
    if (!body.ok()) return Status::corruption(where + ": " + body.status().message());
    Result<Changes> applied = apply(state, e.seq, e.hash, *body);
    if (!applied.ok()) return Status::corruption(where + ": " + applied.status().message());
  }
  return state;
}

std::string show(int64_t v) { return std::to_string(v); }
std::string show(uint64_t v) { return std::to_string(v); }
std::string show(uint32_t v) { return std::to_string(v); }
std::string show(bool v) { return v ? "true" : "false"; }
std::string show(Verdict v) { return std::string(verdict_name(v)); }
std::string show(const std::string& v) { return "'" + v + "'"; }
template <size_t N>
std::string show(const std::array<uint8_t, N>& v) {
  return to_hex(v);
}

// The first field in which a stored row differs from the replayed one.
class FieldDiff {
 public:
  template <class T>
  FieldDiff& field(const char* name, const T& stored, const T& replayed) {
    if (first_.empty() && !(stored == replayed)) {
      first_ = std::string(name) + " is " + show(stored) + ", the chain gives " + show(replayed);
    }
    return *this;
  }
  std::string first() const { return first_; }

 private:
  std::string first_;
};

std::string diff(const Account& s, const Account& r) {
  return FieldDiff()
      .field("stake", s.stake, r.stake)
      .field("balance", s.balance, r.balance)
      .field("reputation", s.reputation, r.reputation)
      .field("banned", s.banned, r.banned)
      .field("ban_reason", s.ban_reason, r.ban_reason)
      .first();
}
std::string diff(const SubmissionRecord& s, const SubmissionRecord& r) {
  const Submission &a = s.submission, &b = r.submission;
  return FieldDiff()
      .field("round", a.round, b.round)
      .field("worker", a.worker, b.worker)
      .field("commitment_root", a.commitment_root, b.commitment_root)
      .field("update_hash", a.update_hash, b.update_hash)
      .field("samples", a.samples, b.samples)
      .field("verdict", s.verdict, r.verdict)
      .field("reason", s.reason, r.reason)
      .first();
}
std::string diff(const RewardRecord& s, const RewardRecord& r) {
  return FieldDiff()
      .field("round", s.round, r.round)
      .field("worker", s.worker, r.worker)
      .field("amount", s.amount, r.amount)
      .first();
}
std::string diff(const SlashRecord& s, const SlashRecord& r) {
  return FieldDiff()
      .field("worker", s.worker, r.worker)
      .field("task_id", s.task_id, r.task_id)
      .field("amount", s.amount, r.amount)
      .field("ban", s.ban, r.ban)
      .field("reason", s.reason, r.reason)
      .first();
}
std::string diff(const IncidentRecord& s, const IncidentRecord& r) {
  return FieldDiff()
      .field("worker", s.worker, r.worker)
      .field("round", s.round, r.round)
      .field("task_id", s.task_id, r.task_id)
      .field("kind", s.kind, r.kind)
      .field("detail", s.detail, r.detail)
      .first();
}
std::string diff(const DepositRecord& s, const DepositRecord& r) {
  return FieldDiff()
      .field("worker", s.worker, r.worker)
      .field("amount", s.amount, r.amount)
      .field("memo", s.memo, r.memo)
      .first();
}
std::string diff(const RoundRecord& s, const RoundRecord& r) {
  return FieldDiff()
      .field("budget", s.budget, r.budget)
      .field("paid", s.paid, r.paid)
      .field("unassigned", s.unassigned, r.unassigned)
      .field("head_seq", s.head_seq, r.head_seq)
      .first();
}
// Every field but the signature, which is checked on its own.
std::string diff(const Receipt& s, const Receipt& r) {
  return FieldDiff()
      .field("round", s.round, r.round)
      .field("worker", s.worker, r.worker)
      .field("update_hash", s.update_hash, r.update_hash)
      .field("verdict", s.verdict, r.verdict)
      .field("reason", s.reason, r.reason)
      .field("reward", s.reward, r.reward)
      .field("slashed", s.slashed, r.slashed)
      .field("chain_seq", s.chain_seq, r.chain_seq)
      .field("chain_hash", s.chain_hash, r.chain_hash)
      .field("coordinator", s.coordinator, r.coordinator)
      .first();
}

std::string row_name(const PublicKey& key) { return to_hex(key); }
std::string row_name(uint64_t id) { return std::to_string(id); }

// The first row (in key order) that is missing, extra or different.
template <class K, class V>
Status compare_table(std::string_view table, std::string_view key_kind, const std::map<K, V>& stored,
                     const std::map<K, V>& replayed) {
  auto s = stored.begin();
  auto r = replayed.begin();
  while (s != stored.end() || r != replayed.end()) {
    const bool stored_first = r == replayed.end() || (s != stored.end() && s->first < r->first);
    const bool replayed_first = s == stored.end() || (r != replayed.end() && r->first < s->first);
    const K& key = stored_first ? s->first : r->first;
    const std::string where = "table " + std::string(table) + ", row " + std::string(key_kind) + row_name(key);
    if (stored_first) return Status::corruption(where + ": not in the chain");
    if (replayed_first) return Status::corruption(where + ": missing (the chain has it)");
    if (std::string d = diff(s->second, r->second); !d.empty()) return Status::corruption(where + ": " + d);
    ++s;
    ++r;
  }
  return Status();
}

Status compare_tables(const LedgerContents& stored, const LedgerContents& replayed) {
  COHORT_RETURN_IF_ERROR(compare_table("accounts", "", stored.accounts, replayed.accounts));
  COHORT_RETURN_IF_ERROR(compare_table("deposits", "entry ", stored.deposits, replayed.deposits));
  COHORT_RETURN_IF_ERROR(compare_table("submissions", "task ", stored.submissions, replayed.submissions));
  COHORT_RETURN_IF_ERROR(compare_table("incidents", "entry ", stored.incidents, replayed.incidents));
  COHORT_RETURN_IF_ERROR(compare_table("slashes", "entry ", stored.slashes, replayed.slashes));
  COHORT_RETURN_IF_ERROR(compare_table("rewards", "task ", stored.rewards, replayed.rewards));
  COHORT_RETURN_IF_ERROR(compare_table("rounds", "round ", stored.rounds, replayed.rounds));
  COHORT_RETURN_IF_ERROR(compare_table("receipts", "task ", stored.receipts, replayed.receipts));
  for (const auto& [task_id, receipt] : stored.receipts) {
    if (!verify_receipt(receipt)) {
      return Status::corruption("table receipts, row task " + std::to_string(task_id) +
                                ": the coordinator's signature does not verify");
    }
  }
  return Status();
}

// Each closed round's entry carries a head marked with the round, and only
// those heads are marked.
Status check_round_heads(const std::vector<Head>& heads, const LedgerContents& replayed) {
  std::map<uint64_t, uint32_t> round_at;  // entry seq -> round closed there
  for (const auto& [round, record] : replayed.rounds) round_at[record.head_seq] = round;
  for (const Head& h : heads) {
    auto it = round_at.find(h.seq);
    const std::optional<uint32_t> want = it == round_at.end() ? std::nullopt : std::optional(it->second);
    if (h.round != want) {
      return Status::corruption("head at " + entry_name(h.seq) + ": " +
                                (want ? "round " + std::to_string(*want) + " closes here but the head is not "
                                                                           "marked with it"
                                      : "marked as a round's head, but no round closes here"));
    }
    round_at.erase(h.seq);
  }
  if (!round_at.empty()) {
    return Status::corruption("round " + std::to_string(round_at.begin()->second) + ": its head at " +
                              entry_name(round_at.begin()->first) + " is not signed");
  }
  return Status();
}

}  // namespace

Result<Verified> verify_database(sqlite::Database& db, const std::optional<PublicKey>& expected_coordinator) {
  COHORT_RETURN_IF_ERROR(check_schema(db));
  sqlite::Transaction snapshot(db, sqlite::Transaction::Kind::kRead);
  COHORT_RETURN_IF_ERROR(snapshot.begun());
  COHORT_ASSIGN_OR_RETURN(std::vector<StoredEntry> chain, read_chain(db));
  COHORT_RETURN_IF_ERROR(check_links(chain));
  COHORT_ASSIGN_OR_RETURN(PublicKey coordinator, genesis_key(chain.front()));
  if (expected_coordinator && *expected_coordinator != coordinator) {
    return Status::corruption("entry 1: the ledger was created by coordinator " + to_hex(coordinator) +
                              ", not by the expected " + to_hex(*expected_coordinator));
  }
  COHORT_ASSIGN_OR_RETURN(std::vector<Head> heads, read_heads(db));
  COHORT_RETURN_IF_ERROR(check_heads(heads, chain, coordinator));
  COHORT_ASSIGN_OR_RETURN(LedgerContents replayed, replay(chain));
  COHORT_ASSIGN_OR_RETURN(LedgerContents stored, read_tables(db));
  COHORT_RETURN_IF_ERROR(compare_tables(stored, replayed));
  COHORT_RETURN_IF_ERROR(check_round_heads(heads, replayed));
  stored.coordinator = coordinator;
  stored.head_seq = replayed.head_seq;
  stored.head = replayed.head;
  LedgerReport report{.entries = chain.size(),
                      .rounds_closed = static_cast<uint32_t>(replayed.rounds.size()),
                      .receipts = replayed.receipts.size(),
                      .accounts = replayed.accounts.size(),
                      .coordinator = coordinator,
                      .head = replayed.head};
  return Verified{std::move(stored), report};
}

namespace {

Result<std::unique_ptr<sqlite::Database>> open_read_only(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) return Status::not_found("no ledger " + path.string());
  return sqlite::Database::open(path, /*read_only=*/true);
}

}  // namespace
}  // namespace cohort::ledger

namespace cohort {

Result<LedgerReport> verify_ledger(const std::filesystem::path& path,
                                   const std::optional<PublicKey>& expected_coordinator) {
  COHORT_ASSIGN_OR_RETURN(auto db, ledger::open_read_only(path));
  COHORT_ASSIGN_OR_RETURN(ledger::Verified verified, ledger::verify_database(*db, expected_coordinator));
  return verified.report;
}

Result<LedgerContents> read_ledger(const std::filesystem::path& path) {
  COHORT_ASSIGN_OR_RETURN(auto db, ledger::open_read_only(path));
  COHORT_RETURN_IF_ERROR(ledger::check_schema(*db));
  sqlite::Transaction snapshot(*db, sqlite::Transaction::Kind::kRead);
  COHORT_RETURN_IF_ERROR(snapshot.begun());
  COHORT_ASSIGN_OR_RETURN(std::vector<ledger::StoredEntry> chain, ledger::read_chain(*db));
  if (chain.empty()) return Status::corruption(path.string() + ": the chain is empty");
  COHORT_ASSIGN_OR_RETURN(LedgerContents contents, ledger::read_tables(*db));
  COHORT_ASSIGN_OR_RETURN(contents.coordinator, ledger::genesis_key(chain.front()));
  contents.head_seq = chain.back().seq;
  contents.head = chain.back().hash;
  return contents;
}

}  // namespace cohort
