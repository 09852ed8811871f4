#include "settlement.h"

#include <map>
#include <set>

#include "cohort/duration.h"
#include "cohort/protocol.h"
#include "task_id.h"

namespace cohort {

std::string interrupted_reason(uint32_t round, std::string_view how) {
  return "interrupted: the coordinator " + std::string(how) + " before round " + std::to_string(round) +
         " was checkpointed; the round runs again";
}

namespace {

class NoSettlement final : public Settlement {
 public:
  bool pays() const override { return false; }
  Status start_afresh() override { return Status(); }
  Result<std::vector<Receipt>> recover(uint32_t, const AggregatedWork&) override { return std::vector<Receipt>{}; }
  std::optional<std::string> refusal(const PublicKey&) override { return std::nullopt; }
  std::vector<Receipt> latest_receipts(const PublicKey&) const override { return {}; }
  Result<uint32_t> next_attempt(uint32_t) const override { return 0u; }
  void submitted(const Submission&) override {}
  bool recorded(uint64_t) const override { return false; }
  void closed(uint64_t, Verdict, std::string_view) override {}
  void slash(const PublicKey&, uint64_t, std::string_view) override {}
  void incident(const PublicKey&, uint32_t, uint64_t, std::string_view, std::string_view) override {}
  Result<std::vector<Receipt>> settle(uint32_t, const AggregatedWork&) override { return std::vector<Receipt>{}; }
  Status fatal() const override { return Status(); }
};

class LedgerSettlement final : public Settlement {
 public:
  LedgerSettlement(LedgerSettlementOptions options, std::unique_ptr<Ledger> ledger, Logger& log)
      : options_(std::move(options)), ledger_(std::move(ledger)), log_(log) {}

  bool pays() const override { return true; }

  Status start_afresh() override { return void_interrupted_rounds(0); }

  Result<std::vector<Receipt>> recover(uint32_t round, const AggregatedWork& aggregated) override {
    COHORT_RETURN_IF_ERROR(check_agreement(round, aggregated));
    COHORT_RETURN_IF_ERROR(void_interrupted_rounds(round));
    return settle(round, aggregated);
  }

  // A new account receives the configured registration grant.
  std::optional<std::string> refusal(const PublicKey& worker) override {
    Result<Account> account = ledger_->account(worker);
    if (!account.ok() && account.status().code() == Status::Code::kNotFound) {
      keep(ledger_->ensure_account(worker));
      if (options_.registration_grant > 0) {
        keep(ledger_->deposit(worker, options_.registration_grant, "registration grant"));
      }
      account = ledger_->account(worker);
    }
    if (!account.ok()) return "the ledger cannot be read: " + account.status().message();
    if (account->banned) return "this key is banned: " + account->ban_reason;
    if (account->stake < options_.min_stake) {
      return "stake " + format_amount(account->stake) + " is below the job's minimum of " +
             format_amount(options_.min_stake) + " tokens; the operator credits stake with `cohort ledger deposit`";
    }
    return std::nullopt;
  }

  // Any receipt a worker missed while it or the coordinator restarted
  // reaches it when it registers.
  std::vector<Receipt> latest_receipts(const PublicKey& worker) const override {
    std::vector<Receipt> receipts = ledger_->receipts(worker);  // by task id: oldest round first
    if (receipts.size() > kMaxWelcomeReceipts) {
      receipts.erase(receipts.begin(), receipts.end() - static_cast<std::ptrdiff_t>(kMaxWelcomeReceipts));
    }
    return receipts;
  }

  Result<uint32_t> next_attempt(uint32_t round) const override {
    uint32_t next = 0;
    for (const SubmissionRecord& record : ledger_->submissions(round)) {
      next = std::max(next, attempt_of_task(record.submission.task_id) + 1);
    }
    if (next > kMaxAttempt) {
      return Status::resource_exhausted("round " + std::to_string(round) + " was interrupted " + std::to_string(next) +
                                        " times");
    }
    return next;
  }

  void submitted(const Submission& submission) override {
    keep(ledger_->record_submission(submission));
    recorded_.insert(submission.task_id);
  }

  bool recorded(uint64_t task_id) const override { return recorded_.contains(task_id); }

  void closed(uint64_t task_id, Verdict verdict, std::string_view reason) override {
    if (recorded(task_id)) keep(ledger_->set_verdict(task_id, verdict, reason));
  }

  void slash(const PublicKey& worker, uint64_t task_id, std::string_view reason) override {
    keep(ledger_->slash(worker, task_id, options_.slash_fraction, /*ban=*/true, reason).status());
  }

  void incident(const PublicKey& worker, uint32_t round, uint64_t task_id, std::string_view kind,
                std::string_view detail) override {
    keep(ledger_->record_incident(worker, round, task_id, kind, detail));
  }

  // Idempotent, so that a restart between the checkpoint and the close
  // finishes the job and one after it changes nothing (close_round returns
  // the stored receipts).
  Result<std::vector<Receipt>> settle(uint32_t round, const AggregatedWork& aggregated) override {
    std::set<uint64_t> pending;
    for (const SubmissionRecord& record : ledger_->submissions(round)) {
      if (record.verdict == Verdict::kPending) pending.insert(record.submission.task_id);
    }
    for (const auto& [task_id, verdict] : aggregated) {
      if (pending.contains(task_id)) COHORT_RETURN_IF_ERROR(ledger_->set_verdict(task_id, verdict, ""));
    }
    return ledger_->close_round(round, options_.reward_per_round);
  }

  Status fatal() const override { return fatal_; }

