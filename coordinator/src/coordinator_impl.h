// Coordinator::Impl, the coordinator's state and steps, declared once and
// defined in four files by what they do:
//   coordinator.cpp           the job and its rounds: init, run, run_round
//                             (announce -> collect -> aggregate -> evaluate ->
//                             checkpoint -> settle -> report)
//   coordinator_start.cpp     starting: policy, published key, ledger,
//                             resume and recovery
//   coordinator_collect.cpp   collecting a round: registrations, deadlines,
//                             audits, closing tasks
//   coordinator_messages.cpp  one message: admission, checks and handlers
// The seams it works through: Channel (the peers, channel.h), TaskTable
// (task stages), Settlement (the ledger), RoundPolicy (selection and
// aggregation), Auditor (re-execution).
// Private to the coordinator library.
#pragma once

#include <ATen/ATen.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "auditor.h"
#include "cohort/channel.h"
#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "cohort/file_lock.h"
#include "cohort/log_throttle.h"
#include "cohort/models.h"
#include "cohort/protocol.h"
#include "cohort/round_policy.h"
#include "rate_limiter.h"
#include "round_state.h"
#include "settlement.h"
#include "worker_registry.h"

namespace cohort {

// Adds a settled round's receipts to its metrics: paid, slashed, audits.
inline void add_settlement(const std::vector<Receipt>& receipts, RoundMetrics& metrics) {
  for (const Receipt& receipt : receipts) {
    metrics.paid += receipt.reward;
    metrics.slashed += receipt.slashed;
    if (receipt.verdict == Verdict::kPassed || receipt.verdict == Verdict::kFailed) ++metrics.audited;
    if (receipt.verdict == Verdict::kFailed) ++metrics.audits_failed;
  }
}

class Coordinator::Impl {
 public:
  Impl(JobConfig config, CoordinatorParts parts, Logger& log)
      : config_(std::move(config)),
        log_(log),
        job_lock_(std::move(parts.job_lock)),
        clock_(std::move(parts.clock)),
        identity_(std::move(parts.identity)),
        ledger_(std::move(parts.ledger)),
        channel_(std::move(parts.channel)),
        rate_limiter_(config_.network.messages_per_second, config_.network.message_burst) {}

  Status init(const RuleRegistry& rules, StartMode mode);

  const PublicKey& public_key() const { return identity_->public_key(); }

  std::string endpoint() const { return channel_->endpoint(); }

  Result<JobSummary> run(const RoundCallback& on_round, std::stop_token stop);

 private:
  // Reads and checks the job's model (model.path: the archive runs on a
  // batch of the test set) and builds the evaluation copy.
  Status init_model();
  Status init_policy(const RuleRegistry& rules);

  std::filesystem::path checkpoint_path() const { return config_.job.output_dir / "model.ckpt"; }
  std::filesystem::path metrics_path() const { return config_.job.output_dir / "metrics.jsonl"; }

  bool proof_on() const { return config_.proof.segment_steps > 0; }

  Result<Checkpoint> resume_from_checkpoint();

  // ------------------------------------------------------------ recovery
  // docs/OPERATIONS.md, "Crash safety": the checkpoint is a round's commit
  // point. Rounds up to it are settled in the ledger as it records; the
  // ledger's later rounds were interrupted and run again.

  // A new job: its metrics start empty; ledger submissions a crash left
  // pending in an earlier attempt at this job are voided.
  Status start_afresh();

  Status recover(const Checkpoint& checkpoint);

  // metrics.jsonl keeps one line per checkpointed round: a torn last line
  // and lines of later rounds are dropped, and the checkpoint's own line is
  // written from the checkpoint when a crash came before it.
  Status complete_metrics(const Checkpoint& checkpoint, const std::vector<Receipt>& receipts);

  // Workers must know the coordinator's key before they connect: its
  // public half is published in the output directory.
  Status publish_identity();

  Status init_audits_and_ledger(bool fresh);

  // ------------------------------------------------------------ registration

  Status wait_for_workers();

  void register_worker(const std::string& routing_id, const Hello& hello, RoundState* state);

  // A worker that registers again while its task of this round still waits
  // for an update restarted or lost its connection: the update, if it ever
  // comes, cannot be matched to the new connection. Closing the task now
  // spares the round its deadline.
  void close_abandoned_training(const std::string& routing_id, const PublicKey& worker, RoundState& state);

  // A worker that registers again while one of its audits waits for a reveal
  // gets the challenge again on its new connection: the first may have been
  // lost with its old one. Its reveal deadline stays as it was.
  void repeat_challenges(const std::string& routing_id, const PublicKey& worker, RoundState& state);

