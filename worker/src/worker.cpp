#include "cohort/worker.h"

#include <ATen/Parallel.h>
#include <ATen/ops/from_blob.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <stop_token>
#include <tuple>

#include "cohort/durable_file.h"
#include "cohort/endpoint.h"
#include "cohort/models.h"
#include "cohort/partition.h"
#include "cohort/receipt.h"
#include "cohort/tensor_codec.h"
#include "cohort/training.h"
#include "cohort/transport.h"
#include "cohort/version.h"
#include "cohort/wire.h"
#include "connection_watches.h"
#include "momentum_store.h"
#include "prover.h"

namespace cohort {
namespace {

int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

DatasetInfo describe(const WorkerOptions& options, const LabeledImages& data) {
  std::set<uint8_t> classes(data.labels.begin(), data.labels.end());
  return DatasetInfo{options.images.empty() ? "fashion-mnist" : "idx",
                     static_cast<uint64_t>(data.count), static_cast<uint32_t>(classes.size())};
}

constexpr const char* kReceiptsFile = "receipts.jsonl";

// How long the worker waits for a message before it looks at its stop
// token and its connection again.
constexpr std::chrono::milliseconds kPollInterval{200};

// The task ids of the receipts in `state_dir`/receipts.jsonl (a line torn
// by a crash is cut off first).
Result<std::set<uint64_t>> read_kept_receipts(const std::filesystem::path& state_dir) {
  const std::filesystem::path path = state_dir / kReceiptsFile;
  COHORT_ASSIGN_OR_RETURN(std::vector<std::string> lines, read_complete_lines(path));
  std::set<uint64_t> task_ids;
  for (const std::string& line : lines) {
    Result<Receipt> receipt = parse_receipt_json(line);
    if (!receipt.ok()) {
      return Status::corruption(path.string() + ": a line that is not a receipt (" + receipt.status().message() +
                                "): " + line.substr(0, 80));
    }
    task_ids.insert(receipt->task_id);
  }
  return task_ids;
}


// The IDX files a worker trains on: a data holder's own pair, or the
// training split of an MNIST-format directory.
Result<IdxFiles> worker_data_files(const WorkerOptions& options) {
  if (options.images.empty() != options.labels.empty()) {
    return Status::invalid_argument("--images and --labels must be given together");
  }
  if (!options.images.empty()) return IdxFiles{options.images, options.labels};
  return find_mnist_format_files(options.data_dir, Split::kTrain);
}

// Everything a worker keeps between tasks: its data, the shard the last task
// selected, one model per architecture, (when tasks ask for it) the SGD
// momentum of its previous task, and the commitments awaiting settlement.
class Session {
 public:
  // `kept_receipts`: task ids of the receipts already in receipts.jsonl.
  Session(zmq::socket_t& socket, const WorkerOptions& options, const Identity& identity, IdxFiles data_files,
          LabeledImages data, Digest data_digest, at::Device device, std::set<uint64_t> kept_receipts,
          Logger& log)
      : socket_(socket),
        options_(options),
        identity_(identity),
        data_files_(std::move(data_files)),
        data_(std::move(data)),
        data_digest_(data_digest),
        device_(device),
        log_(log),
        prover_(identity, options.state_dir, options.misbehaviour),
        momentum_store_(options.state_dir / "momentum"),
        kept_receipts_(std::move(kept_receipts)) {}

  // An update was sent and its round has not closed: a challenge may still
  // come for it, so a stopping worker stays.
  bool awaiting_result() const { return awaiting_round_.has_value(); }

  // Accepts the coordinator's key from its Welcome, unless another one was
  // pinned. Errors: a pinned key that differs.
  Status set_coordinator(const PublicKey& key) {
    if (options_.coordinator_key && *options_.coordinator_key != key) {
      return Status::failed_precondition("the coordinator's key " + to_hex(key) +
                                         " is not the expected " + to_hex(*options_.coordinator_key));
    }
    coordinator_key_ = key;
    log_.info("coordinator key " + to_hex(key));
    return Status();
  }

