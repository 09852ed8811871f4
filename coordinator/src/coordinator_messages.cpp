#include "cohort/duration.h"
#include "cohort/number_text.h"
#include "cohort/reveal_payload.h"
#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "coordinator_impl.h"

namespace cohort {
namespace {

constexpr std::chrono::milliseconds kStopPollInterval{100};

}  // namespace

void Coordinator::Impl::receive_one(std::chrono::milliseconds timeout, RoundState* state) {
  // Short waits while a stop may come, so that it is seen promptly.
  if (stop_.stop_possible()) timeout = std::min(timeout, kStopPollInterval);
  std::optional<Incoming> incoming = channel_->receive(timeout, receive_limits());
  if (!incoming) return;
  if (state != nullptr) state->bytes_in += incoming->bytes;
  const std::string& routing_id = incoming->peer;
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

void Coordinator::Impl::dispatch(const std::string& routing_id, Message& message, Frames payload,
                                 RoundState* state) {
  if (auto* hello = std::get_if<Hello>(&message)) {
    register_worker(routing_id, *hello, state);
  } else if (auto* update = std::get_if<Update>(&message)) {
    handle_update(routing_id, *update, std::move(payload), state);
  } else if (auto* reveal = std::get_if<Reveal>(&message)) {
    handle_reveal(routing_id, *reveal, std::move(payload), state);
  } else if (auto* error = std::get_if<ErrorReply>(&message)) {
    handle_worker_error(routing_id, *error, state);
  } else if (auto* request = std::get_if<ModelRequest>(&message)) {
    send_model_archive(routing_id, *request, state);
  } else if (std::holds_alternative<Bye>(message)) {
    workers_.mark_gone(routing_id);
    OpenTask* task = state != nullptr ? task_sent_on(*state, routing_id) : nullptr;
    if (task != nullptr && task->stage() == TaskStage::kTraining) {
      close_task(*task, Verdict::kRejected, "the worker left");
    }
  } else {
    reject(routing_id, state,
           ErrorReply{ErrorCode::kMalformedMessage,
                      "a worker may not send a " + std::string(message_kind(message)) + " message",
                      0, 0});
  }
}

void Coordinator::Impl::send_model_archive(const std::string& routing_id, const ModelRequest& request,
                                           RoundState* state) {
  const WorkerEntry* worker = workers_.find(routing_id);
  if (worker == nullptr) {
    reject(routing_id, state, ErrorReply{ErrorCode::kNotRegistered, "say Hello before asking for the model", 0, 0});
    return;
  }
  if (!model_source_.is_archive() || request.archive != model_source_.archive_digest) {
    reject(routing_id, state,
           ErrorReply{ErrorCode::kUnknownTask,
                      "this job's model is not archive " + to_hex(request.archive).substr(0, 16), 0, 0});
    return;
  }
  int& sends = archive_sends_[worker->hello.worker_key];
  if (sends == kMaxArchiveSends) {
    reject(routing_id, state,
           ErrorReply{ErrorCode::kRateLimited,
                      "the model archive was sent to this worker " + std::to_string(kMaxArchiveSends) +
                          " times already; keep it in the state directory (docs/MODELS.md)",
                      0, 0});
    return;
  }
  ++sends;
  ArchiveTransfer transfer = archive_transfer(model_source_, static_cast<size_t>(config_.network.chunk_bytes));
  log_.info("sending model archive " + to_hex(model_source_.archive_digest).substr(0, 16) + " (" +
            std::to_string(transfer.message.total_bytes) + " bytes) to worker " +
            std::to_string(worker->index));
  const std::optional<size_t> sent = send_to(routing_id, transfer.message, std::move(transfer.frames));
  if (sent && state != nullptr) state->bytes_out += *sent;
}

bool Coordinator::Impl::admitted(const std::string& routing_id, RoundState* state) {
  switch (rate_limiter_.admit(routing_id, clock_->now())) {
    case RateLimiter::Decision::kAllow:
      return true;
    case RateLimiter::Decision::kRefuseAndTell:
      reject(routing_id, state,
             ErrorReply{ErrorCode::kRateLimited,
                        "more than " + number_text(config_.network.messages_per_second) +
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

Status Coordinator::Impl::check_norm(const at::Tensor& flat) const {
  const double limit = config_.aggregation.max_update_norm;
  if (limit <= 0.0) return Status();
  const double norm = flat.norm().item<double>();
  if (norm <= limit) return Status();
  return Status::invalid_argument("the update's L2 norm " + number_text(norm) +
                                  " is above aggregation.max_update_norm = " + number_text(limit));
}

std::optional<std::string> Coordinator::Impl::impersonation(const std::string& routing_id, const Message& message,
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

OpenTask* Coordinator::Impl::task_sent_on(RoundState& state, const std::string& routing_id) {
  for (auto& [id, task] : state.tasks) {
    if (task.routing_id == routing_id) return &task;
  }
  return nullptr;
}

void Coordinator::Impl::handle_update(const std::string& routing_id, const Update& update,
                                      Frames payload, RoundState* state) {
  if (auto refusal = check_update(routing_id, update, state)) {
    reject(routing_id, state, std::move(*refusal));
    return;
  }
  OpenTask& task = *state->tasks.find(update.task_id);  // check_update found it
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
  record_submission(*state, task, update);
  if (!decoded.ok()) {
    // Honest workers check for NaN and Inf before signing (worker.cpp), so
    // a signed non-finite update is fraud, not bad luck.
    if (non_finite && settlement_->pays()) {
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
    TaskTable::on(task, TaskEvent::accepted());
  }
}

void Coordinator::Impl::record_submission(const RoundState& state, const OpenTask& task, const Update& update) {
  Submission submission;
  submission.round = state.round;
  submission.task_id = update.task_id;
  submission.worker = task.worker_key;
  submission.commitment_root = update.commitment ? update.commitment->root : Digest{};
  submission.update_hash = update.delta.digest;
  submission.samples = update.num_samples;
  settlement_->submitted(submission);
}

void Coordinator::Impl::challenge(const std::string& routing_id, RoundState& state, OpenTask& task) {
  Result<ChallengeMessage> message =
      auditor_->challenge(task.task, task.worker_key, *task.commitment, task.start_momentum);
  if (!message.ok()) {
    // A signed commitment that contradicts the task is proof of fraud (an
    // honest worker checks the step count before training): it slashes.
    fail_audit(task, "invalid commitment: " + message.status().message());
    reject(routing_id, &state,
           ErrorReply{ErrorCode::kInvalidUpdate, task.outcome(), state.round, task.task.task_id});
    return;
  }
  message->signature = identity_->sign(challenge_signing_bytes(*message, task.worker_key));
  task.challenge = message->challenge;
  if (task.challenge.audited) {
    task.challenge_message = *message;
    task.reveal_deadline = steady_deadline(config_.proof.reveal_seconds, clock_->now());
    TaskTable::on(task, TaskEvent::awaiting_reveal());
  } else {
    TaskTable::on(task, TaskEvent::accepted());
  }
  if (auto sent = send_to(routing_id, std::move(*message))) state.bytes_out += *sent;
}

Digest Coordinator::Impl::announced_momentum_of(const PublicKey& worker) const {
  if (!config_.training.keep_momentum) return Digest{};
  auto it = carried_momentum_.find(worker);
  return it == carried_momentum_.end() ? fresh_momentum_digest() : it->second;
}

Digest Coordinator::Impl::accepted_start_momentum(const OpenTask& task, const UpdateCommitment& commitment) {
  const Digest& announced = task.task.proof.start_momentum;
  if (announced == Digest{} || commitment.first.leaf.momentum == fresh_momentum_digest()) {
    return fresh_momentum_digest();
  }
  return announced;
}

std::optional<ErrorReply> Coordinator::Impl::check_update(const std::string& routing_id, const Update& update,
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
    settlement_->incident(worker->hello.worker_key, update.round, update.task_id, "bad-signature",
                    "an update whose signature does not verify");
    return refuse(ErrorCode::kBadSignature, "the update's signature does not verify for this worker's key");
  }
  if (state == nullptr || update.round != state->round) {
    settlement_->incident(worker->hello.worker_key, update.round, update.task_id, "replay",
                          "an update for a round that is not open");
    return refuse(ErrorCode::kWrongRound,
                  "update for round " + std::to_string(update.round) + " but " +
                      (state == nullptr ? "no round is open"
                                        : "round " + std::to_string(state->round) + " is open"));
  }
  // The task must have been sent on this very connection: a worker that
  // registered again since has had that task closed.
  OpenTask* found = state->tasks.find(update.task_id);
  if (found == nullptr || found->routing_id != routing_id) {
    settlement_->incident(worker->hello.worker_key, update.round, update.task_id, "replay",
                          "an update for a task not assigned to it");
    return refuse(ErrorCode::kUnknownTask, "no task " + std::to_string(update.task_id) +
                                               " was assigned to this worker in round " +
                                               std::to_string(state->round));
  }
  OpenTask& task = *found;
  if (task.missed_deadline()) {
    return refuse(ErrorCode::kDeadlineExceeded, "the round's deadline passed before this update arrived");
  }
  if (task.stage() != TaskStage::kTraining) {
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

void Coordinator::Impl::punish_equivocation(RoundState& state, OpenTask& task) {
  const std::string reason = "two signed commitments for task " + std::to_string(task.task.task_id);
  log_.warn("worker " + std::to_string(task.worker_index) + " equivocated: " + reason);
  settlement_->incident(task.worker_key, state.round, task.task.task_id, "equivocation", reason);
  if (task.stage() == TaskStage::kClosed) return;
  close_task(task, Verdict::kFailed, "equivocation: " + reason);
  settlement_->slash(task.worker_key, task.task.task_id, reason);
  workers_.retire(task.worker_key);
}

void Coordinator::Impl::handle_reveal(const std::string& routing_id, const Reveal& reveal,
                                      Frames payload,
                                      RoundState* state) {
  auto refuse = [&](ErrorCode code, std::string why) {
    reject(routing_id, state, ErrorReply{code, std::move(why), reveal.round, reveal.task_id});
  };
  const WorkerEntry* worker = workers_.find(routing_id);
  if (worker == nullptr) return refuse(ErrorCode::kNotRegistered, "not registered: send a hello first");
  if (state == nullptr || reveal.round != state->round) {
    return refuse(ErrorCode::kWrongRound, "a reveal for a round that is not open");
  }
  OpenTask* task = state->tasks.find(reveal.task_id);
  if (task == nullptr || task->worker_key != worker->hello.worker_key ||
      task->stage() != TaskStage::kAwaitingReveal) {
    return refuse(ErrorCode::kUnknownTask, "no audit of task " + std::to_string(reveal.task_id) +
                                               " is waiting for this worker's reveal");
  }
  if (!verify_signature(task->worker_key, reveal_signing_bytes(reveal, task->worker_key), reveal.signature)) {
    settlement_->incident(task->worker_key, reveal.round, reveal.task_id, "bad-signature",
                    "a reveal whose signature does not verify");
    return refuse(ErrorCode::kBadSignature, "the reveal's signature does not verify for this worker's key");
  }
  Status queued = queue_verification(*task, reveal, std::move(payload), state->start);
  if (!queued.ok()) {
    fail_audit(*task, "invalid reveal: " + queued.message());
    return refuse(error_code_for(queued), queued.message());
  }
  TaskTable::on(*task, TaskEvent::revealed());
}

Status Coordinator::Impl::queue_verification(OpenTask& task, const Reveal& reveal, Frames payload,
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

void Coordinator::Impl::handle_worker_error(const std::string& routing_id, const ErrorReply& error, RoundState* state) {
  log_.warn("worker reported " + std::string(error_code_name(error.code)) + ": " + error.message);
  if (state == nullptr) return;
  OpenTask* task = state->tasks.find(error.task_id);
  if (task != nullptr && task->routing_id == routing_id && task->stage() == TaskStage::kTraining) {
    close_task(*task, Verdict::kRejected, "the worker failed the task: " + error.message);
  }
}

void Coordinator::Impl::reject(const std::string& routing_id, RoundState* state, ErrorReply error) {
  rejections_log_.warn(log_, "rejected a message (" + std::string(error_code_name(error.code)) + "): " + error.message);
  if (state != nullptr) {
    ++state->rejected;
    if (error.code == ErrorCode::kTooLarge || error.code == ErrorCode::kRateLimited) ++state->limits_exceeded;
  }
  send_to(routing_id, std::move(error));
}

std::optional<size_t> Coordinator::Impl::send_to(const std::string& routing_id, Message message,
                                                 Frames payload) {
  Result<size_t> sent = channel_->send(routing_id, {std::move(message), std::move(payload)});
  if (!sent.ok()) {
    workers_.mark_gone(routing_id);
    return std::nullopt;
  }
  return sent.value();
}

ReceiveLimits Coordinator::Impl::receive_limits() const {
  ReceiveLimits limits;
  limits.decode.max_envelope_bytes = static_cast<size_t>(config_.network.max_message_bytes);
  const auto chunk = static_cast<uint64_t>(config_.network.chunk_bytes);
  limits.max_payload_frames = static_cast<size_t>(static_cast<uint64_t>(config_.network.max_model_bytes) / chunk + 2);
  return limits;
}

}  // namespace cohort