  // ------------------------------------------------------------ one round

  // The round's metrics, or nullopt when a stop abandoned it.
  Result<std::optional<RoundMetrics>> run_round(uint32_t round);

  // The global model on the test set, or nullopt in a round data.eval_every
  // skips. The test set was checked against the model when the job
  // started, so an error here is a bug; it ends the job cleanly instead of
  // the process.
  Result<std::optional<Evaluation>> evaluate_global(uint32_t round);

  Checkpoint checkpoint_of(uint32_t round, const Digest& digest, const std::vector<const OpenTask*>& ready,
                           const RoundMetrics& metrics) const;

  // The ledger verdict of each aggregated task. Verdicts of aggregated work
  // are written only after the checkpoint, so that nothing is paid for a
  // round that may still run again.
  AggregatedWork settlement_of(const std::vector<const OpenTask*>& ready) const;

  // A stop during collection: the round runs again after a restart, so
  // every task not already closed is voided (an accepted update is not
  // aggregated, an audit is not finished).
  void abandon_round(RoundState& state);

  // The reachable workers the policy picks for `round`, in index order.
  std::vector<const WorkerEntry*> select_participants(uint32_t round);

  // Announces the round. When no worker can be reached any more (all left
  // or lost their connections since they registered), waits, as before the
  // first round, for round.min_workers to register (again) and retries.
  Status announce_to_reachable_workers(RoundState& state);

  // Sends the round's task to each selected worker that can be reached.
  Status announce(RoundState& state);

  // Until every task is settled (aggregated or closed) or the deadline
  // passed; then audits still waiting for a reveal wait up to their reveal
  // deadline, and running re-executions finish. A stop ends it at once.
  void collect(RoundState& state);

  // At the deadline: tasks without an update are closed, so that an update
  // arriving while audits finish is refused as late.
  void close_stragglers(RoundState& state);

  // How long to wait for the next message: until the round deadline or the
  // earliest reveal deadline, and briefly while re-executions run on other
  // threads (their results are polled).
  std::chrono::milliseconds poll_interval(const RoundState& state, SteadyClock::time_point deadline) const;
  // The wait until `deadline` on the lent clock, at most a tenth of a second.
  std::chrono::milliseconds until(SteadyClock::time_point deadline) const;

  void apply_audit_outcomes(RoundState& state);

  void fail_missing_reveals(RoundState& state);

  // A failed audit: the update is dropped, the stake slashed, the key banned.
  void fail_audit(OpenTask& task, const std::string& reason);

  // Accepted updates in worker order (the table's task id order), so that a
  // round's aggregate does not depend on arrival order.
  static std::vector<const OpenTask*> ready_tasks(const RoundState& state);

  // The policy's step from the accepted updates; a failed one (an error in
  // a rule, an attack or the root update, LibTorch's included) keeps the
  // previous model.
  bool aggregate(const RoundState& state, const std::vector<const OpenTask*>& ready, RoundMetrics& metrics);

  // Each participant gets its RoundResult (with its receipt); receipts of
  // the round's tasks from an interrupted attempt go to their worker too.
  void report_results(RoundState& state, const RoundMetrics& metrics, const Digest& digest,
                      const std::vector<Receipt>& receipts);

  // ------------------------------------------------------------ messages

  // Receives and handles at most one message. `state` is null outside rounds.
  void receive_one(std::chrono::milliseconds timeout, RoundState* state);

  void dispatch(const std::string& routing_id, Message& message, Frames payload,
                RoundState* state);

  // [network] messages_per_second: a message over the peer's rate is
  // dropped; the first of a streak is answered, the others only counted.
  bool admitted(const std::string& routing_id, RoundState* state);

  // Refuses, before anything else sees it, an update whose L2 norm is above
  // aggregation.max_update_norm (a finite update can still be absurd).
  Status check_norm(const at::Tensor& flat) const;

  // With CURVE, a Hello must name the key its connection authenticated
  // with, and a registered worker's messages must come over a connection
  // authenticated with its key. Returns why not, if so.
  std::optional<std::string> impersonation(const std::string& routing_id, const Message& message,
                                           const std::string& user_id) const;

  // The task of this round that was sent on connection `routing_id`, if any.
  static OpenTask* task_sent_on(RoundState& state, const std::string& routing_id);

  void handle_update(const std::string& routing_id, const Update& update,
                     Frames payload, RoundState* state);

  void record_submission(const RoundState& state, const OpenTask& task, const Update& update);

  // Checks the commitment, reveals the task's secret and, when the task is
  // audited, waits for the reveal; otherwise the update is ready.
  void challenge(const std::string& routing_id, RoundState& state, OpenTask& task);

