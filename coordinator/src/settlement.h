// Where a job's money is kept (docs/LEDGER.md, docs/OPERATIONS.md "Crash
// safety"): every ledger call the coordinator makes, behind one interface,
// so that the round's code never asks whether there is a ledger.
//
// With proof of learning on, the ledger-backed Settlement records each
// submission, verdict, slash and incident as it happens and pays a round
// only once its checkpoint is written (the round's commit point). Without
// it, no_settlement() records and pays nothing: every call succeeds and does
// nothing, refuses nobody and returns no receipts.
//
// A write that fails does not fail the call that made it: the first
// failure is kept, logged, and returned by fatal(), and the coordinator
// stops the job at the end of its current step. Not thread-safe: the
// coordinator's thread owns it. Private to the coordinator library.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/crypto.h"
#include "cohort/ledger.h"
#include "cohort/log.h"
#include "cohort/receipt.h"
#include "cohort/status.h"

namespace cohort {

// The verdict (passed or unaudited) of each task a round aggregated, by
// task id: what its checkpoint records and its close pays.
using AggregatedWork = std::vector<std::pair<uint64_t, Verdict>>;

// Why a round's open tasks are voided when the coordinator `how` ("stopped",
// "restarted") before `round` was checkpointed: the round runs again.
std::string interrupted_reason(uint32_t round, std::string_view how);

class Settlement {
 public:
  virtual ~Settlement() = default;

  // Whether work is paid here, and signed fraud (a NaN update, two
  // commitments for one task) therefore slashed.
  virtual bool pays() const = 0;

  // A fresh job: submissions a crash left pending in an earlier attempt at
  // this job are voided.
  virtual Status start_afresh() = 0;
  // A restart from the checkpoint of `round`, which aggregated `aggregated`:
  // refuses a ledger that disagrees with it (FailedPrecondition naming the
  // first difference), voids what later rounds left pending, and settles
  // `round` (idempotently: a second restart changes nothing). Returns the
  // round's receipts.
  virtual Result<std::vector<Receipt>> recover(uint32_t round, const AggregatedWork& aggregated) = 0;

  // Why `worker` may not work in this job (banned, too little stake), if
  // so. A new account is created, with the job's registration grant.
  virtual std::optional<std::string> refusal(const PublicKey& worker) = 0;
  // The worker's latest receipts (at most kMaxWelcomeReceipts), for its Welcome.
  virtual std::vector<Receipt> latest_receipts(const PublicKey& worker) const = 0;

  // One more than the highest attempt at `round` recorded (0 for a round
  // never started). ResourceExhausted past the attempts a task id holds.
  virtual Result<uint32_t> next_attempt(uint32_t round) const = 0;

  // A task's signed update arrived: its submission is recorded, pending.
  virtual void submitted(const Submission& submission) = 0;
  // Whether `task_id` was submitted here: its verdict is then settled.
  virtual bool recorded(uint64_t task_id) const = 0;
  // The verdict of a recorded task that will not be aggregated (rejected,
  // voided, failed), with the reason. Tasks never recorded are ignored.
  virtual void closed(uint64_t task_id, Verdict verdict, std::string_view reason) = 0;
  // Slashes `worker`'s stake and bans its key for `task_id`, a failed
  // audit (closed() with kFailed first) or a proven fraud (incident() first).
  virtual void slash(const PublicKey& worker, uint64_t task_id, std::string_view reason) = 0;
  // Records a bad signature, a replay, an equivocation: nothing paid or taken.
  virtual void incident(const PublicKey& worker, uint32_t round, uint64_t task_id, std::string_view kind,
                        std::string_view detail) = 0;

  // The round's close, after its checkpoint: the aggregated tasks get their
  // verdicts, and the round's budget is paid over them. Returns one receipt
  // per submission of the round.
  virtual Result<std::vector<Receipt>> settle(uint32_t round, const AggregatedWork& aggregated) = 0;

  // The first write that failed; OK while none has.
  virtual Status fatal() const = 0;
};

// Records and pays nothing (a job without proof of learning).
std::unique_ptr<Settlement> no_settlement();

struct LedgerSettlementOptions {
  std::filesystem::path path;        // the ledger file
  // The ledger is the job's own (<output_dir>/ledger.db, the default): a
  // fresh job may set an earlier run's aside and begin a new one there. A
  // ledger configured elsewhere may hold stakes other jobs rely on.
  bool own_ledger = true;
  bool fresh = false;                // the job starts afresh at round 1
  std::filesystem::path checkpoint;  // named in messages about disagreement
  Amount reward_per_round = 0;
  Amount min_stake = 0;
  Amount registration_grant = 0;
  double slash_fraction = 1.0;
};

// Settles in `ledger`, the ledger at options.path (open_job_ledger). For a
// fresh job over a ledger that closed rounds of an earlier run: the job's
// own ledger is closed and kept whole as <stem>-until-<unix ms>.db and a
// new one begins at options.path; another is refused (FailedPrecondition
// naming the rounds). `coordinator` signs the ledger and must outlive the
// Settlement, as must `log`.
Result<std::unique_ptr<Settlement>> ledger_settlement(const LedgerSettlementOptions& options,
                                                      std::unique_ptr<Ledger> ledger, const Identity& coordinator,
                                                      Logger& log);

}  // namespace cohort
