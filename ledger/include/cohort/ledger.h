// The payout ledger (docs/LEDGER.md): stake, submissions, verdicts,
// rewards, slashes and incidents in one SQLite file (WAL mode,
// synchronous=FULL).
//
// Every change is an entry appended to a hash chain; the tables are what
// replaying the chain gives. Each mutating call is one transaction that
// appends one entry and a head signed by the coordinator, so the whole chain
// is always signed; a closed round's head is marked with its round. Each
// settled task gets a coordinator-signed Receipt (cohort/receipt.h).
// verify_ledger() checks all of it and names the first problem.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/crypto.h"
#include "cohort/receipt.h"
#include "cohort/status.h"

namespace cohort {

// Amounts (parse_amount, format_amount) are in cohort/amount.h, verdicts and
// receipts in cohort/receipt.h; both come with this header.

struct Account {
  PublicKey key{};
  Amount stake = 0;
  Amount balance = 0;      // rewards earned
  int64_t reputation = 0;  // +1 per paid task
  bool banned = false;
  std::string ban_reason;
  bool operator==(const Account&) const = default;
};

struct Submission {
  uint32_t round = 0;
  uint64_t task_id = 0;
  PublicKey worker{};
  Digest commitment_root{};
  Digest update_hash{};
  uint64_t samples = 0;
  bool operator==(const Submission&) const = default;
};

// The rows of the ledger's tables, as read back (read_ledger) or replayed.
struct SubmissionRecord {
  Submission submission;
  Verdict verdict = Verdict::kPending;
  std::string reason;
  bool operator==(const SubmissionRecord&) const = default;
};
struct RewardRecord {
  uint64_t task_id = 0;
  uint32_t round = 0;
  PublicKey worker{};
  Amount amount = 0;
  bool operator==(const RewardRecord&) const = default;
};
struct SlashRecord {  // keyed by the chain entry that made it
  uint64_t seq = 0;
  PublicKey worker{};
  uint64_t task_id = 0;
  Amount amount = 0;
  bool ban = false;
  std::string reason;
  bool operator==(const SlashRecord&) const = default;
};
struct IncidentRecord {  // keyed by the chain entry that made it
  uint64_t seq = 0;
  PublicKey worker{};
  uint32_t round = 0;
  uint64_t task_id = 0;
  std::string kind;  // "bad-signature", "replay", "equivocation", ...
  std::string detail;
  bool operator==(const IncidentRecord&) const = default;
};
struct DepositRecord {  // keyed by the chain entry that made it
  uint64_t seq = 0;
  PublicKey worker{};
  Amount amount = 0;
  std::string memo;
  bool operator==(const DepositRecord&) const = default;
};
struct RoundRecord {  // a closed round
  uint32_t round = 0;
  Amount budget = 0;
  Amount paid = 0;
  Amount unassigned = 0;  // budget - paid: the integer split's remainder, not paid
  uint64_t head_seq = 0;  // the round's signed head (its "round" entry)
  bool operator==(const RoundRecord&) const = default;
};

// Everything in a ledger, each table keyed by its primary key.
struct LedgerContents {
  PublicKey coordinator{};
  uint64_t head_seq = 0;
  Digest head{};
  std::map<PublicKey, Account> accounts;
  std::map<uint64_t, SubmissionRecord> submissions;  // by task id
  std::map<uint64_t, RewardRecord> rewards;          // by task id
  std::map<uint64_t, SlashRecord> slashes;           // by entry seq
  std::map<uint64_t, IncidentRecord> incidents;      // by entry seq
  std::map<uint64_t, DepositRecord> deposits;        // by entry seq
  std::map<uint32_t, RoundRecord> rounds;            // by round
  std::map<uint64_t, Receipt> receipts;              // by task id
};

// The ledger a coordinator writes. A resource type: not copyable, not
// thread-safe (one owner thread), and one Ledger per file at a time: open()
// takes an exclusive lock on <path>.lock (cohort/file_lock.h) for the
// Ledger's lifetime, so a second writer in any process (a second
// coordinator, `cohort ledger deposit` during a job) is refused instead of
// forking the chain. It keeps the
// rows in memory and answers the const calls from there. Every mutating call
// is atomic: on a refusal nothing is written and the ledger is unchanged; if
// writing the file fails, that call and every later one return the error
// (reopen to continue from what the file holds).
class Ledger {
 public:
  // Opens or creates the ledger at `path` and checks it as verify_ledger
  // does (Corruption naming the first problem). A new ledger's genesis entry
  // records `coordinator`'s public key; an existing ledger must have been
  // created by the same key (FailedPrecondition naming both keys).
  // `coordinator` is borrowed and must outlive the Ledger. IoError when the
  // file cannot be opened or written; FailedPrecondition "the ledger <path>
  // is in use by process <pid> ..." while another Ledger holds it.
  static Result<std::unique_ptr<Ledger>> open(const std::filesystem::path& path,
                                              const Identity& coordinator);
  ~Ledger();
  Ledger(const Ledger&) = delete;
  Ledger& operator=(const Ledger&) = delete;