  // Trains on one task and sends the update. Errors are reported to the
  // coordinator and returned.
  Status serve(const Task& task, Frames payload) {
    if (!signed_by_coordinator(task)) {
      return refuse(task, ErrorCode::kBadSignature,
                    Status::failed_precondition("the task does not carry the coordinator's signature"));
    }
    // A LibTorch error in training (or anything else thrown) fails this
    // task, reported to the coordinator; the worker goes on serving.
    Status status = catching_exceptions("task " + std::to_string(task.task_id),
                                        [&] { return try_serve(task, std::move(payload)); });
    if (status.ok()) awaiting_round_ = task.round;
    return status.ok() ? status : refuse(task, error_code_for(status), status);
  }

  // Refuses a task without training it (the worker is stopping).
  void decline(const Task& task, std::string why) {
    (void)refuse(task, ErrorCode::kUnavailable, Status::unavailable(std::move(why)));
  }

  // A (new) registration: whatever was in flight belongs to a coordinator
  // session that is gone; the Welcome's receipts are kept.
  // Returns the receipts that were new.
  Result<std::vector<Receipt>> welcome(const Welcome& welcome) {
    COHORT_RETURN_IF_ERROR(set_coordinator(welcome.coordinator_key));
    awaiting_round_.reset();
    std::vector<Receipt> kept;
    for (const Receipt& receipt : welcome.receipts) {
      if (std::optional<Receipt> new_one = keep(receipt)) kept.push_back(std::move(*new_one));
    }
    return kept;
  }

  // Answers a challenge: reveals the challenged segments, or nothing when
  // the task was not audited.
  Status answer(const ChallengeMessage& challenge) {
    if (!coordinator_key_ ||
        !verify_signature(*coordinator_key_, challenge_signing_bytes(challenge, identity_.public_key()),
                          challenge.signature)) {
      return Status::failed_precondition("a challenge without the coordinator's signature");
    }
    COHORT_ASSIGN_OR_RETURN(std::optional<Prover::Answer> answer, prover_.answer(challenge));
    if (!answer) {
      log_.info("task " + std::to_string(challenge.task_id) + " was not drawn for audit");
      return Status();
    }
    if (options_.misbehaviour != nullptr) options_.misbehaviour->before_reveal(challenge.task_id, log_);
    COHORT_ASSIGN_OR_RETURN(EncodedPayload states,
                            encode_payload(answer->states.layout, answer->states.flat, options_.chunk_bytes));
    Reveal& reveal = answer->reveal;
    reveal.states = states.header();
    reveal.signature = identity_.sign(reveal_signing_bytes(reveal, identity_.public_key()));
    log_.info("task " + std::to_string(challenge.task_id) + " audited: revealing " +
              std::to_string(reveal.segments.size()) + " segment(s)");
    return send_message(socket_, {std::move(reveal), states.chunks()}).status();
  }

  // The round closed: keeps the receipt it carries, if any. Returns the
  // receipt when it is valid and new.
  std::optional<Receipt> settle(const RoundResult& result) {
    if (awaiting_round_ && result.round >= *awaiting_round_) awaiting_round_.reset();
    if (!result.receipt) return std::nullopt;
    return keep(*result.receipt);
  }

 private:
  // Checks a settlement receipt, appends it to receipts.jsonl unless that
  // holds it already (a Welcome repeats receipts), and drops the task's
  // checkpoints. Returns it when it was new.
  std::optional<Receipt> keep(const Receipt& receipt) {
    if (!coordinator_key_ || receipt.coordinator != *coordinator_key_ ||
        receipt.worker != identity_.public_key() || !verify_receipt(receipt)) {
      log_.warn("ignoring a receipt that is not signed by the coordinator for this worker");
      return std::nullopt;
    }
    if (kept_receipts_.contains(receipt.task_id)) return std::nullopt;
    prover_.settle(receipt.task_id);
    std::error_code ignored;  // a directory that cannot be made fails the write below
    std::filesystem::create_directories(options_.state_dir, ignored);
    const std::filesystem::path path = options_.state_dir / kReceiptsFile;
    if (Status written = append_line_durably(path, receipt_json(receipt)); !written.ok()) {
      log_.warn("cannot keep the receipt: " + written.to_string());
    }
    kept_receipts_.insert(receipt.task_id);
    log_.info("task " + std::to_string(receipt.task_id) + " settled: " +
              std::string(verdict_name(receipt.verdict)) + ", reward " + std::to_string(receipt.reward) +
              " micro-tokens" + (receipt.slashed > 0 ? ", slashed " + std::to_string(receipt.slashed) : "") +
              (receipt.reason.empty() ? "" : " (" + receipt.reason + ")"));
    return receipt;
  }

