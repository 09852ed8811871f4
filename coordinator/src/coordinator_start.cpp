#include <nlohmann/json.hpp>

#include <algorithm>

#include "cohort/dataset.h"
#include "cohort/duration.h"
#include "cohort/durable_file.h"
#include "cohort/job_data.h"
#include "cohort/ledger.h"
#include "cohort/proof_of_learning.h"
#include "coordinator_impl.h"

namespace cohort {
namespace {

// The first `count` samples of the job's training split: the coordinator's
// own trusted data for a root update.
Result<TensorDataset> load_root_set(const JobConfig& job, int count) {
  Result<LabeledImages> train = load_job_split(job, Split::kTrain);
  if (!train.ok()) return train.status().with_context("loading the root (trusted) samples");
  return to_tensors(first_samples(*train, count));
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

// [ledger] path, or the job's own <output_dir>/ledger.db.
std::filesystem::path job_ledger_path(const JobConfig& config) {
  return config.ledger.path.empty() ? config.job.output_dir / "ledger.db" : config.ledger.path;
}

// Atomically (durable_file.h): a worker reading the file while the
// coordinator starts sees a whole key, never part of one.
Status publish_public_key(const PublicKey& key, const std::filesystem::path& path) {
  const std::string line = to_hex(key) + '\n';
  const std::string_view parts[] = {line};
  return write_file_atomically(path, parts);
}

}  // namespace

Result<FileLock> lock_job(const JobConfig& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.job.output_dir, ec);
  if (ec) {
    return Status::io_error("cannot create output directory " + config.job.output_dir.string() + ": " +
                            ec.message());
  }
  return FileLock::acquire(config.job.output_dir / "coordinator.lock",
                           "the job in " + config.job.output_dir.string());
}

Result<std::unique_ptr<Ledger>> open_job_ledger(const JobConfig& config, const Identity& identity) {
  return Ledger::open(job_ledger_path(config), identity);
}

Result<Identity> load_coordinator_identity(const JobConfig& config, Logger& log) {
  const std::filesystem::path path =
      config.ledger.key.empty() ? config.job.output_dir / "coordinator.key" : config.ledger.key;
  if (!std::filesystem::exists(path)) {
    Identity made = Identity::generate();
    COHORT_RETURN_IF_ERROR(write_key_pair(made, path));
    log.info("made a new coordinator key " + path.string());
  }
  return read_identity(path);
}

namespace {

// True at each coordinate of `model`'s layout that the optimizer does not
// train (buffers, frozen parameters); undefined when there is none.
at::Tensor buffer_coordinates(const Model& model) {
  const std::vector<bool>& trainable = model.trainable();
  if (std::all_of(trainable.begin(), trainable.end(), [](bool t) { return t; })) return {};
  std::vector<at::Tensor> parts;
  for (size_t i = 0; i < trainable.size(); ++i) {
    parts.push_back(at::full({model.layout().tensors[i].numel()}, !trainable[i], at::kBool));
  }
  return at::cat(parts);
}

}  // namespace

Status Coordinator::Impl::init_model() {
  if (config_.model.path.empty()) {
    model_source_ = builtin_model_source(config_.model.name);
    COHORT_ASSIGN_OR_RETURN(model_, Model::create(config_.model.name, config_.job.seed));
    return Status();
  }
  const std::string origin = config_.model.path.string();
  COHORT_ASSIGN_OR_RETURN(model_source_, read_model_archive(config_.model.path));
  COHORT_ASSIGN_OR_RETURN(model_, Model::load_torchscript(*model_source_.archive, origin));
  const int64_t probe = std::min<int64_t>(kForwardProbeSamples, test_set_.size());
  COHORT_RETURN_IF_ERROR(check_forward_fits(*model_, test_set_.images.narrow(0, 0, probe),
                                            test_set_.labels.narrow(0, 0, probe), origin));
  log_.info("model: TorchScript archive " + origin + " (" + std::to_string(model_source_.archive->size()) +
            " bytes, BLAKE2b-256 " + to_hex(model_source_.archive_digest) + ", " +
            std::to_string(model_->parameter_count()) + " values in " +
            std::to_string(model_->layout().tensors.size()) + " tensors)");
  return Status();
}

Status Coordinator::Impl::init_policy(const RuleRegistry& rules) {
  RootSamples root;
  root.model = model_source_;
  if (config_.aggregation.root_samples > 0) {
    COHORT_ASSIGN_OR_RETURN(root.data, load_root_set(config_, config_.aggregation.root_samples));
  }
  COHORT_ASSIGN_OR_RETURN(policy_, make_round_policy(config_, rules, std::move(root), buffer_coordinates(*model_)));
  log_.info("aggregation: " + policy_->description() + " (f = " + std::to_string(config_.aggregation.f) + ")");
  if (config_.attack.byzantine > 0) {
    log_.warn("simulating " + std::to_string(config_.attack.byzantine) + " Byzantine update(s) per round (" +
              config_.attack.name + ")");
  }
  return Status();
}

Result<Checkpoint> Coordinator::Impl::resume_from_checkpoint() {
  COHORT_ASSIGN_OR_RETURN(Checkpoint checkpoint, read_checkpoint(checkpoint_path()));
  if (checkpoint.model_name != config_.model.name || checkpoint.layout != model_->layout()) {
    return Status::failed_precondition(checkpoint_path().string() + " holds a '" + checkpoint.model_name +
                                       "' model; this job trains '" + config_.model.name + "'");
  }
  if (checkpoint.model_archive != model_source_.archive_digest) {
    return Status::failed_precondition(checkpoint_path().string() + " was trained from model archive " +
                                       to_hex(checkpoint.model_archive).substr(0, 16) + ", not from " +
                                       config_.model.path.string() + " (" +
                                       to_hex(model_source_.archive_digest).substr(0, 16) + ")");
  }
  if (!checkpoint.job_name.empty() &&
      (checkpoint.job_name != config_.job.name || checkpoint.job_seed != config_.job.seed)) {
    return Status::failed_precondition(
        checkpoint_path().string() + " belongs to job '" + checkpoint.job_name + "' (seed " +
        std::to_string(checkpoint.job_seed) + "), not to job '" + config_.job.name + "' (seed " +
        std::to_string(config_.job.seed) + "): start afresh (cohort coordinator --fresh) or use another "
        "job.output_dir");
  }
  // Checkpoints from before the server optimizer was kept all stepped with sgd.
  const std::string stepped_with = checkpoint.server_optimizer.empty() ? "sgd" : checkpoint.server_optimizer;
  if (stepped_with != config_.aggregation.server_optimizer) {
    return Status::failed_precondition(checkpoint_path().string() + " was stepped with server optimizer '" +
                                       stepped_with + "', this job asks for '" +
                                       config_.aggregation.server_optimizer +
                                       "': resume with the same one, or start afresh (cohort coordinator --fresh)");
  }
  global_ = checkpoint.flat;
  if (Status s = policy_->restore({checkpoint.previous_aggregate, checkpoint.server_state}); !s.ok()) {
    return Status::corruption(checkpoint_path().string() + ": " + s.message());
  }
  first_round_ = static_cast<int>(checkpoint.round) + 1;
  workers_.reserve_indices(checkpoint.workers);
  carried_momentum_ = {checkpoint.carried_momentum.begin(), checkpoint.carried_momentum.end()};
  resumed_summary_.rounds_completed = static_cast<int>(checkpoint.round);
  resumed_summary_.test_accuracy = checkpoint.test_accuracy;
  resumed_summary_.test_loss = checkpoint.test_loss;
  log_.info("resuming after round " + std::to_string(checkpoint.round) + " from " +
            checkpoint_path().string() +
            (checkpoint.previous_aggregate.defined() ? " (with the aggregator's state)" : ""));
  return checkpoint;
}

Status Coordinator::Impl::start_afresh() {
  COHORT_RETURN_IF_ERROR(settlement_->start_afresh());
  return write_file_atomically(metrics_path(), {});
}

Status Coordinator::Impl::recover(const Checkpoint& checkpoint) {
  COHORT_ASSIGN_OR_RETURN(std::vector<Receipt> receipts,
                          settlement_->recover(checkpoint.round, checkpoint.settlement));
  return complete_metrics(checkpoint, receipts);
}

Status Coordinator::Impl::complete_metrics(const Checkpoint& checkpoint, const std::vector<Receipt>& receipts) {
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

Status Coordinator::Impl::publish_identity() {
  const std::filesystem::path published = config_.job.output_dir / "coordinator.pub";
  COHORT_RETURN_IF_ERROR(publish_public_key(public_key(), published));
  log_.info("coordinator key " + to_hex(public_key()) + " (in " + published.string() +
            "; workers pass it to --coordinator-key)");
  return Status();
}

Status Coordinator::Impl::init_audits_and_ledger(bool fresh) {
  COHORT_ASSIGN_OR_RETURN(train_split_, load_train_split(config_));
  AuditOptions audit;
  audit.model = model_source_;
  audit.params.segment_steps = static_cast<uint32_t>(config_.proof.segment_steps);
  audit.params.profile =
      config_.proof.profile == "tolerant" ? DeterminismProfile::kTolerant : DeterminismProfile::kCpuExact;
  audit.params.tolerance = config_.proof.tolerance;
  audit.challenge.audit_probability = config_.proof.audit_probability;
  audit.challenge.segments_per_audit = static_cast<uint32_t>(config_.proof.segments_per_audit);
  audit.reveal_seconds = config_.proof.reveal_seconds;
  audit.threads = config_.proof.verifier_threads;
  auditor_ = std::make_unique<Auditor>(std::move(audit), train_split_);
  LedgerSettlementOptions ledger;
  ledger.own_ledger = config_.ledger.path.empty();
  ledger.path = job_ledger_path(config_);
  ledger.fresh = fresh;
  ledger.checkpoint = checkpoint_path();
  ledger.reward_per_round = config_.ledger.reward_per_round;
  ledger.min_stake = config_.ledger.min_stake;
  ledger.registration_grant = config_.ledger.registration_grant;
  ledger.slash_fraction = config_.ledger.slash_fraction;
  COHORT_ASSIGN_OR_RETURN(settlement_, ledger_settlement(ledger, std::move(ledger_), *identity_, log_));
  log_.info("proof of learning: segments of " + std::to_string(config_.proof.segment_steps) +
            " steps, audit probability " + std::to_string(config_.proof.audit_probability) + ", ledger " +
            ledger.path.string());
  return Status();
}

}  // namespace cohort
