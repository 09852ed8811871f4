// The Ledger: validates each change by applying its entry to the in-memory
// contents (rules.h), then writes the entry, the rows it changed and a
// signed head in one transaction.
#include "cohort/ledger.h"

#include <set>

#include "chain.h"
#include "cohort/file_lock.h"
#include "rules.h"
#include "sqlite.h"
#include "store.h"
#include "verify.h"

namespace cohort {

using ledger::Changes;
using ledger::EntryBody;

struct Ledger::Impl {
  FileLock lock;  // <path>.lock: one writer at a time, released last
  const Identity& coordinator;
  std::unique_ptr<sqlite::Database> db;
  std::string name;          // the path, for messages
  LedgerContents contents;   // equal to the tables
  Status broken;             // set when a write failed after the contents changed

  Status append(const EntryBody& body);
  Status write(const ledger::StoredEntry& entry, const Changes& changes);
  std::vector<Receipt> round_receipts(uint32_t round) const;
};

// Appends `body` as the next entry: decodes its canonical text again (so
// that what is applied is exactly what a replay will see), applies it, signs
// new receipts and the head, and writes it all in one transaction.
Status Ledger::Impl::append(const EntryBody& body) {
  COHORT_RETURN_IF_ERROR(broken);
  ledger::StoredEntry entry{contents.head_seq + 1, ledger::kind_of(body), ledger::encode(body), contents.head, {}};
  entry.hash = ledger::entry_hash(entry.seq, entry.prev, entry.kind, entry.body);
  COHORT_ASSIGN_OR_RETURN(EntryBody stored, ledger::decode(entry.kind, entry.body));
  COHORT_ASSIGN_OR_RETURN(Changes changes, ledger::apply(contents, entry.seq, entry.hash, stored));
  for (uint64_t task_id : changes.receipts) {
    Receipt& receipt = contents.receipts.at(task_id);
    receipt.signature = coordinator.sign(receipt.signed_bytes());
  }
  Status written = write(entry, changes);
  if (!written.ok()) {
    // The contents are ahead of the file now: refuse further changes; reopening re-reads the file.
    broken = written.with_context("ledger " + name + " is unusable after a failed write; reopen it");
    return broken;
  }
  return Status();
}

Status Ledger::Impl::write(const ledger::StoredEntry& entry, const Changes& changes) {
  ledger::Head head{entry.seq, entry.hash, entry.seq - 1, changes.round, {}};
  head.signature = coordinator.sign(head.signed_bytes());
  sqlite::Transaction tx(*db, sqlite::Transaction::Kind::kWrite);
  COHORT_RETURN_IF_ERROR(tx.begun());
  COHORT_RETURN_IF_ERROR(ledger::write_entry(*db, entry));
  COHORT_RETURN_IF_ERROR(ledger::write_changes(*db, contents, changes));
  COHORT_RETURN_IF_ERROR(ledger::write_head(*db, head));
  return tx.commit();
}

std::vector<Receipt> Ledger::Impl::round_receipts(uint32_t round) const {
  std::vector<Receipt> out;
  for (const auto& [task_id, receipt] : contents.receipts) {
    if (receipt.round == round) out.push_back(receipt);
  }
  return out;
}

namespace {

Status configure(sqlite::Database& db) {
  // WAL: readers (cohort ledger verify/show) never block the coordinator.
  // synchronous=FULL: a committed payment survives a power cut.
  return db.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;");
}

Status check_creator(const LedgerContents& contents, const Identity& coordinator, const std::string& name) {
  if (contents.coordinator == coordinator.public_key()) return Status();
  return Status::failed_precondition("ledger " + name + " was created by coordinator " +
                                     to_hex(contents.coordinator) + ", not by this key " +
                                     to_hex(coordinator.public_key()));
}

}  // namespace

Result<std::unique_ptr<Ledger>> Ledger::open(const std::filesystem::path& path, const Identity& coordinator) {
  const std::string name = path.string();
  // Taken before the file is opened: a second writer would fork the chain.
  COHORT_ASSIGN_OR_RETURN(FileLock lock, FileLock::acquire(path.string() + ".lock", "the ledger " + name));
  COHORT_ASSIGN_OR_RETURN(auto db, sqlite::Database::open(path, /*read_only=*/false));
  std::unique_ptr<Impl> impl(new Impl{std::move(lock), coordinator, std::move(db), name, {}, {}});
  Status setup = configure(*impl->db);
  if (setup.ok()) setup = ledger::create_schema(*impl->db);
  if (!setup.ok()) return setup.with_context("ledger " + name);
  COHORT_ASSIGN_OR_RETURN(bool empty, ledger::chain_is_empty(*impl->db));
  if (empty) {
    COHORT_RETURN_IF_ERROR(impl->append(ledger::GenesisEntry{coordinator.public_key()}));
  } else {
    Result<ledger::Verified> verified = ledger::verify_database(*impl->db, std::nullopt);
    if (!verified.ok()) return verified.status().with_context("ledger " + name);
    impl->contents = std::move(verified->contents);
    COHORT_RETURN_IF_ERROR(check_creator(impl->contents, coordinator, name));
  }
  return std::unique_ptr<Ledger>(new Ledger(std::move(impl)));
}

Ledger::Ledger(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Ledger::~Ledger() = default;

Result<Account> Ledger::account(const PublicKey& worker) const {
  auto it = impl_->contents.accounts.find(worker);
  if (it == impl_->contents.accounts.end()) return Status::not_found("no account " + to_hex(worker));
  return it->second;
}

std::vector<Account> Ledger::accounts() const {
  std::vector<Account> out;
  for (const auto& [key, account] : impl_->contents.accounts) out.push_back(account);
  return out;
}

Status Ledger::deposit(const PublicKey& worker, Amount amount, std::string_view memo) {
  return impl_->append(ledger::DepositEntry{worker, amount, std::string(memo)});
}

Status Ledger::ensure_account(const PublicKey& worker) {
  if (impl_->contents.accounts.contains(worker)) return Status();
  return impl_->append(ledger::AccountEntry{worker});
}

Status Ledger::record_submission(const Submission& submission) {
  auto it = impl_->contents.submissions.find(submission.task_id);
  if (it != impl_->contents.submissions.end() && it->second.submission == submission) return Status();
  return impl_->append(ledger::SubmissionEntry{submission});
}

Status Ledger::record_incident(const PublicKey& worker, uint32_t round, uint64_t task_id, std::string_view kind,
                               std::string_view detail) {
  return impl_->append(ledger::IncidentEntry{worker, round, task_id, std::string(kind), std::string(detail)});
}

Status Ledger::set_verdict(uint64_t task_id, Verdict verdict, std::string_view reason) {
  return impl_->append(ledger::VerdictEntry{task_id, verdict, std::string(reason)});
}

Result<Amount> Ledger::slash(const PublicKey& worker, uint64_t task_id, double fraction, bool ban,
                             std::string_view reason) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    return Status::invalid_argument("slash fraction " + std::to_string(fraction) + " is not in [0, 1]");
  }
  COHORT_ASSIGN_OR_RETURN(Account account, this->account(worker));
  const Amount amount = ledger::slash_amount(account.stake, fraction);
  COHORT_RETURN_IF_ERROR(impl_->append(ledger::SlashEntry{worker, task_id, amount, ban, std::string(reason)}));
  return amount;
}