  // The coordinator's signature over the task, bound to this worker's key.
  bool signed_by_coordinator(const Task& task) const {
    return coordinator_key_ &&
           verify_signature(*coordinator_key_, task_signing_bytes(task, identity_.public_key()), task.signature);
  }

  Status refuse(const Task& task, ErrorCode code, Status status) {
    log_.warn("task " + std::to_string(task.task_id) + " (round " + std::to_string(task.round) +
              ") failed: " + status.to_string());
    (void)send_message(socket_, {ErrorReply{code, status.message(), task.round, task.task_id}});
    return status;
  }

  Status check_data(const Task& task) {
    if (!fitting_models_.contains(task.model_name)) {
      COHORT_ASSIGN_OR_RETURN(ModelInput input, model_input(task.model_name));
      COHORT_RETURN_IF_ERROR(
          check_fits(data_, input, "model '" + task.model_name + "'", data_files_));
      fitting_models_.insert(task.model_name);
    }
    if (task.proof.enabled() && task.proof.dataset_digest != data_digest_) {
      return Status::failed_precondition(
          "the task refers to other training data than this worker holds (dataset digest " +
          to_hex(task.proof.dataset_digest).substr(0, 12) + ", ours " + to_hex(data_digest_).substr(0, 12) +
          "); proof of learning needs the announced data");
    }
    return Status();
  }

  Status try_serve(const Task& task, Frames payload) {
    if (task.deadline_unix_ms > 0 && unix_ms_now() > task.deadline_unix_ms) {
      return Status::deadline_exceeded("the task's deadline passed before training started");
    }
    COHORT_RETURN_IF_ERROR(check_data(task));
    COHORT_ASSIGN_OR_RETURN(Model * model, model_for(task.model_name));
    COHORT_ASSIGN_OR_RETURN(
        DecodedPayload start,
        decode_payload(task.model, std::move(payload), PayloadLimits{}, &model->layout()));
    COHORT_RETURN_IF_ERROR(model->set_flat_parameters(start.flat));
    COHORT_ASSIGN_OR_RETURN(const TensorDataset* shard, shard_for(task.data));

    MomentumBuffers* momentum = task.hyper.keep_momentum ? &momentum_[task.model_name] : nullptr;
    if (momentum != nullptr && task.proof.start_momentum != Digest{}) {
      *momentum = momentum_named_by(task, *model);
    }
    LocalTraining trained;
    std::optional<UpdateCommitment> commitment;
    if (task.proof.enabled()) {
      COHORT_ASSIGN_OR_RETURN(Prover::Trained proven, prover_.train(task, *model, *shard, momentum));
      trained = std::move(proven.training);
      commitment = std::move(proven.commitment);
      if (momentum != nullptr) {
        COHORT_RETURN_IF_ERROR(momentum_store_.keep(task.model_name, commitment->last.leaf.momentum, *momentum));
      }
    } else {
      COHORT_ASSIGN_OR_RETURN(trained, train_locally(*model, *shard, task.hyper, task.seed, momentum));
    }
    // A signed non-finite update is slashed as fraud, so an honest worker
    // reports the failure instead of sending one.
    const bool sends_non_finite =
        options_.misbehaviour != nullptr && options_.misbehaviour->sends_non_finite_updates();
    if (!sends_non_finite && !all_finite(trained.delta)) {
      return Status::internal("training produced NaN or Inf parameters");
    }
    COHORT_ASSIGN_OR_RETURN(EncodedPayload encoded,
                            encode_payload(model->layout(), trained.delta, options_.chunk_bytes,
                                           options_.wire_dtype));
    Update update;
    update.round = task.round;
    update.task_id = task.task_id;
    update.num_samples = trained.samples_seen;
    update.metrics = trained.metrics;
    update.base_model_hash = task.model.digest;
    update.delta = encoded.header();
    update.commitment = std::move(commitment);
    update.signature = identity_.sign(update_signing_bytes(update, identity_.public_key()));
    log_.info("round " + std::to_string(task.round) + ": trained " +
              std::to_string(trained.metrics.steps) + " steps on " +
              std::to_string(shard->size()) + " samples in " +
              std::to_string(trained.metrics.train_seconds).substr(0, 5) + " s, loss " +
              std::to_string(trained.metrics.local_loss).substr(0, 6));
    return send_message(socket_, {std::move(update), encoded.chunks()}).status();
  }