 private:
  // A failed write stops the job at the end of the current step.
  void keep(Status status) {
    if (!status.ok() && fatal_.ok()) {
      fatal_ = status.with_context("ledger");
      log_.error(fatal_.to_string());
    }
  }

  // What a restart settles from the checkpoint must be what the ledger
  // holds: no round after the checkpoint's closed, and each task the
  // checkpoint aggregated either still pending or given the checkpoint's
  // verdict. Anything else means another process (or a restored backup)
  // wrote one of them: settling would pay the wrong work.
  Status check_agreement(uint32_t round, const AggregatedWork& aggregated) const {
    auto disagree = [&](const std::string& why) {
      return Status::failed_precondition("the ledger disagrees with " + options_.checkpoint.string() + " (round " +
                                         std::to_string(round) + "): " + why +
                                         "; restore the two together, or start afresh with another output directory");
    };
    const std::vector<uint32_t> closed = ledger_->closed_rounds();
    if (!closed.empty() && closed.back() > round) {
      return disagree("the ledger already closed round " + std::to_string(closed.back()));
    }
    std::map<uint64_t, SubmissionRecord> recorded;
    for (SubmissionRecord& record : ledger_->submissions(round)) recorded[record.submission.task_id] = std::move(record);
    for (const auto& [task_id, verdict] : aggregated) {
      auto it = recorded.find(task_id);
      if (it == recorded.end()) return disagree("task " + std::to_string(task_id) + " is not in the ledger");
      const Verdict held = it->second.verdict;
      if (held != Verdict::kPending && held != verdict) {
        return disagree("task " + std::to_string(task_id) + " was aggregated, but is " +
                        std::string(verdict_name(held)) + " in the ledger (" + it->second.reason + ")");
      }
    }
    return Status();
  }

  // Submissions still pending (accepted or in an audit) in rounds after the
  // checkpoint are voided, with the reason: their round runs again.
  Status void_interrupted_rounds(uint32_t checkpointed) {
    for (uint32_t round : ledger_->open_rounds()) {
      if (round < checkpointed) {
        return Status::failed_precondition("the ledger's round " + std::to_string(round) + " is still open but " +
                                           options_.checkpoint.string() + " is of round " +
                                           std::to_string(checkpointed) + ": they are not of the same run");
      }
      if (round == checkpointed) continue;  // settled from the checkpoint
      int voided = 0;
      for (const SubmissionRecord& record : ledger_->submissions(round)) {
        if (record.verdict != Verdict::kPending) continue;
        COHORT_RETURN_IF_ERROR(
            ledger_->set_verdict(record.submission.task_id, Verdict::kVoided, interrupted_reason(round, "restarted")));
        ++voided;
      }
      if (voided > 0) {
        log_.warn("round " + std::to_string(round) + " was interrupted: " + std::to_string(voided) +
                  " pending submission(s) voided in the ledger");
      }
    }
    return Status();
  }

  LedgerSettlementOptions options_;
  std::unique_ptr<Ledger> ledger_;
  Logger& log_;
  std::set<uint64_t> recorded_;  // task ids submitted in this process
  Status fatal_;
};

std::string rounds_text(const std::vector<uint32_t>& rounds) {
  return rounds.size() == 1 ? "round " + std::to_string(rounds.front())
                            : "rounds " + std::to_string(rounds.front()) + "-" + std::to_string(rounds.back());
}

// A job numbers its rounds from 1 and a ledger holds each round once, so a
// fresh job cannot go on in a ledger that closed rounds of an earlier run.
// The job's own ledger (whose checkpoint and metrics a fresh start
// overwrites too) is kept whole under a new name, still verifiable, and a
// new one begins; a ledger configured elsewhere is refused.
Result<std::unique_ptr<Ledger>> set_earlier_ledger_aside(std::unique_ptr<Ledger> ledger,
                                                         const LedgerSettlementOptions& options,
                                                         const Identity& coordinator, Logger& log) {
  const std::filesystem::path& path = options.path;
  const std::string rounds = rounds_text(ledger->closed_rounds());
  if (!options.own_ledger) {
    return Status::failed_precondition("the ledger " + path.string() + " already closed " + rounds +
                                       " of an earlier job, and this job starts afresh at round 1: give it a ledger "
                                       "of its own ([ledger] path), or resume the earlier job");
  }
  ledger.reset();  // closing folds the WAL back into the file
  const std::filesystem::path kept = path.parent_path() / (path.stem().string() + "-until-" +
                                                           std::to_string(unix_ms_deadline(0)) + path.extension().string());
  std::error_code error;
  std::filesystem::rename(path, kept, error);
  if (error) return Status::io_error("cannot set the earlier ledger " + path.string() + " aside: " + error.message());
  log.warn("starting afresh: the earlier run's ledger (" + rounds + ") is kept as " + kept.string() +
           " (`cohort ledger verify` still checks it); this job starts a new one");
  return Ledger::open(path, coordinator);
}

}  // namespace

std::unique_ptr<Settlement> no_settlement() { return std::make_unique<NoSettlement>(); }

Result<std::unique_ptr<Settlement>> ledger_settlement(const LedgerSettlementOptions& options,
                                                      std::unique_ptr<Ledger> ledger, const Identity& coordinator,
                                                      Logger& log) {
  if (ledger == nullptr) return Status::invalid_argument("no ledger to settle in");
  if (options.fresh && !ledger->closed_rounds().empty()) {
    COHORT_ASSIGN_OR_RETURN(ledger, set_earlier_ledger_aside(std::move(ledger), options, coordinator, log));
  }
  return std::unique_ptr<Settlement>(new LedgerSettlement(options, std::move(ledger), log));
}

}  // namespace cohort