Result<std::vector<Receipt>> Ledger::close_round(uint32_t round, Amount budget) {
  if (!impl_->contents.rounds.contains(round)) {
    COHORT_ASSIGN_OR_RETURN(ledger::RoundEntry entry, ledger::settle_round(impl_->contents, round, budget));
    COHORT_RETURN_IF_ERROR(impl_->append(entry));
  }
  return impl_->round_receipts(round);
}

std::vector<Receipt> Ledger::receipts(const PublicKey& worker) const {
  std::vector<Receipt> out;
  for (const auto& [task_id, receipt] : impl_->contents.receipts) {
    if (receipt.worker == worker) out.push_back(receipt);
  }
  return out;
}

std::vector<SubmissionRecord> Ledger::submissions(uint32_t round) const {
  std::vector<SubmissionRecord> out;
  for (const auto& [task_id, record] : impl_->contents.submissions) {
    if (record.submission.round == round) out.push_back(record);
  }
  return out;
}

std::vector<uint32_t> Ledger::open_rounds() const {
  std::set<uint32_t> open;
  for (const auto& [task_id, record] : impl_->contents.submissions) {
    if (!impl_->contents.rounds.contains(record.submission.round)) open.insert(record.submission.round);
  }
  return {open.begin(), open.end()};
}

std::vector<uint32_t> Ledger::closed_rounds() const {
  std::vector<uint32_t> closed;
  for (const auto& [round, _] : impl_->contents.rounds) closed.push_back(round);
  return closed;
}

Digest Ledger::head() const { return impl_->contents.head; }
uint64_t Ledger::head_seq() const { return impl_->contents.head_seq; }

}  // namespace cohort
