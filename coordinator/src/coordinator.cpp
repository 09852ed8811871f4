#include "cohort/coordinator.h"

#include <ATen/ATen.h>

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <chrono>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include <nlohmann/json.hpp>

#include "auditor.h"
#include "cohort/attacks.h"
#include "cohort/dataset.h"
#include "cohort/duration.h"
#include "cohort/durable_file.h"
#include "cohort/file_lock.h"
#include "cohort/job_data.h"
#include "cohort/log_throttle.h"
#include "cohort/ledger.h"
#include "cohort/models.h"
#include "cohort/random.h"
#include "cohort/reveal_payload.h"
#include "cohort/training.h"
#include "cohort/transport.h"
#include "cohort/wire.h"
#include "rate_limiter.h"
#include "round_state.h"
#include "worker_registry.h"

namespace cohort {
namespace {

// A number as a person writes it: "50", "0.5", "1e+06".
std::string short_number(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return text;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
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
  Lap elapsed() const { return since(Clock::now(), thread_cpu_seconds()); }
  Lap lap() {
    const Clock::time_point wall = Clock::now();
    const double cpu = thread_cpu_seconds();
    const Lap out = since(wall, cpu);
    wall_ = wall;
    cpu_ = cpu;
    return out;
  }

 private:
  Lap since(Clock::time_point wall, double cpu) const {
    return {std::chrono::duration<double>(wall - wall_).count(), cpu - cpu_};
  }

  Clock::time_point wall_ = Clock::now();
  double cpu_ = thread_cpu_seconds();
};

// Records a lap as one phase of `metrics`.
void record(PhaseClock::Lap lap, double PhaseSeconds::*phase, RoundMetrics& metrics) {
  metrics.seconds.*phase = lap.wall;
  metrics.cpu_seconds.*phase = lap.cpu;
}

constexpr std::chrono::milliseconds kStopPollInterval{100};

std::chrono::milliseconds until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

// The first `count` samples of the training split: the coordinator's own
// trusted data for a root update.
Result<TensorDataset> load_root_set(const JobConfig& job, int count) {
  Result<IdxFiles> files = find_mnist_format_files(job.data.dir, Split::kTrain);
  Result<LabeledImages> train = files.ok() ? load_fitting(*files, job.model.name) : files.status();
  if (!train.ok()) return train.status().with_context("loading the root (trusted) samples");
  return to_tensors(first_samples(*train, count));
}

constexpr std::string_view kNoUpdateBeforeDeadline = "no update before the deadline";

// Task ids are round << 32 | attempt << 24 | worker index. A round that a
// crash or a stop interrupted runs again as its next attempt: the same work
// (the seed leaves the attempt out) under task ids the ledger has not seen.
constexpr int kAttemptShift = 24;
constexpr uint32_t kMaxAttempt = 255;
constexpr uint32_t kMaxWorkerIndex = (1u << kAttemptShift) - 1;

uint32_t attempt_of_task(uint64_t task_id) { return static_cast<uint32_t>(task_id >> kAttemptShift) & kMaxAttempt; }

// Why a round's open tasks are voided when it is interrupted.
std::string interrupted_reason(uint32_t round, std::string_view how) {
  return "interrupted: the coordinator " + std::string(how) + " before round " + std::to_string(round) +
         " was checkpointed; the round runs again";
}

// Adds a settled round's receipts to its metrics: paid, slashed, audits.
void add_settlement(const std::vector<Receipt>& receipts, RoundMetrics& metrics) {
  for (const Receipt& receipt : receipts) {
    metrics.paid += receipt.reward;
    metrics.slashed += receipt.slashed;
    if (receipt.verdict == Verdict::kPassed || receipt.verdict == Verdict::kFailed) ++metrics.audited;
    if (receipt.verdict == Verdict::kFailed) ++metrics.audits_failed;
  }
}

// The round of a metrics.jsonl line; nullopt for a line that is not one.
std::optional<uint32_t> round_of_metrics_line(const std::string& line) {
  nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("round") || !json["round"].is_number_unsigned()) return std::nullopt;
  return json["round"].get<uint32_t>();
}

// The training split workers cut their shards from (for re-executing audits).
Result<LabeledImages> load_train_split(const JobConfig& job) {
  Result<LabeledImages> train = load_job_split(job, Split::kTrain);
  if (!train.ok()) return train.status().with_context("loading the training split for audits");
  return train;
}

// The coordinator's identity: the configured key file, created on first use.
Result<Identity> load_or_make_identity(const std::filesystem::path& path, Logger& log) {
  if (!std::filesystem::exists(path)) {
    Identity made = Identity::generate();
    COHORT_RETURN_IF_ERROR(write_key_pair(made, path));
    log.info("made a new coordinator key " + path.string());
  }
  return read_identity(path);
}

// Atomically (durable_file.h): a worker reading the file while the
// coordinator starts sees a whole key, never part of one.
Status publish_public_key(const PublicKey& key, const std::filesystem::path& path) {
  const std::string line = to_hex(key) + '\n';
  const std::string_view parts[] = {line};
  return write_file_atomically(path, parts);
}

}  // namespace

class Coordinator::Impl {
 public:
  Impl(zmq::context_t& context, JobConfig config, Logger& log)
      : config_(std::move(config)),
        log_(log),
        context_(context),
        socket_(context, zmq::socket_type::router),
        rate_limiter_(config_.network.messages_per_second, config_.network.message_burst) {}

  Status init(const RuleRegistry& rules, StartMode mode) {
    // Before anything else, and above all before recovery touches the
    // ledger: a second instance on a live job must change nothing.
    COHORT_RETURN_IF_ERROR(lock_output_directory());
    // Before any tensor operation: it pins ATen's CPU kernels.
    if (proof_on()) COHORT_RETURN_IF_ERROR(use_deterministic_cpu_training());
    COHORT_ASSIGN_OR_RETURN(
        AggregationPipeline pipeline,
        rules.create_pipeline(config_.aggregation.pre, config_.aggregation.rule,
                              RuleParams(config_.aggregation.f, config_.aggregation.params)));
    pipeline_ = std::make_unique<AggregationPipeline>(std::move(pipeline));
    log_.info("aggregation: " + pipeline_->description() + " (f = " +
              std::to_string(config_.aggregation.f) + ")");
    if (config_.attack.byzantine > 0) {
      COHORT_ASSIGN_OR_RETURN(attack_, make_attack(config_.attack.name,
                                                   RuleParams(config_.attack.byzantine,
                                                              config_.attack.params),
                                                   pipeline_.get()));
      log_.warn("simulating " + std::to_string(config_.attack.byzantine) + " Byzantine update(s) per round (" +
                config_.attack.name + ")");
    }
    COHORT_ASSIGN_OR_RETURN(model_, Model::create(config_.model.name, config_.job.seed));
    global_ = model_->flat_parameters();
    COHORT_ASSIGN_OR_RETURN(test_set_, load_test_set(config_));
    if (config_.aggregation.root_samples > 0) {
      COHORT_ASSIGN_OR_RETURN(root_set_, load_root_set(config_, config_.aggregation.root_samples));
      COHORT_ASSIGN_OR_RETURN(root_model_, Model::create(config_.model.name, config_.job.seed));
    }
    std::optional<Checkpoint> resumed;
    if (mode == StartMode::kResume ||
        (mode == StartMode::kAuto && std::filesystem::exists(checkpoint_path()))) {
      COHORT_ASSIGN_OR_RETURN(resumed, resume_from_checkpoint());
    }
    COHORT_RETURN_IF_ERROR(init_identity());
    if (proof_on()) COHORT_RETURN_IF_ERROR(init_audits_and_ledger(/*fresh=*/!resumed));
    COHORT_RETURN_IF_ERROR(resumed ? recover(*resumed) : start_afresh());
    return bind();
  }

  const PublicKey& public_key() const { return identity_->public_key(); }

  std::string endpoint() const { return socket_.get(zmq::sockopt::last_endpoint); }

