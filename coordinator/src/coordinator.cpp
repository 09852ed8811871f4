#include "cohort/coordinator.h"

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "cohort/duration.h"
#include "cohort/durable_file.h"
#include "cohort/job_data.h"
#include "cohort/random.h"
#include "cohort/wire.h"
#include "coordinator_impl.h"
#include "task_id.h"

namespace cohort {
namespace {

// The accuracy and loss of a round that was not evaluated (data.eval_every):
// null in metrics.jsonl.
constexpr double kNotEvaluated = std::numeric_limits<double>::quiet_NaN();

double seconds_since(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

double thread_cpu_seconds() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// Times a round's phases in wall-clock seconds and in the calling thread's
// CPU seconds: elapsed() gives both since the start or the previous lap,
// lap() too and starts the next.
class PhaseClock {
 public:
  struct Lap {
    double wall = 0.0;
    double cpu = 0.0;
  };
  Lap elapsed() const { return since(SteadyClock::now(), thread_cpu_seconds()); }
  Lap lap() {
    const SteadyClock::time_point wall = SteadyClock::now();
    const double cpu = thread_cpu_seconds();
    const Lap out = since(wall, cpu);
    wall_ = wall;
    cpu_ = cpu;
    return out;
  }

 private:
  Lap since(SteadyClock::time_point wall, double cpu) const {
    return {std::chrono::duration<double>(wall - wall_).count(), cpu - cpu_};
  }

  SteadyClock::time_point wall_ = SteadyClock::now();
  double cpu_ = thread_cpu_seconds();
};

// Records a lap as one phase of `metrics`.
void record(PhaseClock::Lap lap, double PhaseSeconds::*phase, RoundMetrics& metrics) {
  metrics.seconds.*phase = lap.wall;
  metrics.cpu_seconds.*phase = lap.cpu;
}

}  // namespace

Status Coordinator::Impl::init(const RuleRegistry& rules, StartMode mode) {
  COHORT_ASSIGN_OR_RETURN(test_set_, load_test_set(config_));
  COHORT_RETURN_IF_ERROR(init_model());
  COHORT_RETURN_IF_ERROR(init_policy(rules));
  global_ = model_->flat_parameters();
  std::optional<Checkpoint> resumed;
  if (mode == StartMode::kResume ||
      (mode == StartMode::kAuto && std::filesystem::exists(checkpoint_path()))) {
    COHORT_ASSIGN_OR_RETURN(resumed, resume_from_checkpoint());
  }
  COHORT_RETURN_IF_ERROR(publish_identity());
  if (proof_on()) COHORT_RETURN_IF_ERROR(init_audits_and_ledger(/*fresh=*/!resumed));
  return resumed ? recover(*resumed) : start_afresh();
}

Result<JobSummary> Coordinator::Impl::run(const RoundCallback& on_round, std::stop_token stop) {
  stop_ = std::move(stop);
  JobSummary summary = resumed_summary_;
  summary.checkpoint = checkpoint_path();
  if (first_round_ > config_.job.rounds) {
    log_.info("the job is already complete: round " + std::to_string(config_.job.rounds) + " is checkpointed");
    return summary;
  }
  COHORT_RETURN_IF_ERROR(wait_for_workers());
  const auto start = SteadyClock::now();
  for (int r = first_round_; r <= config_.job.rounds && !stop_.stop_requested(); ++r) {
    // What escapes a round (a bug: expected failures are values) ends the
    // job with a named error instead of terminating the process; the
    // checkpoint and the ledger stay as the last commit left them.
    COHORT_ASSIGN_OR_RETURN(std::optional<RoundMetrics> metrics,
                            catching_exceptions("round " + std::to_string(r),
                                                [&] { return run_round(static_cast<uint32_t>(r)); }));
    if (!metrics) break;  // abandoned: a stop came during collection
    log_round(*metrics);
    if (on_round) on_round(*metrics);
    summary.rounds_completed = r;
    summary.test_accuracy = metrics->test_accuracy;
    summary.test_loss = metrics->test_loss;
  }
  summary.seconds = seconds_since(start);
  summary.stopped = summary.rounds_completed < config_.job.rounds;
  if (summary.stopped) {
    log_.warn("stopped after round " + std::to_string(summary.rounds_completed) +
              "; starting the coordinator again resumes the job");
  }
  rejections_log_.flush(log_);
  say_goodbye(summary.stopped ? "the coordinator stopped before the job finished; it resumes when restarted"
                              : "the job is complete");
  return summary;
}

Result<std::optional<RoundMetrics>> Coordinator::Impl::run_round(uint32_t round) {
  PhaseClock round_clock;
  PhaseClock clock;
  RoundMetrics metrics;
  metrics.round = round;
  RoundState state;
  state.round = round;

  COHORT_RETURN_IF_ERROR(announce_to_reachable_workers(state));
  if (stop_.stop_requested()) return std::optional<RoundMetrics>();
  record(clock.lap(), &PhaseSeconds::announce, metrics);

  collect(state);
  record(clock.lap(), &PhaseSeconds::collect, metrics);
  if (stop_.stop_requested()) abandon_round(state);
  COHORT_RETURN_IF_ERROR(settlement_->fatal());
  if (stop_.stop_requested()) return std::optional<RoundMetrics>();

  clock.lap();
  const std::vector<const OpenTask*> ready = ready_tasks(state);
  metrics.model_updated = aggregate(state, ready, metrics);
  record(clock.lap(), &PhaseSeconds::aggregate, metrics);

  COHORT_ASSIGN_OR_RETURN(const std::optional<Evaluation> eval, evaluate_global(round));
  record(clock.lap(), &PhaseSeconds::evaluate, metrics);
  metrics.test_accuracy = eval ? eval->accuracy : kNotEvaluated;
  metrics.test_loss = eval ? eval->loss : kNotEvaluated;
  metrics.participants = static_cast<int>(state.tasks.size());
  metrics.accepted = static_cast<int>(ready.size());
  metrics.rejected = state.rejected;
  metrics.limits_exceeded = state.limits_exceeded;
  for (const auto& [id, task] : state.tasks) {
    if (task.stage() == TaskStage::kClosed) metrics.not_aggregated.emplace_back(task.worker_index, task.outcome());
  }
  double loss_sum = 0.0;
  for (const OpenTask* task : ready) loss_sum += task->local_loss;
  metrics.mean_local_loss = ready.empty() ? 0.0 : loss_sum / static_cast<double>(ready.size());
  metrics.bytes_in = state.bytes_in;
  metrics.bytes_out = state.bytes_out;
  record(round_clock.elapsed(), &PhaseSeconds::total, metrics);

  // The commit point: from here on a restart settles this round instead
  // of running it again.
  clock.lap();
  Digest digest = digest_of(model_->layout(), global_);
  COHORT_RETURN_IF_ERROR(write_checkpoint(checkpoint_path(), checkpoint_of(round, digest, ready, metrics)));
  record(clock.lap(), &PhaseSeconds::checkpoint, metrics);

  COHORT_ASSIGN_OR_RETURN(const std::vector<Receipt> receipts, settlement_->settle(round, settlement_of(ready)));
  add_settlement(receipts, metrics);
  report_results(state, metrics, digest, receipts);
  metrics.bytes_in = state.bytes_in;
  metrics.bytes_out = state.bytes_out;
  record(round_clock.elapsed(), &PhaseSeconds::total, metrics);
  COHORT_RETURN_IF_ERROR(append_line_durably(metrics_path(), metrics.to_json()));
  return std::optional<RoundMetrics>(std::move(metrics));
}

Result<std::optional<Evaluation>> Coordinator::Impl::evaluate_global(uint32_t round) {
  const bool due = round % static_cast<uint32_t>(config_.data.eval_every) == 0 ||
                   round == static_cast<uint32_t>(config_.job.rounds);
  if (!due) return std::optional<Evaluation>();
  return catching_exceptions("evaluating round " + std::to_string(round), [&]() -> Result<std::optional<Evaluation>> {
    COHORT_RETURN_IF_ERROR(model_->set_flat_parameters(global_));
    return std::optional<Evaluation>(evaluate(*model_, test_set_, hyperparameters_of(config_.training).loss));
  });
}

Checkpoint Coordinator::Impl::checkpoint_of(uint32_t round, const Digest& digest,
                                            const std::vector<const OpenTask*>& ready,
                                            const RoundMetrics& metrics) const {
  PolicyState state = policy_->state();
  return Checkpoint{round,
                    config_.model.name,
                    model_->layout(),
                    global_,
                    digest,
                    state.previous_aggregate,
                    config_.job.name,
                    config_.job.seed,
                    workers_.keys_by_index(),
                    settlement_of(ready),
                    metrics.to_json(),
                    metrics.test_accuracy,
                    metrics.test_loss,
                    {carried_momentum_.begin(), carried_momentum_.end()},
                    config_.aggregation.server_optimizer,
                    std::move(state.server),
                    model_source_.archive_digest};
}

AggregatedWork Coordinator::Impl::settlement_of(const std::vector<const OpenTask*>& ready) const {
  AggregatedWork settlement;
  for (const OpenTask* task : ready) {
    if (settlement_->recorded(task->task.task_id)) {
      settlement.emplace_back(task->task.task_id, task->challenge.audited ? Verdict::kPassed : Verdict::kUnaudited);
    }
  }
  return settlement;
}

std::vector<const WorkerEntry*> Coordinator::Impl::select_participants(uint32_t round) {
  std::map<uint32_t, const WorkerEntry*> alive;
  for (const WorkerEntry* worker : workers_.alive()) alive[worker->index] = worker;
  std::vector<uint32_t> candidates;
  for (const auto& [index, worker] : alive) candidates.push_back(index);
  std::vector<const WorkerEntry*> chosen;
  for (uint32_t index : policy_->select(round, std::move(candidates))) chosen.push_back(alive.at(index));
  return chosen;
}

Status Coordinator::Impl::announce_to_reachable_workers(RoundState& state) {
  COHORT_RETURN_IF_ERROR(announce(state));
  while (state.tasks.empty() && !stop_.stop_requested()) {
    log_.warn("no worker could be sent a task of round " + std::to_string(state.round) +
              ": waiting for workers to register again");
    COHORT_RETURN_IF_ERROR(wait_for_workers());
    COHORT_RETURN_IF_ERROR(announce(state));
  }
  return Status();
}

Status Coordinator::Impl::announce(RoundState& state) {
  COHORT_ASSIGN_OR_RETURN(
      EncodedPayload payload,
      encode_payload(model_->layout(), global_, static_cast<size_t>(config_.network.chunk_bytes)));
  state.model_digest = payload.header().digest;
  state.start = global_.clone();
  Task task;
  task.round = state.round;
  task.model_name = config_.model.name;
  task.model_archive = model_source_.archive_digest;
  task.hyper = hyperparameters_of(config_.training);
  task.deadline_unix_ms = unix_ms_deadline(config_.round.deadline_seconds, clock_->wall());
  task.model = payload.header();
  if (proof_on()) task.proof.min_stake = config_.ledger.min_stake;
  COHORT_ASSIGN_OR_RETURN(PartitionScheme scheme, parse_partition_scheme(config_.data.partition));
  COHORT_ASSIGN_OR_RETURN(const uint32_t attempt, settlement_->next_attempt(state.round));
  for (const WorkerEntry* worker : select_participants(state.round)) {
    if (worker->index > kMaxWorkerIndex) {
      return Status::resource_exhausted("worker index " + std::to_string(worker->index) + " does not fit a task id");
    }
    task.task_id = task_id_of(state.round, attempt, worker->index);
    task.seed = Rng(config_.job.seed).fork(task_slot(state.round, worker->index)).next_u64();
    task.data = DataSelection{scheme,
                              static_cast<uint32_t>(workers_.size_for_partitioning()),
                              worker->index,
                              config_.data.alpha,
                              config_.data.gamma,
                              config_.job.seed};
    if (auditor_) {
      COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const TensorDataset> shard, auditor_->shard_for(task.data));
      auditor_->prepare(task, shard->size());
      task.proof.start_momentum = announced_momentum_of(worker->hello.worker_key);
    }
    task.signature = identity_->sign(task_signing_bytes(task, worker->hello.worker_key));
    auto sent = send_to(worker->routing_id, task, payload.chunks());
    if (!sent) continue;
    state.bytes_out += *sent;
    OpenTask open;
    open.task = task;
    open.worker_key = worker->hello.worker_key;
    open.worker_index = worker->index;
    open.routing_id = worker->routing_id;
    state.tasks.add(std::move(open));
  }
  return Status();
}

std::vector<const OpenTask*> Coordinator::Impl::ready_tasks(const RoundState& state) {
  std::vector<const OpenTask*> ready;
  for (const auto& [id, task] : state.tasks) {
    if (task.stage() == TaskStage::kReady) ready.push_back(&task);
  }
  return ready;
}

bool Coordinator::Impl::aggregate(const RoundState& state, const std::vector<const OpenTask*>& ready,
                                  RoundMetrics& metrics) {
  RoundUpdates updates;
  updates.round = state.round;
  for (const OpenTask* task : ready) {
    updates.rows.push_back(task->row);
    updates.weights.push_back(task->weight);
  }
  Result<RoundStep> step = catching_exceptions("aggregating round " + std::to_string(state.round),
                                               [&] { return policy_->aggregate(updates, global_); });
  if (!step.ok()) {
    log_.error("round " + std::to_string(state.round) + ": " + step.status().to_string() +
               "; keeping the previous model");
    return false;
  }
  if (!step->model_updated) {
    log_.warn("round " + std::to_string(state.round) + ": " + std::to_string(ready.size()) +
              " update(s), quorum is " + std::to_string(config_.round.min_updates) + "; keeping the previous model");
    return false;
  }
  for (size_t i = 0; i < step->row_weights.size(); ++i) {
    metrics.worker_weights.push_back({ready[i]->worker_index, step->row_weights[i]});
  }
  metrics.byzantine = step->byzantine;
  metrics.byzantine_weight = step->byzantine_weight;
  return true;
}

void Coordinator::Impl::report_results(RoundState& state, const RoundMetrics& metrics, const Digest& digest,
                                       const std::vector<Receipt>& receipts) {
  std::map<uint64_t, const Receipt*> unsent;
  for (const Receipt& receipt : receipts) unsent[receipt.task_id] = &receipt;
  RoundResult base;
  base.round = state.round;
  base.test_accuracy = metrics.test_accuracy;
  base.test_loss = metrics.test_loss;
  base.participants = static_cast<uint32_t>(metrics.participants);
  base.model_hash = digest;
  for (auto& [id, task] : state.tasks) {
    RoundResult result = base;
    result.accepted = task.stage() == TaskStage::kReady;
    result.reason = task.outcome();
    if (auto it = unsent.find(task.task.task_id); it != unsent.end()) {
      result.receipt = *it->second;
      unsent.erase(it);
    }
    // To the worker's current connection: it may have reconnected since.
    const WorkerEntry* worker = workers_.find_key(task.worker_key);
    const std::string& to = worker != nullptr ? worker->routing_id : task.routing_id;
    if (auto sent = send_to(to, result)) state.bytes_out += *sent;
    // A banned worker gets no more tasks: tell it, after its receipt.
    if (task.verdict() == Verdict::kFailed) send_to(to, Bye{"banned: " + task.outcome()});
  }
  for (const auto& [task_id, receipt] : unsent) {
    const WorkerEntry* worker = workers_.find_key(receipt->worker);
    if (worker == nullptr) continue;  // its next Welcome carries it
    RoundResult result = base;
    result.reason = receipt->reason;
    result.receipt = *receipt;
    if (auto sent = send_to(worker->routing_id, result)) state.bytes_out += *sent;
  }
}

void Coordinator::Impl::log_round(const RoundMetrics& m) {
  rejections_log_.flush(log_);
  char evaluation[64] = "not evaluated";
  if (!std::isnan(m.test_accuracy)) {
    std::snprintf(evaluation, sizeof(evaluation), "accuracy %.4f  loss %.4f", m.test_accuracy, m.test_loss);
  }
  char line[256];
  std::snprintf(line, sizeof(line), "round %u/%d: %s  updates %d/%d  rejected %d  %.1f s", m.round,
                config_.job.rounds, evaluation, m.accepted, m.participants, m.rejected, m.seconds.total);
  log_.info(line);
}

Result<std::unique_ptr<Coordinator>> Coordinator::create(JobConfig config, CoordinatorParts parts,
                                                         const RuleRegistry& rules, Logger& log,
                                                         StartMode mode) {
  if (parts.clock == nullptr || parts.identity == nullptr || parts.channel == nullptr) {
    return Status::invalid_argument("the coordinator needs a clock, an identity and a channel");
  }
  const bool proof = config.proof.segment_steps > 0;
  if (proof != (parts.ledger != nullptr)) {
    return Status::invalid_argument(proof ? "a job with [proof] needs its ledger (open_job_ledger)"
                                          : "a job without [proof] keeps no ledger");
  }
  auto impl = std::make_unique<Impl>(std::move(config), std::move(parts), log);
  COHORT_RETURN_IF_ERROR(impl->init(rules, mode));
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;
std::string Coordinator::endpoint() const { return impl_->endpoint(); }
const PublicKey& Coordinator::public_key() const { return impl_->public_key(); }
Result<JobSummary> Coordinator::run(const RoundCallback& on_round, std::stop_token stop) {
  return impl_->run(on_round, std::move(stop));
}

}  // namespace cohort
