#include "dispatch.h"

#include <chrono>
#include <utility>
#include <variant>

#include "cohort/job_data.h"
#include "cohort/partition.h"
#include "cohort/tensor_codec.h"

namespace cohort {
namespace {

int64_t unix_ms_now() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

bool trains_archive(const Task& task) { return task.model_name == kTorchScriptModelName; }

// What models_, momentum_ and the momentum store are keyed by: the built-in's
// name, or "torchscript-<digest>" for an archive.
std::string model_key(const Task& task) {
  return trains_archive(task) ? task.model_name + "-" + to_hex(task.model_archive) : task.model_name;
}

}  // namespace

Dispatcher::Dispatcher(CoordinatorSession& session, const WorkerOptions& options, const Identity& identity,
                       WorkerData data, at::Device device, ReceiptStore receipts, ModelArchives archives,
                       Logger& log)
    : session_(session),
      options_(options),
      identity_(identity),
      data_(std::move(data)),
      device_(device),
      log_(log),
      prover_(identity, options.state_dir, options.misbehaviour),
      momentum_store_(options.state_dir / "momentum"),
      receipts_(std::move(receipts)),
      archives_(std::move(archives)) {}

// ------------------------------------------------------------ the loop

Result<WorkerSummary> Dispatcher::run(std::stop_token stop) {
  while (true) {
    if (stop.stop_requested() && !awaiting_result()) {
      (void)session_.send({Bye{"the worker was asked to stop"}});
      summary_.exit_reason = "stopped on request";
      return summary_;
    }
    COHORT_RETURN_IF_ERROR(session_.register_again_if_reconnected());
    const std::string idle_timeout = std::to_string(options_.idle_timeout.count() / 1000) + " s";
    switch (session_.silence()) {
      case CoordinatorSession::Silence::kNone:
        break;
      case CoordinatorSession::Silence::kNeverAnswered:
        return Status::deadline_exceeded("no coordinator answered at " + options_.coordinator +
                                         " within --idle-timeout (" + idle_timeout + ")");
      case CoordinatorSession::Silence::kFellSilent:
        summary_.exit_reason = "no message from the coordinator for " + idle_timeout;
        return summary_;
    }
    std::optional<Incoming> incoming = session_.receive();
    if (!incoming) continue;
    if (!incoming->message.ok()) {
      log_.warn("ignoring a malformed message: " + incoming->message.status().to_string());
      continue;
    }
    COHORT_ASSIGN_OR_RETURN(const bool over, dispatch(*incoming, stop));
    if (over) return summary_;
  }
}

Result<bool> Dispatcher::dispatch(Incoming& incoming, const std::stop_token& stop) {
  Message& message = incoming.message.value();
  if (auto* task = std::get_if<Task>(&message)) {
    if (stop.stop_requested()) {
      decline(*task, "the worker is stopping");
      return false;
    }
    if (park_until_archive_arrives(*task, incoming.payload)) return false;
    bool ok = serve(*task, std::move(incoming.payload)).ok();
    ++(ok ? summary_.tasks_completed : summary_.tasks_failed);
  } else if (auto* archive = std::get_if<ModelArchiveMessage>(&message)) {
    COHORT_ASSIGN_OR_RETURN(const bool ok, serve_parked(*archive, std::move(incoming.payload)));
    ++(ok ? summary_.tasks_completed : summary_.tasks_failed);
  } else if (auto* challenge = std::get_if<ChallengeMessage>(&message)) {
    if (Status s = answer(*challenge); !s.ok()) {
      log_.warn("cannot answer the challenge for task " + std::to_string(challenge->task_id) + ": " + s.to_string());
    }
  } else if (auto* welcomed = std::get_if<Welcome>(&message)) {
    COHORT_ASSIGN_OR_RETURN(std::vector<Receipt> kept, welcome(*welcomed));
    for (const Receipt& receipt : kept) count(receipt);
    log_.info("registered as worker " + std::to_string(welcomed->worker_index) + " of job '" + welcomed->job_name +
              "'" + (kept.empty() ? "" : "; " + std::to_string(kept.size()) + " receipt(s) it had missed kept"));
  } else if (auto* result = std::get_if<RoundResult>(&message)) {
    log_.info("round " + std::to_string(result->round) + " closed: update " +
              (result->accepted ? "accepted" : "rejected (" + result->reason + ")") + ", test accuracy " +
              std::to_string(result->test_accuracy).substr(0, 6));
    if (std::optional<Receipt> receipt = settle(*result)) count(*receipt);
  } else if (auto* error = std::get_if<ErrorReply>(&message)) {
    log_.warn("coordinator error (" + std::string(error_code_name(error->code)) + "): " + error->message);
    if (error->code == ErrorCode::kUnsupportedVersion || error->code == ErrorCode::kForbidden) {
      return Status::failed_precondition("coordinator rejected us: " + error->message);
    }
    // The coordinator restarted and forgot this connection.
    if (error->code == ErrorCode::kNotRegistered) COHORT_RETURN_IF_ERROR(session_.register_again());
  } else if (auto* bye = std::get_if<Bye>(&message)) {
    summary_.exit_reason = bye->reason;
    return true;
  } else {
    log_.warn("ignoring an unexpected " + std::string(message_kind(message)) + " message");
  }
  return false;
}

// ------------------------------------------------- registration, receipts

Status Dispatcher::set_coordinator(const PublicKey& key) {
  if (options_.coordinator_key && *options_.coordinator_key != key) {
    return Status::failed_precondition("the coordinator's key " + to_hex(key) + " is not the expected " +
                                       to_hex(*options_.coordinator_key));
  }
  coordinator_key_ = key;
  log_.info("coordinator key " + to_hex(key));
  return Status();
}

Result<std::vector<Receipt>> Dispatcher::welcome(const Welcome& welcome) {
  COHORT_RETURN_IF_ERROR(set_coordinator(welcome.coordinator_key));
  awaiting_round_.reset();
  parked_.reset();  // its archive will not come: that session is gone
  std::vector<Receipt> kept;
  for (const Receipt& receipt : welcome.receipts) {
    if (std::optional<Receipt> new_one = keep(receipt)) kept.push_back(std::move(*new_one));
  }
  return kept;
}

std::optional<Receipt> Dispatcher::settle(const RoundResult& result) {
  if (awaiting_round_ && result.round >= *awaiting_round_) awaiting_round_.reset();
  if (!result.receipt) return std::nullopt;
  return keep(*result.receipt);
}

std::optional<Receipt> Dispatcher::keep(const Receipt& receipt) {
  if (!coordinator_key_ || receipt.coordinator != *coordinator_key_ || receipt.worker != identity_.public_key() ||
      !verify_receipt(receipt)) {
    log_.warn("ignoring a receipt that is not signed by the coordinator for this worker");
    return std::nullopt;
  }
  if (receipts_.holds(receipt.task_id)) return std::nullopt;
  prover_.settle(receipt.task_id);
  if (Status written = receipts_.add(receipt); !written.ok()) {
    log_.warn("cannot keep the receipt: " + written.to_string());
  }
  log_.info("task " + std::to_string(receipt.task_id) + " settled: " + std::string(verdict_name(receipt.verdict)) +
            ", reward " + std::to_string(receipt.reward) + " micro-tokens" +
            (receipt.slashed > 0 ? ", slashed " + std::to_string(receipt.slashed) : "") +
            (receipt.reason.empty() ? "" : " (" + receipt.reason + ")"));
  return receipt;
}

void Dispatcher::count(const Receipt& receipt) {
  ++summary_.receipts;
  summary_.reward += receipt.reward;
}

// ------------------------------------------------------------ challenges

Status Dispatcher::answer(const ChallengeMessage& challenge) {
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
  return session_.send({std::move(reveal), states.chunks()});
}

// ------------------------------------------------------------ tasks

Status Dispatcher::serve(const Task& task, Frames payload) {
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

bool Dispatcher::park_until_archive_arrives(const Task& task, Frames& payload) {
  // Unsigned or forbidden: refused when served. Held: served at once.
  if (!trains_archive(task) || !signed_by_coordinator(task) || !archives_.permit(task.model_archive).ok()) {
    return false;
  }
  if (models_.contains(model_key(task)) || archives_.holds(task.model_archive)) return false;
  if (parked_) {
    // A newer task replaces one still waiting (the coordinator moved on).
    decline(parked_->task, "a newer task arrived while its model archive was on its way");
  }
  log_.info("task " + std::to_string(task.task_id) + " trains model archive " +
            to_hex(task.model_archive).substr(0, 16) + ", which this worker does not hold: fetching it");
  if (Status sent = session_.send({ModelRequest{task.model_archive}}); !sent.ok()) {
    log_.warn("cannot ask for the model archive: " + sent.to_string());
    return false;
  }
  parked_ = ParkedTask{task, std::move(payload)};
  return true;
}

Result<bool> Dispatcher::serve_parked(const ModelArchiveMessage& archive, Frames payload) {
  if (!parked_) {
    log_.warn("ignoring a model archive no task is waiting for");
    return false;
  }
  ParkedTask parked = std::move(*parked_);
  parked_.reset();
  Result<ModelSource> received = received_archive(archive, payload, parked.task.model_archive);
  if (!received.ok()) {
    (void)refuse(parked.task, error_code_for(received.status()), received.status());
    return false;
  }
  if (Status kept = archives_.keep(*received); !kept.ok()) {
    log_.warn("cannot cache the model archive (it will be fetched again): " + kept.to_string());
  }
  log_.info("received model archive " + to_hex(archive.archive).substr(0, 16) + " (" +
            std::to_string(archive.total_bytes) + " bytes)");
  // Built from the bytes at hand: serve() then finds it without reading the cache.
  if (Result<Model*> model = add_model(parked.task, *received); !model.ok()) {
    (void)refuse(parked.task, error_code_for(model.status()), model.status());
    return false;
  }
  return serve(parked.task, std::move(parked.payload)).ok();
}

void Dispatcher::decline(const Task& task, std::string why) {
  (void)refuse(task, ErrorCode::kUnavailable, Status::unavailable(std::move(why)));
}

bool Dispatcher::signed_by_coordinator(const Task& task) const {
  return coordinator_key_ &&
         verify_signature(*coordinator_key_, task_signing_bytes(task, identity_.public_key()), task.signature);
}

Status Dispatcher::refuse(const Task& task, ErrorCode code, Status status) {
  log_.warn("task " + std::to_string(task.task_id) + " (round " + std::to_string(task.round) +
            ") failed: " + status.to_string());
  (void)session_.send({ErrorReply{code, status.message(), task.round, task.task_id}});
  return status;
}

Status Dispatcher::check_data(const Task& task) {
  // An archive's model is checked against the data by running it (model_for).
  if (!trains_archive(task) && !fitting_models_.contains(task.model_name)) {
    COHORT_ASSIGN_OR_RETURN(ModelInput input, model_input(task.model_name));
    COHORT_RETURN_IF_ERROR(check_fits(*data_.data, input, "model '" + task.model_name + "'", data_.files));
    fitting_models_.insert(task.model_name);
  }
  if (task.proof.enabled() && task.proof.dataset_digest != data_.digest) {
    return Status::failed_precondition(
        "the task refers to other training data than this worker holds (dataset digest " +
        to_hex(task.proof.dataset_digest).substr(0, 12) + ", ours " + to_hex(data_.digest).substr(0, 12) +
        "); proof of learning needs the announced data");
  }
  return Status();
}

Status Dispatcher::try_serve(const Task& task, Frames payload) {
  if (task.deadline_unix_ms > 0 && unix_ms_now() > task.deadline_unix_ms) {
    return Status::deadline_exceeded("the task's deadline passed before training started");
  }
  COHORT_RETURN_IF_ERROR(check_data(task));
  COHORT_ASSIGN_OR_RETURN(Model * model, model_for(task));
  COHORT_ASSIGN_OR_RETURN(DecodedPayload start,
                          decode_payload(task.model, std::move(payload), PayloadLimits{}, &model->layout()));
  COHORT_RETURN_IF_ERROR(model->set_flat_parameters(start.flat));
  COHORT_ASSIGN_OR_RETURN(const TensorDataset* shard, shard_for(task.data));

  MomentumBuffers* momentum = task.hyper.keep_momentum ? &momentum_[model_key(task)] : nullptr;
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
      COHORT_RETURN_IF_ERROR(momentum_store_.keep(model_key(task), commitment->last.leaf.momentum, *momentum));
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
                          encode_payload(model->layout(), trained.delta, options_.chunk_bytes, options_.wire_dtype));
  Update update;
  update.round = task.round;
  update.task_id = task.task_id;
  update.num_samples = trained.samples_seen;
  update.metrics = trained.metrics;
  update.base_model_hash = task.model.digest;
  update.delta = encoded.header();
  update.commitment = std::move(commitment);
  update.signature = identity_.sign(update_signing_bytes(update, identity_.public_key()));
  log_.info("round " + std::to_string(task.round) + ": trained " + std::to_string(trained.metrics.steps) +
            " steps on " + std::to_string(shard->size()) + " samples in " +
            std::to_string(trained.metrics.train_seconds).substr(0, 5) + " s, loss " +
            std::to_string(trained.metrics.local_loss).substr(0, 6));
  return session_.send({std::move(update), encoded.chunks()});
}

MomentumBuffers Dispatcher::momentum_named_by(const Task& task, const Model& model) {
  Result<MomentumBuffers> found =
      momentum_store_.find(model_key(task), model.layout(), task.proof.start_momentum, device_);
  if (found.ok()) return std::move(*found);
  log_.warn("task " + std::to_string(task.task_id) + " continues momentum " +
            to_hex(task.proof.start_momentum).substr(0, 12) + ", which is not kept here (" +
            found.status().message() + "): starting from fresh momentum");
  return {};
}

Result<Model*> Dispatcher::model_for(const Task& task) {
  auto it = models_.find(model_key(task));
  if (it != models_.end()) return it->second.get();
  if (!trains_archive(task)) return add_model(task, builtin_model_source(task.model_name));
  COHORT_RETURN_IF_ERROR(archives_.permit(task.model_archive));
  COHORT_ASSIGN_OR_RETURN(std::optional<ModelSource> held, archives_.find(task.model_archive));
  if (!held) {
    return Status::unavailable("model archive " + to_hex(task.model_archive).substr(0, 16) + " has not arrived");
  }
  return add_model(task, *held);
}

Result<Model*> Dispatcher::add_model(const Task& task, const ModelSource& source) {
  // The seed does not matter: every task overwrites the parameters.
  COHORT_ASSIGN_OR_RETURN(auto model, make_model(source, /*seed=*/0));
  COHORT_RETURN_IF_ERROR(model->to_device(device_.str()));
  if (source.is_archive()) {
    const TensorDataset probe = to_tensors(first_samples(*data_.data, kForwardProbeSamples));
    COHORT_RETURN_IF_ERROR(check_forward_fits(*model, probe.images, probe.labels,
                                              "model archive " + to_hex(task.model_archive).substr(0, 16) +
                                                  " on " + data_.files.images.string()));
  }
  return models_.emplace(model_key(task), std::move(model)).first->second.get();
}

Result<const TensorDataset*> Dispatcher::shard_for(const DataSelection& selection) {
  if (shard_ && selection == *shard_selection_) return &*shard_;
  if (selection.part_index >= selection.num_parts) {
    return Status::invalid_argument("part index " + std::to_string(selection.part_index) + " out of " +
                                    std::to_string(selection.num_parts));
  }
  PartitionSpec spec{selection.scheme, static_cast<int>(selection.num_parts), selection.alpha, selection.gamma,
                     selection.seed};
  COHORT_ASSIGN_OR_RETURN(auto parts, partition_indices(data_.data->labels, spec));
  TensorDataset shard = to_tensors(select_samples(*data_.data, parts[selection.part_index]));
  shard.images = shard.images.to(device_);
  shard.labels = shard.labels.to(device_);
  shard_ = std::move(shard);
  shard_selection_ = selection;
  return &*shard_;
}

}  // namespace cohort