  Result<JobSummary> run(const RoundCallback& on_round, std::stop_token stop) {
    stop_ = std::move(stop);
    JobSummary summary = resumed_summary_;
    summary.checkpoint = checkpoint_path();
    if (first_round_ > config_.job.rounds) {
      log_.info("the job is already complete: round " + std::to_string(config_.job.rounds) + " is checkpointed");
      return summary;
    }
    COHORT_RETURN_IF_ERROR(wait_for_workers());
    const auto start = Clock::now();
    for (int r = first_round_; r <= config_.job.rounds && !stop_.stop_requested(); ++r) {
      COHORT_ASSIGN_OR_RETURN(std::optional<RoundMetrics> metrics, run_round(static_cast<uint32_t>(r)));
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

 private:
  Status bind() {
    socket_.set(zmq::sockopt::router_mandatory, 1);  // sends to a gone peer fail
    socket_.set(zmq::sockopt::maxmsgsize, config_.network.max_message_bytes);
    // Per peer: ZeroMQ stops reading from a peer whose queue is full.
    socket_.set(zmq::sockopt::rcvhwm, config_.network.max_pending_messages);
    socket_.set(zmq::sockopt::linger, 2000);
    if (config_.network.curve) COHORT_RETURN_IF_ERROR(secure_transport());
    try {
      socket_.bind(config_.network.listen);
    } catch (const zmq::error_t& e) {
      return Status::io_error("cannot listen on " + config_.network.listen + ": " + e.what());
    }
    log_.info("listening on " + endpoint() + (!config_.network.curve ? " without CURVE (plaintext)"
                                              : config_.network.allow_list.empty()
                                                  ? " with CURVE, open registration"
                                                  : " with CURVE, allow-list " + config_.network.allow_list.string()));
    return Status();
  }

  // CurveZMQ with the identity's key; a ZAP handler admits clients.
  Status secure_transport() {
    Admission admission;
    if (!config_.network.allow_list.empty()) {
      COHORT_ASSIGN_OR_RETURN(admission.allow_list, read_allow_list(config_.network.allow_list));
    }
    COHORT_ASSIGN_OR_RETURN(zap_, ZapHandler::start(context_, admission, log_));
    make_curve_server(socket_, *identity_);
    return Status();
  }

  // One coordinator per output directory (docs/OPERATIONS.md, "One instance
  // per job"), held until this one is destroyed.
  Status lock_output_directory() {
    std::error_code ec;
    std::filesystem::create_directories(config_.job.output_dir, ec);
    if (ec) {
      return Status::io_error("cannot create output directory " + config_.job.output_dir.string() + ": " +
                              ec.message());
    }
    COHORT_ASSIGN_OR_RETURN(job_lock_, FileLock::acquire(config_.job.output_dir / "coordinator.lock",
                                                         "the job in " + config_.job.output_dir.string()));
    return Status();
  }

  std::filesystem::path checkpoint_path() const { return config_.job.output_dir / "model.ckpt"; }
  std::filesystem::path metrics_path() const { return config_.job.output_dir / "metrics.jsonl"; }

  bool proof_on() const { return config_.proof.segment_steps > 0; }

  Result<Checkpoint> resume_from_checkpoint() {
    COHORT_ASSIGN_OR_RETURN(Checkpoint checkpoint, read_checkpoint(checkpoint_path()));
    if (checkpoint.model_name != config_.model.name || checkpoint.layout != model_->layout()) {
      return Status::failed_precondition(checkpoint_path().string() + " holds a '" + checkpoint.model_name +
                                         "' model; this job trains '" + config_.model.name + "'");
    }
    if (!checkpoint.job_name.empty() &&
        (checkpoint.job_name != config_.job.name || checkpoint.job_seed != config_.job.seed)) {
      return Status::failed_precondition(
          checkpoint_path().string() + " belongs to job '" + checkpoint.job_name + "' (seed " +
          std::to_string(checkpoint.job_seed) + "), not to job '" + config_.job.name + "' (seed " +
          std::to_string(config_.job.seed) + "): start afresh (cohort coordinator --fresh) or use another "
          "job.output_dir");
    }
    global_ = checkpoint.flat;
    previous_aggregate_ = checkpoint.previous_aggregate;
    first_round_ = static_cast<int>(checkpoint.round) + 1;
    workers_.reserve_indices(checkpoint.workers);
    carried_momentum_ = {checkpoint.carried_momentum.begin(), checkpoint.carried_momentum.end()};
    resumed_summary_.rounds_completed = static_cast<int>(checkpoint.round);
    if (!checkpoint.metrics_json.empty()) {
      const nlohmann::json metrics = nlohmann::json::parse(checkpoint.metrics_json);
      resumed_summary_.test_accuracy = metrics.value("test_accuracy", 0.0);
      resumed_summary_.test_loss = metrics.value("test_loss", 0.0);
    }
    log_.info("resuming after round " + std::to_string(checkpoint.round) + " from " +
              checkpoint_path().string() +
              (previous_aggregate_.defined() ? " (with the aggregator's state)" : ""));
    return checkpoint;
  }

  // ------------------------------------------------------------ recovery
  // docs/OPERATIONS.md, "Crash safety": the checkpoint is a round's commit
  // point. Rounds up to it are settled in the ledger as it records; the
  // ledger's later rounds were interrupted and run again.

  // A new job: its metrics start empty; ledger submissions a crash left
  // pending in an earlier attempt at this job are voided.
  Status start_afresh() {
    if (ledger_) COHORT_RETURN_IF_ERROR(void_interrupted_rounds(0));
    return write_file_atomically(metrics_path(), {});
  }

  Status recover(const Checkpoint& checkpoint) {
    std::vector<Receipt> receipts;
    if (ledger_) {
      COHORT_RETURN_IF_ERROR(check_ledger_agrees(checkpoint));
      COHORT_RETURN_IF_ERROR(void_interrupted_rounds(checkpoint.round));
      COHORT_ASSIGN_OR_RETURN(receipts, settle_in_ledger(checkpoint.round, checkpoint.settlement));
    }
    return complete_metrics(checkpoint, receipts);
  }

  // What a restart settles from the checkpoint must be what the ledger
  // holds: no round after the checkpoint's closed, and each task the
  // checkpoint aggregated either still pending or given the checkpoint's
  // verdict. Anything else means another process (or a restored backup)
  // wrote one of them: settling would pay the wrong work, so the start is
  // refused, naming the first difference.
  Status check_ledger_agrees(const Checkpoint& checkpoint) const {
    auto disagree = [&](const std::string& why) {
      return Status::failed_precondition("the ledger disagrees with " + checkpoint_path().string() + " (round " +
                                         std::to_string(checkpoint.round) + "): " + why +
                                         "; restore the two together, or start afresh with another output directory");
    };
    const std::vector<uint32_t> closed = ledger_->closed_rounds();
    if (!closed.empty() && closed.back() > checkpoint.round) {
      return disagree("the ledger already closed round " + std::to_string(closed.back()));
    }
    std::map<uint64_t, const SubmissionRecord*> recorded;
    const std::vector<SubmissionRecord> submissions = ledger_->submissions(checkpoint.round);
    for (const SubmissionRecord& record : submissions) recorded[record.submission.task_id] = &record;
    for (const auto& [task_id, verdict] : checkpoint.settlement) {
      auto it = recorded.find(task_id);
      if (it == recorded.end()) return disagree("task " + std::to_string(task_id) + " is not in the ledger");
      const Verdict held = it->second->verdict;
      if (held != Verdict::kPending && held != verdict) {
        return disagree("task " + std::to_string(task_id) + " was aggregated, but is " +
                        std::string(verdict_name(held)) + " in the ledger (" + it->second->reason + ")");
      }
    }
    return Status();
  }

  // Submissions still pending (accepted or in an audit) in rounds after the
  // checkpoint are voided, with the reason: their round runs again.
  Status void_interrupted_rounds(uint32_t checkpointed) {
    for (uint32_t round : ledger_->open_rounds()) {
      if (round < checkpointed) {
        return Status::failed_precondition("the ledger's round " + std::to_string(round) +
                                           " is still open but " + checkpoint_path().string() +
                                           " is of round " + std::to_string(checkpointed) +
                                           ": they are not of the same run");
      }
      if (round == checkpointed) continue;  // settled from the checkpoint
      int voided = 0;
      for (const SubmissionRecord& record : ledger_->submissions(round)) {
        if (record.verdict != Verdict::kPending) continue;
        COHORT_RETURN_IF_ERROR(ledger_->set_verdict(record.submission.task_id, Verdict::kVoided,
                                                    interrupted_reason(round, "restarted")));
        ++voided;
      }
      if (voided > 0) {
        log_.warn("round " + std::to_string(round) + " was interrupted: " + std::to_string(voided) +
                  " pending submission(s) voided in the ledger");
      }
    }
    return Status();
  }

  // Pays a checkpointed round: its aggregated tasks get their verdicts, then
  // the ledger closes the round. Idempotent, so that a restart between the
  // checkpoint and the close finishes the job and one after it changes
  // nothing (close_round returns the stored receipts).
  Result<std::vector<Receipt>> settle_in_ledger(uint32_t round,
                                                const std::vector<std::pair<uint64_t, Verdict>>& settlement) {
    std::set<uint64_t> pending;
    for (const SubmissionRecord& record : ledger_->submissions(round)) {
      if (record.verdict == Verdict::kPending) pending.insert(record.submission.task_id);
    }
    for (const auto& [task_id, verdict] : settlement) {
      if (pending.contains(task_id)) COHORT_RETURN_IF_ERROR(ledger_->set_verdict(task_id, verdict, ""));
    }
    return ledger_->close_round(round, config_.ledger.reward_per_round);
  }

  // metrics.jsonl keeps one line per checkpointed round: a torn last line
  // and lines of later rounds are dropped, and the checkpoint's own line is
  // written from the checkpoint when a crash came before it.
  Status complete_metrics(const Checkpoint& checkpoint, const std::vector<Receipt>& receipts) {
    COHORT_ASSIGN_OR_RETURN(std::vector<std::string> lines, read_complete_lines(metrics_path()));
    std::string kept;
    uint32_t last_round = 0;
    size_t kept_lines = 0;
    for (const std::string& line : lines) {
      std::optional<uint32_t> round = round_of_metrics_line(line);
      if (!round || *round > checkpoint.round) continue;
      kept += line + '\n';
      last_round = *round;
      ++kept_lines;
    }
    if (kept_lines < lines.size()) {
      log_.warn("metrics.jsonl: dropped " + std::to_string(lines.size() - kept_lines) +
                " line(s) of rounds after the checkpoint or not readable");
      const std::string_view parts[] = {kept};
      COHORT_RETURN_IF_ERROR(write_file_atomically(metrics_path(), parts));
    }
    if (last_round >= checkpoint.round || checkpoint.metrics_json.empty()) return Status();
    RoundMetrics settled;
    add_settlement(receipts, settled);
    nlohmann::ordered_json line = nlohmann::ordered_json::parse(checkpoint.metrics_json);
    line["audited"] = settled.audited;
    line["audits_failed"] = settled.audits_failed;
    line["paid"] = settled.paid;
    line["slashed"] = settled.slashed;
    log_.info("metrics.jsonl: round " + std::to_string(checkpoint.round) + "'s line written from the checkpoint");
    return append_line_durably(metrics_path(), line.dump());
  }

  // Tasks are always signed, the ledger is bound to the key, and with CURVE
  // it authenticates the coordinator to workers, who must know it before
  // they connect: so the key is kept across restarts and its public half is
  // published in the output directory.
  Status init_identity() {
    const std::filesystem::path path =
        config_.ledger.key.empty() ? config_.job.output_dir / "coordinator.key" : config_.ledger.key;
    COHORT_ASSIGN_OR_RETURN(Identity identity, load_or_make_identity(path, log_));
    identity_ = std::move(identity);
    const std::filesystem::path published = config_.job.output_dir / "coordinator.pub";
    COHORT_RETURN_IF_ERROR(publish_public_key(public_key(), published));
    log_.info("coordinator key " + to_hex(public_key()) + " (in " + published.string() +
              "; workers pass it to --coordinator-key)");
    return Status();
  }

  Status init_audits_and_ledger(bool fresh) {
    COHORT_ASSIGN_OR_RETURN(train_split_, load_train_split(config_));
    AuditOptions audit;
    audit.model_name = config_.model.name;
    audit.params.segment_steps = static_cast<uint32_t>(config_.proof.segment_steps);
    audit.params.profile =
        config_.proof.profile == "tolerant" ? DeterminismProfile::kTolerant : DeterminismProfile::kCpuExact;
    audit.params.tolerance = config_.proof.tolerance;
    audit.challenge.audit_probability = config_.proof.audit_probability;
    audit.challenge.segments_per_audit = static_cast<uint32_t>(config_.proof.segments_per_audit);
    audit.reveal_seconds = config_.proof.reveal_seconds;
    audit.threads = config_.proof.verifier_threads;
    auditor_ = std::make_unique<Auditor>(std::move(audit), train_split_);
    const std::filesystem::path path =
        config_.ledger.path.empty() ? config_.job.output_dir / "ledger.db" : config_.ledger.path;
    COHORT_ASSIGN_OR_RETURN(ledger_, Ledger::open(path, *identity_));
    if (fresh && !ledger_->closed_rounds().empty()) COHORT_RETURN_IF_ERROR(start_a_new_ledger(path));
    log_.info("proof of learning: segments of " + std::to_string(config_.proof.segment_steps) +
              " steps, audit probability " + std::to_string(config_.proof.audit_probability) + ", ledger " +
              path.string());
    return Status();
  }

  // A job numbers its rounds from 1, and a ledger holds each round once, so
  // a fresh job cannot go on in a ledger that closed rounds of an earlier
  // run. The job's own ledger (the default, in its output directory, whose
  // checkpoint and metrics a fresh start overwrites too) is kept whole under
  // a new name, still verifiable, and a new one begins. A ledger configured
  // elsewhere may hold stakes other jobs rely on: that is refused.
  Status start_a_new_ledger(const std::filesystem::path& path) {
    const std::vector<uint32_t> closed = ledger_->closed_rounds();
    const std::string rounds = closed.size() == 1 ? "round " + std::to_string(closed.front())
                                                  : "rounds " + std::to_string(closed.front()) + "-" +
                                                        std::to_string(closed.back());
    if (!config_.ledger.path.empty()) {
      return Status::failed_precondition(
          "the ledger " + path.string() + " already closed " + rounds + " of an earlier job, and this job starts "
          "afresh at round 1: give it a ledger of its own ([ledger] path), or resume the earlier job");
    }
    ledger_.reset();  // closing folds the WAL back into the file
    const std::filesystem::path kept =
        path.parent_path() / (path.stem().string() + "-until-" + std::to_string(unix_ms_deadline(0)) + path.extension().string());
    std::error_code error;
    std::filesystem::rename(path, kept, error);
    if (error) return Status::io_error("cannot set the earlier ledger " + path.string() + " aside: " + error.message());
    log_.warn("starting afresh: the earlier run's ledger (" + rounds + ") is kept as " + kept.string() +
              " (`cohort ledger verify` still checks it); this job starts a new one");
    COHORT_ASSIGN_OR_RETURN(ledger_, Ledger::open(path, *identity_));
    return Status();
  }

  // ------------------------------------------------------------ registration

  Status wait_for_workers() {
    const auto deadline = steady_deadline(config_.round.registration_timeout_seconds);
    log_.info("waiting for " + std::to_string(config_.round.min_workers) + " worker(s)");
    while (workers_.alive_count() < static_cast<size_t>(config_.round.min_workers) && !stop_.stop_requested()) {
      if (Clock::now() >= deadline) {
        return Status::deadline_exceeded(
            "only " + std::to_string(workers_.alive_count()) + " of " +
            std::to_string(config_.round.min_workers) + " workers registered within " +
            std::to_string(config_.round.registration_timeout_seconds) + " s");
      }
      receive_one(until(deadline), nullptr);
    }
    return Status();
  }

  void register_worker(const std::string& routing_id, const Hello& hello, RoundState* state) {
    if (ledger_) {
      if (std::optional<std::string> refusal = admission_refusal(hello.worker_key)) {
        log_.warn("refused worker " + to_hex(hello.worker_key).substr(0, 12) + ": " + *refusal);
        send_to(routing_id, ErrorReply{ErrorCode::kForbidden, *refusal, 0, 0});
        return;
      }
    }
    const WorkerEntry& entry = workers_.add(routing_id, hello);
    log_.info("worker " + std::to_string(entry.index) + " registered (" +
              to_hex(hello.worker_key).substr(0, 12) + ", " + hello.device.name + ", " +
              std::to_string(hello.dataset.samples) + " samples)");
    Welcome welcome{entry.index, config_.job.name, static_cast<uint32_t>(config_.job.rounds), public_key(), {}};
    if (ledger_) welcome.receipts = latest_receipts(hello.worker_key);
    send_to(routing_id, std::move(welcome));
    if (state != nullptr) {
      close_abandoned_training(routing_id, hello.worker_key, *state);
      repeat_challenges(routing_id, hello.worker_key, *state);
    }
  }

  // A worker that registers again while its task of this round still waits
  // for an update restarted or lost its connection: the update, if it ever
  // comes, cannot be matched to the new connection. Closing the task now
  // spares the round its deadline.
  void close_abandoned_training(const std::string& routing_id, const PublicKey& worker, RoundState& state) {
    for (auto& [task_routing_id, task] : state.tasks) {
      if (task.worker_key != worker || task_routing_id == routing_id || task.stage != TaskStage::kTraining) continue;
      close_task(task, Verdict::kRejected, "the worker registered again before sending its update");
      log_.warn("worker " + std::to_string(task.worker_index) + " registered again before sending its update for round " +
                std::to_string(state.round) + ": its task is closed");
    }
  }

  // A worker that registers again while one of its audits waits for a reveal
  // gets the challenge again on its new connection: the first may have been
  // lost with its old one. Its reveal deadline stays as it was.
  void repeat_challenges(const std::string& routing_id, const PublicKey& worker, RoundState& state) {
    for (auto& [_, task] : state.tasks) {
      if (task.worker_key != worker || task.stage != TaskStage::kAwaitingReveal || !task.challenge_message) continue;
      log_.info("worker " + std::to_string(task.worker_index) + " is back: repeating the challenge of task " +
                std::to_string(task.task.task_id));
      if (auto sent = send_to(routing_id, *task.challenge_message)) state.bytes_out += *sent;
    }
  }

  // The worker's latest receipts, which a Welcome carries: any it missed
  // while it or the coordinator restarted reaches it when it registers.
  std::vector<Receipt> latest_receipts(const PublicKey& worker) const {
    std::vector<Receipt> receipts = ledger_->receipts(worker);  // by task id: oldest round first
    if (receipts.size() > kMaxWelcomeReceipts) {
      receipts.erase(receipts.begin(), receipts.end() - static_cast<std::ptrdiff_t>(kMaxWelcomeReceipts));
    }
    return receipts;
  }

  // Why a key may not work in this job (banned, too little stake), if so.
  // A new account receives the configured registration grant.
  std::optional<std::string> admission_refusal(const PublicKey& key) {
    Result<Account> account = ledger_->account(key);
    if (!account.ok() && account.status().code() == Status::Code::kNotFound) {
      keep(ledger_->ensure_account(key));
      if (config_.ledger.registration_grant > 0) {
        keep(ledger_->deposit(key, config_.ledger.registration_grant, "registration grant"));
      }
      account = ledger_->account(key);
    }
    if (!account.ok()) return "the ledger cannot be read: " + account.status().message();
    if (account->banned) return "this key is banned: " + account->ban_reason;
    if (account->stake < config_.ledger.min_stake) {
      return "stake " + format_amount(account->stake) + " is below the job's minimum of " +
             format_amount(config_.ledger.min_stake) +
             " tokens; the operator credits stake with `cohort ledger deposit`";
    }
    return std::nullopt;
  }

  // Ledger writes must not fail silently: the first failure stops the job
  // at the end of the current step.
  void keep(Status status) {
    if (!status.ok() && fatal_.ok()) {
      fatal_ = status.with_context("ledger");
      log_.error(fatal_.to_string());
    }
  }

  // ------------------------------------------------------------ one round

  // The round's metrics, or nullopt when a stop abandoned it.
  Result<std::optional<RoundMetrics>> run_round(uint32_t round) {
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
    COHORT_RETURN_IF_ERROR(fatal_);
    if (stop_.stop_requested()) return std::optional<RoundMetrics>();

    clock.lap();
    const std::vector<const OpenTask*> ready = ready_tasks(state);
    metrics.model_updated = aggregate(state, ready, metrics);
    record(clock.lap(), &PhaseSeconds::aggregate, metrics);

    COHORT_ASSIGN_OR_RETURN(Evaluation eval, evaluate_global(round));
    record(clock.lap(), &PhaseSeconds::evaluate, metrics);
    metrics.test_accuracy = eval.accuracy;
    metrics.test_loss = eval.loss;
    metrics.participants = static_cast<int>(state.tasks.size());
    metrics.accepted = static_cast<int>(ready.size());
    metrics.rejected = state.rejected;
    metrics.limits_exceeded = state.limits_exceeded;
    for (const auto& [id, task] : state.tasks) {
      if (task.stage == TaskStage::kClosed) metrics.not_aggregated.emplace_back(task.worker_index, task.outcome);
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

    std::vector<Receipt> receipts;
    if (ledger_) {
      COHORT_ASSIGN_OR_RETURN(receipts, settle_in_ledger(round, settlement_of(ready)));
      add_settlement(receipts, metrics);
    }
    report_results(state, metrics, digest, receipts);
    metrics.bytes_in = state.bytes_in;
    metrics.bytes_out = state.bytes_out;
    record(round_clock.elapsed(), &PhaseSeconds::total, metrics);
    COHORT_RETURN_IF_ERROR(append_line_durably(metrics_path(), metrics.to_json()));
    return std::optional<RoundMetrics>(std::move(metrics));
  }

  // The test set was checked against the model when the job started, so an
  // error here is a bug; it ends the job cleanly instead of the process.
  Result<Evaluation> evaluate_global(uint32_t round) {
    return catching_exceptions("evaluating round " + std::to_string(round), [&]() -> Result<Evaluation> {
      COHORT_RETURN_IF_ERROR(model_->set_flat_parameters(global_));
      return evaluate(*model_, test_set_);
    });
  }

  Checkpoint checkpoint_of(uint32_t round, const Digest& digest, const std::vector<const OpenTask*>& ready,
                           const RoundMetrics& metrics) const {
    return Checkpoint{round,
                      config_.model.name,
                      model_->layout(),
                      global_,
                      digest,
                      previous_aggregate_,
                      config_.job.name,
                      config_.job.seed,
                      workers_.keys_by_index(),
                      settlement_of(ready),
                      metrics.to_json(),
                      {carried_momentum_.begin(), carried_momentum_.end()}};
  }

  // The ledger verdict of each aggregated task. Verdicts of aggregated work
  // are written only after the checkpoint, so that nothing is paid for a
  // round that may still run again.
  static std::vector<std::pair<uint64_t, Verdict>> settlement_of(const std::vector<const OpenTask*>& ready) {
    std::vector<std::pair<uint64_t, Verdict>> settlement;
    for (const OpenTask* task : ready) {
      if (task->in_ledger) {
        settlement.emplace_back(task->task.task_id, task->challenge.audited ? Verdict::kPassed : Verdict::kUnaudited);
      }
    }
    return settlement;
  }

  // A stop during collection: the round runs again after a restart, so
  // every task not already closed is voided (an accepted update is not
  // aggregated, an audit is not finished).
  void abandon_round(RoundState& state) {
    int voided = 0;
    for (auto& [routing_id, task] : state.tasks) {
      if (task.stage == TaskStage::kClosed) continue;
      close_task(task, Verdict::kVoided, interrupted_reason(state.round, "stopped"));
      ++voided;
    }
    log_.warn("round " + std::to_string(state.round) + " abandoned on stop: " + std::to_string(voided) +
              " open task(s) voided; it runs again when the coordinator restarts");
  }

  std::vector<const WorkerEntry*> select_participants(uint32_t round) {
    std::vector<const WorkerEntry*> alive = workers_.alive();
    const size_t wanted = config_.round.workers_per_round > 0
                              ? static_cast<size_t>(config_.round.workers_per_round)
                              : alive.size();
    if (wanted < alive.size()) {
      Rng rng = Rng(config_.job.seed).fork(round);
      rng.shuffle(std::span<const WorkerEntry*>(alive));
      alive.resize(wanted);
    }
    return alive;
  }

  // Announces the round. When no worker can be reached any more (all left
  // or lost their connections since they registered), waits, as before the
  // first round, for round.min_workers to register (again) and retries.
  Status announce_to_reachable_workers(RoundState& state) {
    COHORT_RETURN_IF_ERROR(announce(state));
    while (state.tasks.empty() && !stop_.stop_requested()) {
      log_.warn("no worker could be sent a task of round " + std::to_string(state.round) +
                ": waiting for workers to register again");
      COHORT_RETURN_IF_ERROR(wait_for_workers());
      COHORT_RETURN_IF_ERROR(announce(state));
    }
    return Status();
  }

  // Sends the round's task to each selected worker that can be reached.
  Status announce(RoundState& state) {
    COHORT_ASSIGN_OR_RETURN(
        EncodedPayload payload,
        encode_payload(model_->layout(), global_, static_cast<size_t>(config_.network.chunk_bytes)));
    state.model_digest = payload.header().digest;
    state.start = global_.clone();
    Task task;
    task.round = state.round;
    task.model_name = config_.model.name;
    task.hyper = hyperparameters_of(config_.training);
    task.deadline_unix_ms = unix_ms_deadline(config_.round.deadline_seconds);
    task.model = payload.header();
    if (proof_on()) task.proof.min_stake = config_.ledger.min_stake;
    COHORT_ASSIGN_OR_RETURN(PartitionScheme scheme, parse_partition_scheme(config_.data.partition));
    COHORT_ASSIGN_OR_RETURN(const uint32_t attempt, next_attempt(state.round));
    for (const WorkerEntry* worker : select_participants(state.round)) {
      if (worker->index > kMaxWorkerIndex) {
        return Status::resource_exhausted("worker index " + std::to_string(worker->index) + " does not fit a task id");
      }
      const uint64_t slot = (uint64_t{state.round} << 32) | worker->index;
      task.task_id = slot | (uint64_t{attempt} << kAttemptShift);
      task.seed = Rng(config_.job.seed).fork(slot).next_u64();
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
      state.tasks[worker->routing_id] = std::move(open);
    }
    return Status();
  }

  // One more than the highest attempt at `round` the ledger holds.
  Result<uint32_t> next_attempt(uint32_t round) const {
    uint32_t next = 0;
    if (!ledger_) return next;
    for (const SubmissionRecord& record : ledger_->submissions(round)) {
      next = std::max(next, attempt_of_task(record.submission.task_id) + 1);
    }
    if (next > kMaxAttempt) {
      return Status::resource_exhausted("round " + std::to_string(round) + " was interrupted " +
                                        std::to_string(next) + " times");
    }
    return next;
  }

  // Until every task is settled (aggregated or closed) or the deadline
  // passed; then audits still waiting for a reveal wait up to their reveal
  // deadline, and running re-executions finish. A stop ends it at once.
  void collect(RoundState& state) {
    const auto deadline = steady_deadline(config_.round.deadline_seconds);
    bool stragglers_closed = false;
    while (!state.all_settled() && fatal_.ok()) {
      if (stop_.stop_requested()) return;
      if (Clock::now() >= deadline) {
        if (!stragglers_closed) close_stragglers(state);
        stragglers_closed = true;
        if (!audits_outstanding(state)) break;
      }
      receive_one(poll_interval(state, deadline), &state);
      apply_audit_outcomes(state);
      fail_missing_reveals(state);
    }
    if (!stragglers_closed) close_stragglers(state);
  }

  // At the deadline: tasks without an update are closed, so that an update
  // arriving while audits finish is refused as late.
  void close_stragglers(RoundState& state) {
    for (auto& [routing_id, task] : state.tasks) {
      if (task.stage == TaskStage::kTraining) {
        close_task(task, Verdict::kRejected, std::string(kNoUpdateBeforeDeadline));
        log_.warn("worker " + std::to_string(task.worker_index) + " sent no update for round " +
                  std::to_string(state.round));
      }
    }
  }

  static bool audits_outstanding(const RoundState& state) {
    for (const auto& [id, task] : state.tasks) {
      if (task.stage == TaskStage::kAwaitingReveal || task.stage == TaskStage::kVerifying) return true;
    }
    return false;
  }

  // How long to wait for the next message: until the round deadline or the
  // earliest reveal deadline, and briefly while re-executions run on other
  // threads (their results are polled).
  std::chrono::milliseconds poll_interval(const RoundState& state, Clock::time_point deadline) const {
    Clock::time_point wake = deadline;
    for (const auto& [id, task] : state.tasks) {
      if (task.stage == TaskStage::kAwaitingReveal) wake = std::min(wake, task.reveal_deadline);
    }
    auto wait = std::max(until(wake), std::chrono::milliseconds(1));
    if (auditor_ && auditor_->running() > 0) wait = std::min(wait, std::chrono::milliseconds(20));
    return wait;
  }

  void apply_audit_outcomes(RoundState& state) {
    if (!auditor_) return;
    for (const AuditOutcome& outcome : auditor_->finished()) {
      OpenTask* task = state.find_task(outcome.task_id);
      if (task == nullptr || task->stage != TaskStage::kVerifying) continue;
      if (outcome.passed) {
        log_.info("worker " + std::to_string(task->worker_index) + ": audit passed (" +
                  std::to_string(task->challenge.segments.size()) + " segment(s) re-executed in " +
                  std::to_string(outcome.seconds).substr(0, 5) + " s)");
        task->stage = TaskStage::kReady;
      } else if (outcome.voided) {
        close_task(*task, Verdict::kVoided, "audit voided: " + outcome.reason);
      } else {
        fail_audit(*task, outcome.reason);
      }
    }
  }

  void fail_missing_reveals(RoundState& state) {
    const auto now = Clock::now();
    for (auto& [routing_id, task] : state.tasks) {
      if (task.stage == TaskStage::kAwaitingReveal && now >= task.reveal_deadline) {
        fail_audit(task, "no reveal before the reveal deadline");
      }
    }
  }

  // A failed audit: the update is dropped, the stake slashed, the key banned.
  void fail_audit(OpenTask& task, const std::string& reason) {
    log_.warn("worker " + std::to_string(task.worker_index) + " failed its audit: " + reason);
    close_task(task, Verdict::kFailed, "audit failed: " + reason);
    Result<Amount> slashed = ledger_->slash(task.worker_key, task.task.task_id, config_.ledger.slash_fraction,
                                            /*ban=*/true, reason);
    keep(slashed.status());
    workers_.retire(task.worker_key);
  }

  // Accepted updates in worker order, so that a round's aggregate does not
  // depend on arrival order.
  static std::vector<const OpenTask*> ready_tasks(const RoundState& state) {
    std::vector<const OpenTask*> ready;
    for (const auto& [id, task] : state.tasks) {
      if (task.stage == TaskStage::kReady) ready.push_back(&task);
    }
    std::sort(ready.begin(), ready.end(),
              [](const OpenTask* a, const OpenTask* b) { return a->worker_index < b->worker_index; });
    return ready;
  }

  bool aggregate(const RoundState& state, const std::vector<const OpenTask*>& ready, RoundMetrics& metrics) {
    if (static_cast<int>(ready.size()) < config_.round.min_updates) {
      log_.warn("round " + std::to_string(state.round) + ": " + std::to_string(ready.size()) +
                " update(s), quorum is " + std::to_string(config_.round.min_updates) +
                "; keeping the previous model");
      return false;
    }
    // A LibTorch error in a rule, an attack or the root update keeps the
    // previous model, like any other failed aggregation.
    Status status = catching_exceptions("aggregating round " + std::to_string(state.round),
                                        [&] { return aggregate_accepted(state, ready, metrics); });
    if (!status.ok()) {
      log_.error("round " + std::to_string(state.round) + ": " + status.to_string() +
                 "; keeping the previous model");
      return false;
    }
    return true;
  }

  // Root update (if configured) -> simulated attack (if configured) ->
  // pipeline -> global model step.
  Status aggregate_accepted(const RoundState& state, const std::vector<const OpenTask*>& ready,
                            RoundMetrics& metrics) {
    AggregationContext context;
    context.previous = previous_aggregate_;
    context.seed = Rng(config_.job.seed).fork(state.round).next_u64();
    if (root_model_) {
      Result<at::Tensor> root = root_update(context.seed);
      if (!root.ok()) return root.status().with_context("the root update failed");
      context.root_update = *root;
    }
    std::vector<at::Tensor> rows;
    std::vector<double> weights;
    for (const OpenTask* task : ready) {
      rows.push_back(task->row);
      weights.push_back(task->weight);
    }
    at::Tensor stacked = at::stack(rows);
    if (attack_) {
      COHORT_RETURN_IF_ERROR(add_byzantine_rows(stacked, weights, context.seed)
                                 .with_context("the simulated attack failed"));
      metrics.byzantine = config_.attack.byzantine;
    }
    Result<AggregationResult> result = pipeline_->run(stacked, weights, context);
    if (!result.ok()) return result.status().with_context("aggregation failed");
    record_weights(ready, *result, metrics);
    previous_aggregate_ = result->aggregate;
    global_.add_(result->aggregate, config_.aggregation.server_learning_rate);
    return Status();
  }

  // The coordinator's own update on its trusted samples, from the current
  // model with the workers' hyperparameters (FLTrust's g0).
  Result<at::Tensor> root_update(uint64_t seed) {
    COHORT_RETURN_IF_ERROR(root_model_->set_flat_parameters(global_));
    MomentumBuffers* momentum = config_.training.keep_momentum ? &root_momentum_ : nullptr;
    COHORT_ASSIGN_OR_RETURN(LocalTraining trained,
                            train_locally(*root_model_, root_set_, hyperparameters_of(config_.training),
                                          seed, momentum));
    return trained.delta;
  }

  // Appends the simulated adversary's rows, computed from the honest ones,
  // each weighted like an average honest update.
  Status add_byzantine_rows(at::Tensor& rows, std::vector<double>& weights, uint64_t seed) {
    COHORT_ASSIGN_OR_RETURN(at::Tensor byzantine,
                            attack_->byzantine_rows(rows, config_.attack.byzantine, seed));
    const double mean_weight =
        std::accumulate(weights.begin(), weights.end(), 0.0) / static_cast<double>(weights.size());
    weights.insert(weights.end(), static_cast<size_t>(config_.attack.byzantine), mean_weight);
    rows = at::cat({rows, byzantine.to(rows.scalar_type())});
    return Status();
  }

  // Honest rows come first; the rest are the simulated Byzantine ones.
  static void record_weights(const std::vector<const OpenTask*>& ready, const AggregationResult& result,
                             RoundMetrics& metrics) {
    for (size_t i = 0; i < result.row_weights.size(); ++i) {
      if (i < ready.size()) {
        metrics.worker_weights.push_back({ready[i]->worker_index, result.row_weights[i]});
      } else {
        metrics.byzantine_weight += result.row_weights[i];
      }
    }
  }

  // Each participant gets its RoundResult (with its receipt); receipts of
  // the round's tasks from an interrupted attempt go to their worker too.
  void report_results(RoundState& state, const RoundMetrics& metrics, const Digest& digest,
                      const std::vector<Receipt>& receipts) {
    std::map<uint64_t, const Receipt*> unsent;
    for (const Receipt& receipt : receipts) unsent[receipt.task_id] = &receipt;
    RoundResult base;
    base.round = state.round;
    base.test_accuracy = metrics.test_accuracy;
    base.test_loss = metrics.test_loss;
    base.participants = static_cast<uint32_t>(metrics.participants);
    base.model_hash = digest;
    for (auto& [routing_id, task] : state.tasks) {
      RoundResult result = base;
      result.accepted = task.stage == TaskStage::kReady;
      result.reason = task.outcome;
      if (auto it = unsent.find(task.task.task_id); it != unsent.end()) {
        result.receipt = *it->second;
        unsent.erase(it);
      }
      // To the worker's current connection: it may have reconnected since.
      const WorkerEntry* worker = workers_.find_key(task.worker_key);
      const std::string& to = worker != nullptr ? worker->routing_id : routing_id;
      if (auto sent = send_to(to, result)) state.bytes_out += *sent;
      // A banned worker gets no more tasks: tell it, after its receipt.
      if (task.verdict == Verdict::kFailed) send_to(to, Bye{"banned: " + task.outcome});
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

  // ------------------------------------------------------------ messages

  // Receives and handles at most one message. `state` is null outside rounds.
  void receive_one(std::chrono::milliseconds timeout, RoundState* state) {
    DecodeLimits limits;
    limits.max_envelope_bytes = static_cast<size_t>(config_.network.max_message_bytes);
    // Short waits while a stop may come, so that it is seen promptly.
    if (stop_.stop_possible()) timeout = std::min(timeout, kStopPollInterval);
    auto incoming = receive_message(socket_, /*has_routing_id=*/true, timeout, limits,
                                    max_payload_frames());
    if (!incoming) return;
    if (state != nullptr) state->bytes_in += incoming->bytes;
    const std::string routing_id(static_cast<const char*>(incoming->routing_id->data()),
                                 incoming->routing_id->size());
    if (!admitted(routing_id, state)) return;
    if (!incoming->message.ok()) {
      const Status& status = incoming->message.status();
      reject(routing_id, state, ErrorReply{error_code_for(status), status.message(), 0, 0});
      return;
    }
    Message& message = incoming->message.value();
    if (config_.network.curve) {
      if (std::optional<std::string> refusal = impersonation(routing_id, message, incoming->user_id)) {
        reject(routing_id, state, ErrorReply{ErrorCode::kForbidden, *refusal, 0, 0});
        return;
      }
    }
    // An exception while handling one message (a bug, or LibTorch refusing
    // a shape no check foresaw) costs that message, not the job: the sender
    // is told, and its task, if any, stays open until the deadline.
    const Status handled = catching_exceptions("handling a " + std::string(message_kind(message)) + " message", [&] {
      dispatch(routing_id, message, std::move(incoming->payload), state);
      return Status();
    });
    if (!handled.ok()) {
      log_.error(handled.to_string());
      reject(routing_id, state, ErrorReply{ErrorCode::kInternal, handled.message(), 0, 0});
    }
  }

  void dispatch(const std::string& routing_id, Message& message, std::vector<zmq::message_t> payload,
                RoundState* state) {
    if (auto* hello = std::get_if<Hello>(&message)) {
      register_worker(routing_id, *hello, state);
    } else if (auto* update = std::get_if<Update>(&message)) {
      handle_update(routing_id, *update, std::move(payload), state);
    } else if (auto* reveal = std::get_if<Reveal>(&message)) {
      handle_reveal(routing_id, *reveal, std::move(payload), state);
    } else if (auto* error = std::get_if<ErrorReply>(&message)) {
      handle_worker_error(routing_id, *error, state);
    } else if (std::holds_alternative<Bye>(message)) {
      workers_.mark_gone(routing_id);
      if (state != nullptr && state->tasks.contains(routing_id) &&
          state->tasks[routing_id].stage == TaskStage::kTraining) {
        close_task(state->tasks[routing_id], Verdict::kRejected, "the worker left");
      }
    } else {
      reject(routing_id, state,
             ErrorReply{ErrorCode::kMalformedMessage,
                        "a worker may not send a " + std::string(message_kind(message)) + " message",
                        0, 0});
    }
  }

  // [network] messages_per_second: a message over the peer's rate is
  // dropped; the first of a streak is answered, the others only counted.
  bool admitted(const std::string& routing_id, RoundState* state) {
    switch (rate_limiter_.admit(routing_id, Clock::now())) {
      case RateLimiter::Decision::kAllow:
        return true;
      case RateLimiter::Decision::kRefuseAndTell:
        reject(routing_id, state,
               ErrorReply{ErrorCode::kRateLimited,
                          "more than " + short_number(config_.network.messages_per_second) +
                              " messages per second (burst " + std::to_string(config_.network.message_burst) +
                              "): messages are dropped until the rate falls",
                          0, 0});
        return false;
      case RateLimiter::Decision::kRefuseSilently:
        if (state != nullptr) {
          ++state->rejected;
          ++state->limits_exceeded;
        }
        return false;
    }
    return false;
  }

  // Refuses, before anything else sees it, an update whose L2 norm is above
  // aggregation.max_update_norm (a finite update can still be absurd).
  Status check_norm(const at::Tensor& flat) const {
    const double limit = config_.aggregation.max_update_norm;
    if (limit <= 0.0) return Status();
    const double norm = flat.norm().item<double>();
    if (norm <= limit) return Status();
    return Status::invalid_argument("the update's L2 norm " + short_number(norm) +
                                    " is above aggregation.max_update_norm = " + short_number(limit));
  }

  // With CURVE, a Hello must name the key its connection authenticated
  // with, and a registered worker's messages must come over a connection
  // authenticated with its key. Returns why not, if so.
  std::optional<std::string> impersonation(const std::string& routing_id, const Message& message,
                                           const std::string& user_id) const {
    const PublicKey* claimed = nullptr;
    if (const auto* hello = std::get_if<Hello>(&message)) {
      claimed = &hello->worker_key;
    } else if (const WorkerEntry* worker = workers_.find(routing_id)) {
      claimed = &worker->hello.worker_key;
    }
    if (claimed == nullptr || authenticated_as(user_id, *claimed)) return std::nullopt;
    return "the connection authenticated with CURVE key " + (user_id.empty() ? "(none)" : user_id) +
           ", which is not the transport key of worker key " + to_hex(*claimed);
  }

  void handle_update(const std::string& routing_id, const Update& update,
                     std::vector<zmq::message_t> payload, RoundState* state) {
    if (auto refusal = check_update(routing_id, update, state)) {
      reject(routing_id, state, std::move(*refusal));
      return;
    }
    OpenTask& task = state->tasks[routing_id];
    if (update.commitment) {
      task.start_momentum = accepted_start_momentum(task, *update.commitment);
      // A worker that keeps momentum starts its next task where this one ends.
      carried_momentum_[task.worker_key] = update.commitment->last.leaf.momentum;
    }
    PayloadLimits limits;
    limits.max_bytes = static_cast<uint64_t>(config_.network.max_model_bytes);
    Result<DecodedPayload> decoded =
        decode_payload(update.delta, std::move(payload), limits, &model_->layout());
    const bool non_finite = decoded.ok() && !all_finite(decoded->flat);
    if (non_finite) decoded = Status::invalid_argument("the update contains NaN or Inf values");
    if (decoded.ok()) {
      if (Status norm = check_norm(decoded->flat); !norm.ok()) decoded = norm;
    }
    if (ledger_) record_submission(*state, task, update);
    if (!decoded.ok()) {
      // Honest workers check for NaN and Inf before signing (worker.cpp), so
      // a signed non-finite update is fraud, not bad luck.
      if (non_finite && ledger_) {
        fail_audit(task, "it signed " + decoded.status().message());
      } else {
        close_task(task, Verdict::kRejected, decoded.status().message());
      }
      reject(routing_id, state,
             ErrorReply{error_code_for(decoded.status()), decoded.status().message(), update.round,
                        update.task_id});
      return;
    }
    task.row = std::move(decoded->flat);
    task.weight = static_cast<double>(update.num_samples);
    task.local_loss = update.metrics.local_loss;
    task.commitment = update.commitment;
    task.update_dtype = update.delta.tensors.empty() ? DType::kFloat32 : update.delta.tensors.front().dtype;
    if (auditor_) {
      challenge(routing_id, *state, task);
    } else {
      task.stage = TaskStage::kReady;
    }
  }

  void record_submission(const RoundState& state, OpenTask& task, const Update& update) {
    Submission submission;
    submission.round = state.round;
    submission.task_id = update.task_id;
    submission.worker = task.worker_key;
    submission.commitment_root = update.commitment ? update.commitment->root : Digest{};
    submission.update_hash = update.delta.digest;
    submission.samples = update.num_samples;
    keep(ledger_->record_submission(submission));
    task.in_ledger = true;
  }

  // Checks the commitment, reveals the task's secret and, when the task is
  // audited, waits for the reveal; otherwise the update is ready.
  void challenge(const std::string& routing_id, RoundState& state, OpenTask& task) {
    Result<ChallengeMessage> message =
        auditor_->challenge(task.task, task.worker_key, *task.commitment, task.start_momentum);
    if (!message.ok()) {
      // A signed commitment that contradicts the task is proof of fraud (an
      // honest worker checks the step count before training): it slashes.
      fail_audit(task, "invalid commitment: " + message.status().message());
      reject(routing_id, &state,
             ErrorReply{ErrorCode::kInvalidUpdate, task.outcome, state.round, task.task.task_id});
      return;
    }
    message->signature = identity_->sign(challenge_signing_bytes(*message, task.worker_key));
    task.challenge = message->challenge;
    if (task.challenge.audited) {
      task.challenge_message = *message;
      task.stage = TaskStage::kAwaitingReveal;
      task.reveal_deadline = steady_deadline(config_.proof.reveal_seconds);
    } else {
      task.stage = TaskStage::kReady;
    }
    if (auto sent = send_to(routing_id, std::move(*message))) state.bytes_out += *sent;
  }

  // The momentum a task names for leaf 0 (ProofSpec.start_momentum): with
  // training.keep_momentum, the one the worker's previous commitment ended
  // with (fresh for its first task); zero (not pinned) otherwise.
  Digest announced_momentum_of(const PublicKey& worker) const {
    if (!config_.training.keep_momentum) return Digest{};
    auto it = carried_momentum_.find(worker);
    return it == carried_momentum_.end() ? fresh_momentum_digest() : it->second;
  }

  // The leaf-0 momentum the commitment is checked against: the announced
  // one, or fresh from a worker that lost the announced buffers (a restart
  // with an empty state directory). Starting over cannot forge an update:
  // the re-execution starts from the committed leaf 0.
  static Digest accepted_start_momentum(const OpenTask& task, const UpdateCommitment& commitment) {
    const Digest& announced = task.task.proof.start_momentum;
    if (announced == Digest{} || commitment.first.leaf.momentum == fresh_momentum_digest()) {
      return fresh_momentum_digest();
    }
    return announced;
  }

  // The checks that need no payload decoding, cheapest first. Returns the
  // error to answer with, if any. A second update for a task that carries a
  // valid signature over a different commitment is equivocation: recorded
  // and slashed.
  std::optional<ErrorReply> check_update(const std::string& routing_id, const Update& update,
                                         RoundState* state) {
    auto refuse = [&](ErrorCode code, std::string why) {
      return ErrorReply{code, std::move(why), update.round, update.task_id};
    };
    const WorkerEntry* worker = workers_.find(routing_id);
    if (worker == nullptr) {
      return refuse(ErrorCode::kNotRegistered, "not registered: send a hello first");
    }
    if (!verify_signature(worker->hello.worker_key, update_signing_bytes(update, worker->hello.worker_key),
                          update.signature)) {
      record_incident(worker->hello.worker_key, update.round, update.task_id, "bad-signature",
                      "an update whose signature does not verify");
      return refuse(ErrorCode::kBadSignature, "the update's signature does not verify for this worker's key");
    }
    if (state == nullptr || update.round != state->round) {
      record_incident(worker->hello.worker_key, update.round, update.task_id, "replay", "an update for a round that is not open");
      return refuse(ErrorCode::kWrongRound,
                    "update for round " + std::to_string(update.round) + " but " +
                        (state == nullptr ? "no round is open"
                                          : "round " + std::to_string(state->round) + " is open"));
    }
    auto it = state->tasks.find(routing_id);
    if (it == state->tasks.end() || it->second.task.task_id != update.task_id) {
      record_incident(worker->hello.worker_key, update.round, update.task_id, "replay", "an update for a task not assigned to it");
      return refuse(ErrorCode::kUnknownTask, "no task " + std::to_string(update.task_id) +
                                                 " was assigned to this worker in round " +
                                                 std::to_string(state->round));
    }
    OpenTask& task = it->second;
    if (task.stage == TaskStage::kClosed && task.outcome == kNoUpdateBeforeDeadline) {
      return refuse(ErrorCode::kDeadlineExceeded, "the round's deadline passed before this update arrived");
    }
    if (task.stage != TaskStage::kTraining) {
      if (equivocates(task, update)) punish_equivocation(*state, task);
      return refuse(ErrorCode::kDuplicate, "duplicate update for this task");
    }
    if (update.base_model_hash != state->model_digest) {
      return refuse(ErrorCode::kInvalidUpdate, "the update was trained from a different model");
    }
    if (update.num_samples == 0) return refuse(ErrorCode::kInvalidUpdate, "the update claims 0 samples");
    if (auditor_ && !update.commitment) {
      return refuse(ErrorCode::kInvalidUpdate, "the task asks for proof of learning but the update has no commitment");
    }
    return std::nullopt;
  }

  static bool equivocates(const OpenTask& task, const Update& update) {
    return task.commitment && update.commitment && task.commitment->root != update.commitment->root;
  }

  // The ledger slashes only for a failed verdict: an equivocation on a task
  // that is still open fails it; one on a task already closed (not paid) is
  // recorded as an incident only.
  void punish_equivocation(RoundState& state, OpenTask& task) {
    const std::string reason = "two signed commitments for task " + std::to_string(task.task.task_id);
    log_.warn("worker " + std::to_string(task.worker_index) + " equivocated: " + reason);
    keep(ledger_->record_incident(task.worker_key, state.round, task.task.task_id, "equivocation", reason));
    if (task.stage == TaskStage::kClosed) return;
    close_task(task, Verdict::kFailed, "equivocation: " + reason);
    keep(ledger_->slash(task.worker_key, task.task.task_id, config_.ledger.slash_fraction, /*ban=*/true, reason)
             .status());
    workers_.retire(task.worker_key);
  }

  void record_incident(const PublicKey& worker, uint32_t round, uint64_t task_id, std::string_view kind,
                       std::string_view detail) {
    if (ledger_) keep(ledger_->record_incident(worker, round, task_id, kind, detail));
  }

  void handle_reveal(const std::string& routing_id, const Reveal& reveal, std::vector<zmq::message_t> payload,
                     RoundState* state) {
    auto refuse = [&](ErrorCode code, std::string why) {
      reject(routing_id, state, ErrorReply{code, std::move(why), reveal.round, reveal.task_id});
    };
    const WorkerEntry* worker = workers_.find(routing_id);
    if (worker == nullptr) return refuse(ErrorCode::kNotRegistered, "not registered: send a hello first");
    if (state == nullptr || reveal.round != state->round) {
      return refuse(ErrorCode::kWrongRound, "a reveal for a round that is not open");
    }
    OpenTask* task = state->find_task(reveal.task_id);
    if (task == nullptr || task->worker_key != worker->hello.worker_key ||
        task->stage != TaskStage::kAwaitingReveal) {
      return refuse(ErrorCode::kUnknownTask, "no audit of task " + std::to_string(reveal.task_id) +
                                                 " is waiting for this worker's reveal");
    }
    if (!verify_signature(task->worker_key, reveal_signing_bytes(reveal, task->worker_key), reveal.signature)) {
      record_incident(task->worker_key, reveal.round, reveal.task_id, "bad-signature",
                      "a reveal whose signature does not verify");
      return refuse(ErrorCode::kBadSignature, "the reveal's signature does not verify for this worker's key");
    }
    Status queued = queue_verification(*task, reveal, std::move(payload), state->start);
    if (!queued.ok()) {
      fail_audit(*task, "invalid reveal: " + queued.message());
      return refuse(error_code_for(queued), queued.message());
    }
    task->stage = TaskStage::kVerifying;
  }

  Status queue_verification(OpenTask& task, const Reveal& reveal, std::vector<zmq::message_t> payload,
                            const at::Tensor& start) {
    PayloadLimits limits;
    limits.max_bytes = static_cast<uint64_t>(config_.network.max_model_bytes);
    COHORT_ASSIGN_OR_RETURN(DecodedPayload states, decode_payload(reveal.states, std::move(payload), limits));
    const bool with_momentum = task.task.hyper.momentum > 0.0;
    COHORT_ASSIGN_OR_RETURN(std::vector<SegmentOpening> openings,
                            unpack_reveal(reveal, states, model_->parameter_count(), with_momentum));
    return auditor_->verify_later(task.task, *task.commitment, task.challenge, std::move(openings), start,
                                  task.row, Auditor::TaskStart{task.start_momentum, task.update_dtype});
  }

  void handle_worker_error(const std::string& routing_id, const ErrorReply& error, RoundState* state) {
    log_.warn("worker reported " + std::string(error_code_name(error.code)) + ": " + error.message);
    if (state == nullptr) return;
    auto it = state->tasks.find(routing_id);
    if (it != state->tasks.end() && it->second.task.task_id == error.task_id &&
        it->second.stage == TaskStage::kTraining) {
      close_task(it->second, Verdict::kRejected, "the worker failed the task: " + error.message);
    }
  }

  // The task will not be aggregated. Its ledger submission, if any, gets
  // the verdict.
  void close_task(OpenTask& task, Verdict verdict, std::string outcome) {
    task.stage = TaskStage::kClosed;
    task.verdict = verdict;
    task.outcome = std::move(outcome);
    if (ledger_ && task.in_ledger) keep(ledger_->set_verdict(task.task.task_id, verdict, task.outcome));
  }

  void reject(const std::string& routing_id, RoundState* state, ErrorReply error) {
    rejections_log_.warn(log_, "rejected a message (" + std::string(error_code_name(error.code)) + "): " + error.message);
    if (state != nullptr) {
      ++state->rejected;
      if (error.code == ErrorCode::kTooLarge || error.code == ErrorCode::kRateLimited) ++state->limits_exceeded;
    }
    send_to(routing_id, std::move(error));
  }

  std::optional<size_t> send_to(const std::string& routing_id, Message message,
                                std::vector<zmq::message_t> payload = {}) {
    zmq::message_t id(routing_id.data(), routing_id.size());
    auto sent = send_message(socket_, {std::move(message), std::move(payload)}, &id);
    if (!sent.ok()) {
      workers_.mark_gone(routing_id);
      return std::nullopt;
    }
    return sent.value();
  }

  void say_goodbye(const std::string& reason) {
    for (const WorkerEntry* worker : workers_.alive()) send_to(worker->routing_id, Bye{reason});
  }

  size_t max_payload_frames() const {
    const auto chunk = static_cast<uint64_t>(config_.network.chunk_bytes);
    return static_cast<size_t>(static_cast<uint64_t>(config_.network.max_model_bytes) / chunk + 2);
  }

  void log_round(const RoundMetrics& m) {
    rejections_log_.flush(log_);
    char line[256];
    std::snprintf(line, sizeof(line),
                  "round %u/%d: accuracy %.4f  loss %.4f  updates %d/%d  rejected %d  %.1f s",
                  m.round, config_.job.rounds, m.test_accuracy, m.test_loss, m.accepted,
                  m.participants, m.rejected, m.seconds.total);
    log_.info(line);
  }

  JobConfig config_;
  Logger& log_;
  // Garbage from many fresh keys (open registration) passes the per-peer
  // rate limit: its warnings are throttled instead.
  LogThrottle rejections_log_{20, std::chrono::seconds(10)};
  std::optional<FileLock> job_lock_;  // the output directory, taken first
  zmq::context_t& context_;
  std::unique_ptr<ZapHandler> zap_;  // with CURVE; declared before socket_ so that it outlives it
  zmq::socket_t socket_;
  RateLimiter rate_limiter_;  // [network] messages_per_second, per peer
  std::unique_ptr<AggregationPipeline> pipeline_;
  std::unique_ptr<Attack> attack_;  // simulated Byzantine workers, when configured
  at::Tensor previous_aggregate_;
  std::unique_ptr<Model> root_model_;  // trains the root update, when root_samples > 0
  TensorDataset root_set_;
  MomentumBuffers root_momentum_;  // last round's aggregate (centered clipping starts there)
  std::unique_ptr<Model> model_;  // evaluation copy of the global model
  at::Tensor global_;             // the global model, flat float32 on CPU
  TensorDataset test_set_;
  WorkerRegistry workers_;
  std::optional<Identity> identity_;  // signs tasks, challenges, receipts and the ledger
  LabeledImages train_split_;         // what audits re-execute on ([proof] only)
  std::unique_ptr<Auditor> auditor_;  // [proof] only
  std::unique_ptr<Ledger> ledger_;    // [proof] only
  Status fatal_;                      // a ledger write failed: the job must stop
  int first_round_ = 1;               // > 1 when resuming
  JobSummary resumed_summary_;        // the checkpoint's round and evaluation, when resuming
  std::stop_token stop_;              // set by run()
  // The momentum digest each worker's last commitment ended with
  // (training.keep_momentum).
  std::map<PublicKey, Digest> carried_momentum_;
};

Result<std::unique_ptr<Coordinator>> Coordinator::create(zmq::context_t& context, JobConfig config,
                                                         const RuleRegistry& rules, Logger& log,
                                                         StartMode mode) {
  auto impl = std::make_unique<Impl>(context, std::move(config), log);
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