  // The momentum buffers the task continues, from the store; fresh ones when
  // they are not kept (this worker restarted without its state directory):
  // the coordinator accepts a restart from fresh momentum.
  MomentumBuffers momentum_named_by(const Task& task, const Model& model) {
    Result<MomentumBuffers> found =
        momentum_store_.find(task.model_name, model.layout(), task.proof.start_momentum, device_);
    if (found.ok()) return std::move(*found);
    log_.warn("task " + std::to_string(task.task_id) + " continues momentum " +
              to_hex(task.proof.start_momentum).substr(0, 12) + ", which is not kept here (" +
              found.status().message() + "): starting from fresh momentum");
    return {};
  }

  Result<Model*> model_for(const std::string& name) {
    auto it = models_.find(name);
    if (it != models_.end()) return it->second.get();
    // The seed does not matter: every task overwrites the parameters.
    COHORT_ASSIGN_OR_RETURN(auto model, Model::create(name, /*seed=*/0));
    COHORT_RETURN_IF_ERROR(model->to_device(device_.str()));
    return models_.emplace(name, std::move(model)).first->second.get();
  }

  Result<const TensorDataset*> shard_for(const DataSelection& selection) {
    if (shard_ && selection == *shard_selection_) return &*shard_;
    if (selection.part_index >= selection.num_parts) {
      return Status::invalid_argument("part index " + std::to_string(selection.part_index) +
                                      " out of " + std::to_string(selection.num_parts));
    }
    PartitionSpec spec{selection.scheme, static_cast<int>(selection.num_parts), selection.alpha,
                       selection.gamma, selection.seed};
    COHORT_ASSIGN_OR_RETURN(auto parts, partition_indices(data_.labels, spec));
    TensorDataset shard = to_tensors(select_samples(data_, parts[selection.part_index]));
    shard.images = shard.images.to(device_);
    shard.labels = shard.labels.to(device_);
    shard_ = std::move(shard);
    shard_selection_ = selection;
    return &*shard_;
  }