  // NotFound for an unknown key.
  Result<Account> account(const PublicKey& worker) const;
  std::vector<Account> accounts() const;  // ordered by key

  // Credits stake (creating the account). InvalidArgument unless amount > 0
  // or when the stake would overflow.
  Status deposit(const PublicKey& worker, Amount amount, std::string_view memo);
  // Creates the account with zero stake if missing; appends an entry only
  // when it creates one.
  Status ensure_account(const PublicKey& worker);

  // Records a committed submission, verdict pending, creating the worker's
  // account if missing. Recording an identical submission again is a no-op;
  // a different one for the same task id is FailedPrecondition ("task N
  // already has a submission"), as is one for a closed round.
  Status record_submission(const Submission& submission);
  // Records a bad signature, a replay, an equivocation...: nothing is paid
  // or taken. `worker` needs no account. InvalidArgument for an empty kind.
  Status record_incident(const PublicKey& worker, uint32_t round, uint64_t task_id,
                         std::string_view kind, std::string_view detail);
  // pending -> any other verdict. FailedPrecondition for an unknown task or
  // one not pending; InvalidArgument for kPending.
  Status set_verdict(uint64_t task_id, Verdict verdict, std::string_view reason);

  // stake -= floor(stake * fraction), fraction in [0, 1] (InvalidArgument
  // otherwise); records a slash tied to task_id; bans the key when `ban`.
  // Returns the amount slashed. Only for a failed audit or a proven
  // equivocation: FailedPrecondition unless task_id is this worker's
  // submission with verdict failed, or (no submission of task_id) an incident
  // was recorded for this worker and task. NotFound for an unknown account.
  Result<Amount> slash(const PublicKey& worker, uint64_t task_id, double fraction, bool ban,
                       std::string_view reason);

  // Settles a round. FailedPrecondition if any of its submissions is still
  // pending; InvalidArgument for a negative budget. Splits `budget` over the
  // round's submissions with verdict passed or unaudited in proportion to
  // their samples (floor of budget * samples / total; the remainder is not
  // paid and is recorded), credits balances, reputation +1 per paid task,
  // and returns one signed receipt per submission of the round, by task id
  // (failed, rejected and voided ones with reward 0 and the stake slashed
  // for the task). Closing a closed round changes nothing and returns its
  // stored receipts (`budget` is then ignored).
  Result<std::vector<Receipt>> close_round(uint32_t round, Amount budget);
  // The worker's receipts, by task id.
  std::vector<Receipt> receipts(const PublicKey& worker) const;
  // The round's submissions, by task id.
  std::vector<SubmissionRecord> submissions(uint32_t round) const;
  // Rounds that have submissions and are not closed, ascending.
  std::vector<uint32_t> open_rounds() const;
  // Closed rounds, ascending.
  std::vector<uint32_t> closed_rounds() const;

  Digest head() const;
  uint64_t head_seq() const;

 private:
  struct Impl;
  explicit Ledger(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct LedgerReport {
  uint64_t entries = 0;
  uint32_t rounds_closed = 0;
  uint64_t receipts = 0;
  uint64_t accounts = 0;
  PublicKey coordinator{};
  Digest head{};
};

// Checks the ledger at `path` without changing it: the hash chain, every
// head's and receipt's signature, that the last entry is signed, that each
// closed round has its signed head, and that every table equals what
// replaying the chain gives. Corruption naming the first problem ("entry 7:
// ...", "table accounts, row <key>: ..."); also when the ledger was made by
// another key than `expected_coordinator`. NotFound for a missing file.
Result<LedgerReport> verify_ledger(const std::filesystem::path& path,
                                   const std::optional<PublicKey>& expected_coordinator = std::nullopt);

// The tables as stored, unverified (run verify_ledger for that). Read-only.
// NotFound for a missing file, Corruption for a file that is not a ledger.
Result<LedgerContents> read_ledger(const std::filesystem::path& path);

}  // namespace cohort