  // The momentum a task names for leaf 0 (ProofSpec.start_momentum): with
  // training.keep_momentum, the one the worker's previous commitment ended
  // with (fresh for its first task); zero (not pinned) otherwise.
  Digest announced_momentum_of(const PublicKey& worker) const;

  // The leaf-0 momentum the commitment is checked against: the announced
  // one, or fresh from a worker that lost the announced buffers (a restart
  // with an empty state directory). Starting over cannot forge an update:
  // the re-execution starts from the committed leaf 0.
  static Digest accepted_start_momentum(const OpenTask& task, const UpdateCommitment& commitment);

  // The checks that need no payload decoding, cheapest first. Returns the
  // error to answer with, if any. A second update for a task that carries a
  // valid signature over a different commitment is equivocation: recorded
  // and slashed.
  std::optional<ErrorReply> check_update(const std::string& routing_id, const Update& update,
                                         RoundState* state);

  static bool equivocates(const OpenTask& task, const Update& update) {
    return task.commitment && update.commitment && task.commitment->root != update.commitment->root;
  }

  // The ledger slashes only for a failed verdict: an equivocation on a task
  // that is still open fails it; one on a task already closed (not paid) is
  // recorded as an incident only.
  void punish_equivocation(RoundState& state, OpenTask& task);


  void handle_reveal(const std::string& routing_id, const Reveal& reveal, Frames payload,
                     RoundState* state);

  Status queue_verification(OpenTask& task, const Reveal& reveal, Frames payload,
                            const at::Tensor& start);

  void handle_worker_error(const std::string& routing_id, const ErrorReply& error, RoundState* state);

  // Sends a registered worker the job's archive it asked for, at most
  // kMaxArchiveSends times per worker key while this process runs (not
  // checkpointed: a restart allows as many again): a worker fetches it once, and
  // again only after a transfer failed or its cache was lost, so that a
  // few bytes of request cannot make the coordinator send gigabytes.
  static constexpr int kMaxArchiveSends = 3;
  void send_model_archive(const std::string& routing_id, const ModelRequest& request, RoundState* state);

  // The task will not be aggregated. Its ledger submission, if any, gets
  // the verdict.
  void close_task(OpenTask& task, Verdict verdict, std::string outcome);
  void close_task(OpenTask& task, const TaskEvent& closing);  // closed or deadline_passed

  void reject(const std::string& routing_id, RoundState* state, ErrorReply error);

  std::optional<size_t> send_to(const std::string& routing_id, Message message,
                                Frames payload = {});

  void say_goodbye(const std::string& reason) {
    for (const WorkerEntry* worker : workers_.alive()) send_to(worker->routing_id, Bye{reason});
  }

  ReceiveLimits receive_limits() const;

  void log_round(const RoundMetrics& m);

  JobConfig config_;
  Logger& log_;
  // Garbage from many fresh keys (open registration) passes the per-peer
  // rate limit: its warnings are throttled instead.
  LogThrottle rejections_log_{20, std::chrono::seconds(10)};
  FileLock job_lock_;  // the output directory, taken by the caller first
  std::shared_ptr<const Clock> clock_;  // deadlines; phase timings read the steady clock itself
  // Signs tasks, challenges, receipts and the ledger; declared before what
  // borrows it.
  std::shared_ptr<const Identity> identity_;
  std::unique_ptr<Ledger> ledger_;  // [proof] only, until settlement_ takes it
  std::unique_ptr<Channel> channel_;
  RateLimiter rate_limiter_;  // [network] messages_per_second, per peer
  std::unique_ptr<RoundPolicy> policy_;  // selection and aggregation
  ModelSource model_source_;      // what the job trains (model.name or model.path)
  std::map<PublicKey, int> archive_sends_;  // by worker key, for the limit above
  std::unique_ptr<Model> model_;  // evaluation copy of the global model
  at::Tensor global_;             // the global model, flat float32 on CPU
  TensorDataset test_set_;
  WorkerRegistry workers_;
  LabeledImages train_split_;         // what audits re-execute on ([proof] only)
  std::unique_ptr<Auditor> auditor_;  // [proof] only
  std::unique_ptr<Settlement> settlement_ = no_settlement();  // the ledger, with [proof]
  int first_round_ = 1;               // > 1 when resuming
  JobSummary resumed_summary_;        // the checkpoint's round and evaluation, when resuming
  std::stop_token stop_;              // set by run()
  // The momentum digest each worker's last commitment ended with
  // (training.keep_momentum).
  std::map<PublicKey, Digest> carried_momentum_;
};

}  // namespace cohort