  zmq::socket_t& socket_;
  const WorkerOptions& options_;
  const Identity& identity_;
  IdxFiles data_files_;
  LabeledImages data_;
  Digest data_digest_;
  at::Device device_;
  Logger& log_;
  Prover prover_;
  MomentumStore momentum_store_;
  std::optional<PublicKey> coordinator_key_;
  std::set<uint64_t> kept_receipts_;      // task ids in receipts.jsonl
  std::optional<uint32_t> awaiting_round_;  // round of the update sent last, until it closes
  std::set<std::string> fitting_models_;  // models the local data was checked against
  std::map<std::string, std::unique_ptr<Model>> models_;
  std::map<std::string, MomentumBuffers> momentum_;  // per model, for keep_momentum
  std::optional<TensorDataset> shard_;
  std::optional<DataSelection> shard_selection_;
};

// With CURVE the coordinator's key authenticates the server, so it must be
// known before connecting; a handshake that keeps failing is reported.
Status connect_to_coordinator(zmq::context_t& context, zmq::socket_t& socket, const WorkerOptions& options,
                              const Identity& identity, Logger& log) {
  COHORT_RETURN_IF_ERROR(check_endpoint(options.coordinator, EndpointUse::kConnect)
                             .with_context("the coordinator's address"));
  if (!options.curve) {
    try {
      socket.connect(options.coordinator);
    } catch (const zmq::error_t& e) {
      return Status::invalid_argument("cannot connect to '" + options.coordinator + "': " + e.what());
    }
    return Status();
  }
  COHORT_RETURN_IF_ERROR(make_curve_client(socket, identity, *options.coordinator_key));
  return connect_authenticated(context, socket, options.coordinator, options.idle_timeout, &log);
}


}  // namespace

Result<LabeledImages> load_worker_data(const WorkerOptions& options, Digest* digest) {
  COHORT_ASSIGN_OR_RETURN(const IdxFiles files, worker_data_files(options));
  COHORT_ASSIGN_OR_RETURN(LabeledImages data, load_idx_pair(files.images, files.labels));
  // Before it registers: data that fits no model would fail every task.
  COHORT_RETURN_IF_ERROR(check_fits(data, kBuiltinModelInput, "the models", files));
  // Of the data as loaded: a label-flipping worker claims the honest data
  // (and is caught by an audit, which re-executes with the true labels).
  if (digest != nullptr) *digest = digest_of(data);
  if (options.misbehaviour != nullptr) options.misbehaviour->on_data_loaded(data);
  return data;
}

std::filesystem::path default_state_dir(const PublicKey& key) {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  const std::filesystem::path base = cache != nullptr && *cache != '\0' ? std::filesystem::path(cache)
                                     : home != nullptr                   ? std::filesystem::path(home) / ".cache"
                                                                         : std::filesystem::temp_directory_path();
  return base / "cohort" / ("worker-" + to_hex(key).substr(0, 16));
}

Result<WorkerSummary> run_worker(zmq::context_t& context, const WorkerOptions& given_options,
                                 const Identity& identity, Logger& log, std::stop_token stop) {
  WorkerOptions options = given_options;
  if (options.curve && !options.coordinator_key) {
    return Status::invalid_argument(
        "the coordinator's public key is needed to connect with CURVE: pass --coordinator-key (hex, or the "
        "coordinator.pub file in the coordinator's output directory)");
  }
  // Created when first needed: jobs without proof of learning leave nothing.
  if (options.state_dir.empty()) options.state_dir = default_state_dir(identity.public_key());
  COHORT_ASSIGN_OR_RETURN(at::Device device, parse_device(options.device));
  Digest data_digest{};
  COHORT_ASSIGN_OR_RETURN(LabeledImages data, load_worker_data(options, &data_digest));

  COHORT_ASSIGN_OR_RETURN(std::set<uint64_t> kept_receipts, read_kept_receipts(options.state_dir));

  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 5000);
  // Watching from before the first connection, or (CURVE) from right after
  // the handshake that connect_to_coordinator waits for.
  std::optional<ConnectionWatch> connections;
  if (!options.curve) connections.emplace(context, socket, /*connected=*/false);
  COHORT_RETURN_IF_ERROR(connect_to_coordinator(context, socket, options, identity, log));
  if (options.curve) connections.emplace(context, socket, /*connected=*/true);

  Hello hello;
  hello.worker_key = identity.public_key();
  hello.device = DeviceInfo{device.is_cuda() ? DeviceKind::kCuda : DeviceKind::kCpu, device.str(),
                            static_cast<uint32_t>(at::get_num_threads()), 0};
  hello.dataset = describe(options, data);
  hello.software = kSoftwareVersion;
  COHORT_RETURN_IF_ERROR(send_message(socket, {hello}).status());
  log.info("connecting to " + options.coordinator + " with " + std::to_string(data.count) +
           " local samples on " + device.str());

