#include "rules.h"

#include <cmath>

namespace cohort::ledger {
namespace {

bool is_paid(Verdict verdict) { return verdict == Verdict::kPassed || verdict == Verdict::kUnaudited; }

Account& account_of(LedgerContents& c, const PublicKey& key, Changes& changes) {
  Account& account = c.accounts[key];
  account.key = key;
  changes.accounts.insert(key);
  return account;
}

Status apply_genesis(LedgerContents& c, uint64_t seq, const GenesisEntry& e) {
  if (seq != 1) return Status::failed_precondition("a genesis entry must be entry 1");
  c.coordinator = e.coordinator;
  return Status();
}

Status apply_account(LedgerContents& c, const AccountEntry& e, Changes& changes) {
  if (c.accounts.contains(e.key)) return Status::failed_precondition("account " + to_hex(e.key) + " already exists");
  account_of(c, e.key, changes);
  return Status();
}

Status apply_deposit(LedgerContents& c, uint64_t seq, const DepositEntry& e, Changes& changes) {
  if (e.amount <= 0) return Status::invalid_argument("a deposit must be positive, got " + format_amount(e.amount));
  Amount stake = 0;
  auto it = c.accounts.find(e.worker);
  if (it != c.accounts.end() && __builtin_add_overflow(it->second.stake, e.amount, &stake)) {
    return Status::invalid_argument("the deposit would overflow the stake of " + to_hex(e.worker));
  }
  account_of(c, e.worker, changes).stake += e.amount;
  c.deposits[seq] = {seq, e.worker, e.amount, e.memo};
  changes.deposit = seq;
  return Status();
}

Status apply_submission(LedgerContents& c, const SubmissionEntry& e, Changes& changes) {
  const Submission& s = e.submission;
  if (c.rounds.contains(s.round)) return Status::failed_precondition("round " + std::to_string(s.round) + " is closed");
  if (c.submissions.contains(s.task_id)) {
    return Status::failed_precondition("task " + std::to_string(s.task_id) + " already has a submission");
  }
  account_of(c, s.worker, changes);
  c.submissions[s.task_id] = {s, Verdict::kPending, ""};
  changes.submissions.push_back(s.task_id);
  return Status();
}

Status apply_incident(LedgerContents& c, uint64_t seq, const IncidentEntry& e, Changes& changes) {
  if (e.kind.empty()) return Status::invalid_argument("an incident needs a kind");
  c.incidents[seq] = {seq, e.worker, e.round, e.task_id, e.kind, e.detail};
  changes.incident = seq;
  return Status();
}

Status apply_verdict(LedgerContents& c, const VerdictEntry& e, Changes& changes) {
  if (e.verdict == Verdict::kPending) return Status::invalid_argument("a verdict cannot be set back to pending");
  auto it = c.submissions.find(e.task_id);
  const std::string task = "task " + std::to_string(e.task_id);
  if (it == c.submissions.end()) return Status::failed_precondition(task + " has no submission");
  if (it->second.verdict != Verdict::kPending) {
    return Status::failed_precondition(task + " already has verdict " + std::string(verdict_name(it->second.verdict)));
  }
  it->second.verdict = e.verdict;
  it->second.reason = e.reason;
  changes.submissions.push_back(e.task_id);
  return Status();
}

// A slash needs a failed audit of this worker's task, or (for a task that
// has no submission, e.g. a proven equivocation) a recorded incident.
Status check_slash_grounds(const LedgerContents& c, const SlashEntry& e) {
  const std::string task = "task " + std::to_string(e.task_id);
  auto it = c.submissions.find(e.task_id);
  if (it != c.submissions.end()) {
    const SubmissionRecord& r = it->second;
    if (r.submission.worker != e.worker) {
      return Status::failed_precondition(task + " is not " + to_hex(e.worker) + "'s submission");
    }
    if (r.verdict != Verdict::kFailed) {
      return Status::failed_precondition("cannot slash for " + task + ": its verdict is " +
                                         std::string(verdict_name(r.verdict)) + ", not failed");
    }
    return Status();
  }
  for (const auto& [seq, incident] : c.incidents) {
    if (incident.worker == e.worker && incident.task_id == e.task_id) return Status();
  }
  return Status::failed_precondition("cannot slash for " + task +
                                     ": no failed submission and no incident recorded for it");
}

Status apply_slash(LedgerContents& c, uint64_t seq, const SlashEntry& e, Changes& changes) {
  auto it = c.accounts.find(e.worker);
  if (it == c.accounts.end()) return Status::not_found("no account " + to_hex(e.worker));
  COHORT_RETURN_IF_ERROR(check_slash_grounds(c, e));
  Account& account = it->second;
  if (e.amount < 0 || e.amount > account.stake) {
    return Status::invalid_argument("slash of " + format_amount(e.amount) + " outside the stake " +
                                    format_amount(account.stake));
  }
  account.stake -= e.amount;
  if (e.ban) {
    account.banned = true;
    account.ban_reason = e.reason;
  }
  changes.accounts.insert(e.worker);
  c.slashes[seq] = {seq, e.worker, e.task_id, e.amount, e.ban, e.reason};
  changes.slash = seq;
  return Status();
}

Amount slashed_for(const LedgerContents& c, const PublicKey& worker, uint64_t task_id) {
  Amount total = 0;
  for (const auto& [seq, slash] : c.slashes) {
    if (slash.worker == worker && slash.task_id == task_id) total += slash.amount;
  }
  return total;
}

// Credits the round's rewards (all or nothing: no balance may overflow).
// Returns the reward per task.
Result<std::map<uint64_t, Amount>> pay(LedgerContents& c, const RoundEntry& e, Changes& changes) {
  std::map<PublicKey, Amount> credit;  // per worker; the sum is at most the budget
  for (const Payment& p : e.rewards) credit[p.worker] += p.amount;
  for (const auto& [worker, amount] : credit) {
    Amount balance = 0;
    if (__builtin_add_overflow(c.accounts.at(worker).balance, amount, &balance)) {
      return Status::failed_precondition("the rewards would overflow the balance of " + to_hex(worker));
    }
  }
  std::map<uint64_t, Amount> paid;
  for (const Payment& p : e.rewards) {
    Account& account = account_of(c, p.worker, changes);
    account.balance += p.amount;
    account.reputation += 1;
    c.rewards[p.task_id] = {p.task_id, e.round, p.worker, p.amount};
    changes.rewards.push_back(p.task_id);
    paid[p.task_id] = p.amount;
  }
  return paid;
}

// One unsigned receipt per submission of the round, issued at entry `seq`.
void issue_receipts(LedgerContents& c, uint32_t round, uint64_t seq, const Digest& hash,
                    const std::map<uint64_t, Amount>& paid, Changes& changes) {
  for (const auto& [task_id, record] : c.submissions) {
    const Submission& s = record.submission;
    if (s.round != round) continue;
    auto reward = paid.find(task_id);
    c.receipts[task_id] = Receipt{.round = round,
                                  .task_id = task_id,
                                  .worker = s.worker,
                                  .update_hash = s.update_hash,
                                  .verdict = record.verdict,
                                  .reason = record.reason,
                                  .reward = reward == paid.end() ? 0 : reward->second,
                                  .slashed = slashed_for(c, s.worker, task_id),
                                  .chain_seq = seq,
                                  .chain_hash = hash,
                                  .coordinator = c.coordinator,
                                  .signature = {}};
    changes.receipts.push_back(task_id);
  }
}

Status apply_round(LedgerContents& c, uint64_t seq, const Digest& hash, const RoundEntry& e, Changes& changes) {
  COHORT_ASSIGN_OR_RETURN(RoundEntry expected, settle_round(c, e.round, e.budget));
  if (expected.rewards != e.rewards || expected.unassigned != e.unassigned) {
    return Status::invalid_argument("the rewards are not the split of the budget by samples");
  }
  COHORT_ASSIGN_OR_RETURN(auto paid, pay(c, e, changes));
  issue_receipts(c, e.round, seq, hash, paid, changes);
  c.rounds[e.round] = {e.round, e.budget, e.budget - e.unassigned, e.unassigned, seq};
  changes.round = e.round;
  return Status();
}

}  // namespace

Result<RoundEntry> settle_round(const LedgerContents& c, uint32_t round, Amount budget) {
  const std::string name = "round " + std::to_string(round);
  if (budget < 0) return Status::invalid_argument(name + ": the budget must not be negative");
  if (c.rounds.contains(round)) return Status::failed_precondition(name + " is already closed");
  RoundEntry entry{round, budget, {}, budget};
  unsigned __int128 total = 0;
  for (const auto& [task_id, record] : c.submissions) {
    if (record.submission.round != round) continue;
    if (record.verdict == Verdict::kPending) {
      return Status::failed_precondition(name + ": task " + std::to_string(task_id) + " is still pending");
    }
    if (is_paid(record.verdict)) {
      entry.rewards.push_back({task_id, record.submission.worker, 0});
      total += record.submission.samples;
    }
  }
  if (total == 0) return entry;  // nothing processed: nothing to split
  for (Payment& p : entry.rewards) {
    // budget * samples < 2^63 * 2^64 fits 128 bits; the share is <= budget.
    const unsigned __int128 share =
        static_cast<unsigned __int128>(budget) * c.submissions.at(p.task_id).submission.samples / total;
    p.amount = static_cast<Amount>(share);
    entry.unassigned -= p.amount;
  }
  return entry;
}

Amount slash_amount(Amount stake, double fraction) {
  // long double holds every int64 exactly (64-bit mantissa on x86-64).
  const long double product = std::floor(static_cast<long double>(stake) * static_cast<long double>(fraction));
  return product >= static_cast<long double>(stake) ? stake : static_cast<Amount>(product);
}

Result<Changes> apply(LedgerContents& c, uint64_t seq, const Digest& hash, const EntryBody& body) {
  if (seq == 1 && !std::holds_alternative<GenesisEntry>(body)) {
    return Status::failed_precondition("entry 1 must be the genesis entry");
  }
  Changes changes;
  Status status = std::visit(
      [&](const auto& e) -> Status {
        using T = std::decay_t<decltype(e)>;
        if constexpr (std::is_same_v<T, GenesisEntry>) return apply_genesis(c, seq, e);
        else if constexpr (std::is_same_v<T, AccountEntry>) return apply_account(c, e, changes);
        else if constexpr (std::is_same_v<T, DepositEntry>) return apply_deposit(c, seq, e, changes);
        else if constexpr (std::is_same_v<T, SubmissionEntry>) return apply_submission(c, e, changes);
        else if constexpr (std::is_same_v<T, IncidentEntry>) return apply_incident(c, seq, e, changes);
        else if constexpr (std::is_same_v<T, VerdictEntry>) return apply_verdict(c, e, changes);
        else if constexpr (std::is_same_v<T, SlashEntry>) return apply_slash(c, seq, e, changes);
        else return apply_round(c, seq, hash, e, changes);
      },
      body);
  if (!status.ok()) return status;
  c.head_seq = seq;
  c.head = hash;
  return changes;
}

}  // namespace cohort::ledger