  COHORT_ASSIGN_OR_RETURN(IdxFiles data_files, worker_data_files(options));
  Session session(socket, options, identity, std::move(data_files), std::move(data), data_digest, device,
                  std::move(kept_receipts), log);
  WorkerSummary summary;
  auto count_receipt = [&](const Receipt& receipt) {
    ++summary.receipts;
    summary.reward += receipt.reward;
  };
  AnswerWatch answers(options, log);
  auto last_heard = std::chrono::steady_clock::now();
  while (true) {
    if (stop.stop_requested() && !session.awaiting_result()) {
      (void)send_message(socket, {Bye{"the worker was asked to stop"}});
      summary.exit_reason = "stopped on request";
      return summary;
    }
    if (connections->reconnected()) {
      // A coordinator that restarted does not know this connection.
      log.info("reconnected to " + options.coordinator + ": registering again");
      COHORT_RETURN_IF_ERROR(send_message(socket, {hello}).status());
    }
    const auto idle = std::chrono::steady_clock::now() - last_heard;
    answers.check(idle);
    if (idle >= options.idle_timeout && !answers.ever_answered()) {
      return Status::deadline_exceeded("no coordinator answered at " + options.coordinator + " within --idle-timeout (" +
                                       std::to_string(options.idle_timeout.count() / 1000) + " s)");
    }
    if (idle >= options.idle_timeout) {
      summary.exit_reason = "no message from the coordinator for " +
                            std::to_string(options.idle_timeout.count() / 1000) + " s";
      return summary;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(options.idle_timeout - idle);
    auto incoming = receive_message(socket, /*has_routing_id=*/false, std::min(left, kPollInterval));
    if (!incoming) continue;
    last_heard = std::chrono::steady_clock::now();
    answers.answered();
    if (!incoming->message.ok()) {
      log.warn("ignoring a malformed message: " + incoming->message.status().to_string());
      continue;
    }
    Message& message = incoming->message.value();
    if (auto* task = std::get_if<Task>(&message)) {
      if (stop.stop_requested()) {
        session.decline(*task, "the worker is stopping");
        continue;
      }
      bool ok = session.serve(*task, std::move(incoming->payload)).ok();
      ++(ok ? summary.tasks_completed : summary.tasks_failed);
    } else if (auto* challenge = std::get_if<ChallengeMessage>(&message)) {
      if (Status s = session.answer(*challenge); !s.ok()) {
        log.warn("cannot answer the challenge for task " + std::to_string(challenge->task_id) + ": " +
                 s.to_string());
      }
    } else if (auto* welcome = std::get_if<Welcome>(&message)) {
      COHORT_ASSIGN_OR_RETURN(std::vector<Receipt> kept, session.welcome(*welcome));
      for (const Receipt& receipt : kept) count_receipt(receipt);
      log.info("registered as worker " + std::to_string(welcome->worker_index) + " of job '" +
               welcome->job_name + "'" +
               (kept.empty() ? "" : "; " + std::to_string(kept.size()) + " receipt(s) it had missed kept"));
    } else if (auto* result = std::get_if<RoundResult>(&message)) {
      log.info("round " + std::to_string(result->round) + " closed: update " +
               (result->accepted ? "accepted" : "rejected (" + result->reason + ")") +
               ", test accuracy " + std::to_string(result->test_accuracy).substr(0, 6));
      if (std::optional<Receipt> receipt = session.settle(*result)) count_receipt(*receipt);
    } else if (auto* error = std::get_if<ErrorReply>(&message)) {
      log.warn("coordinator error (" + std::string(error_code_name(error->code)) +
               "): " + error->message);
      if (error->code == ErrorCode::kUnsupportedVersion || error->code == ErrorCode::kForbidden) {
        return Status::failed_precondition("coordinator rejected us: " + error->message);
      }
      if (error->code == ErrorCode::kNotRegistered) {
        // The coordinator restarted and forgot this connection.
        COHORT_RETURN_IF_ERROR(send_message(socket, {hello}).status());
      }
    } else if (auto* bye = std::get_if<Bye>(&message)) {
      summary.exit_reason = bye->reason;
      return summary;
    } else {
      log.warn("ignoring an unexpected " + std::string(message_kind(message)) + " message");
    }
  }
}

}  // namespace cohort
