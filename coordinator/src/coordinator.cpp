#include "cohort/coordinator.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <numeric>
#include <optional>

#include "cohort/attacks.h"
#include "cohort/dataset.h"
#include "cohort/models.h"
#include "cohort/random.h"
#include "cohort/training.h"
#include "cohort/wire.h"
#include "worker_registry.h"

namespace cohort {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

int64_t unix_ms_in(double seconds) {
  using namespace std::chrono;
  auto deadline = system_clock::now() + duration_cast<milliseconds>(duration<double>(seconds));
  return duration_cast<milliseconds>(deadline.time_since_epoch()).count();
}

std::chrono::milliseconds until(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return std::max(left, std::chrono::milliseconds(0));
}

LabeledImages first_samples(const LabeledImages& all, int64_t count) {
  std::vector<int64_t> first(static_cast<size_t>(std::min(count, all.count)));
  std::iota(first.begin(), first.end(), 0);
  return select_samples(all, first);
}

Result<TensorDataset> load_test_set(const DataSection& data) {
  Result<LabeledImages> images =
      data.dataset == "idx" ? load_idx_pair(data.test_images, data.test_labels)
                            : load_mnist_format_dir(data.dir, Split::kTest);
  if (!images.ok()) return images.status().with_context("loading the test set");
  const int64_t count = data.eval_samples > 0 ? data.eval_samples : images->count;
  return to_tensors(first_samples(*images, count));
}

// The first `count` samples of the training split: the coordinator's own
// trusted data for a root update.
Result<TensorDataset> load_root_set(const DataSection& data, int count) {
  Result<LabeledImages> train = load_mnist_format_dir(data.dir, Split::kTrain);
  if (!train.ok()) return train.status().with_context("loading the root (trusted) samples");
  return to_tensors(first_samples(*train, count));
}

Hyperparameters hyperparameters_of(const TrainingSection& training) {
  Hyperparameters hyper;
  hyper.local_steps = static_cast<uint32_t>(training.local_steps);
  hyper.local_epochs = training.local_epochs;
  hyper.batch_size = static_cast<uint32_t>(training.batch_size);
  hyper.learning_rate = training.learning_rate;
  hyper.momentum = training.momentum;
  hyper.weight_decay = training.weight_decay;
  hyper.keep_momentum = training.keep_momentum;
  return hyper;
}

// What the coordinator knows about one open round.
struct RoundState {
  uint32_t round = 0;
  Digest model_digest{};
  std::map<std::string, PendingTask> pending;  // by routing id
  std::vector<at::Tensor> rows;
  std::vector<double> weights;
  std::vector<uint32_t> contributors;          // worker index per row
  double local_loss_sum = 0.0;
  int rejected = 0;
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;

  bool all_answered() const {
    return std::all_of(pending.begin(), pending.end(),
                       [](const auto& p) { return p.second.answered; });
  }
};

}  // namespace

class Coordinator::Impl {
 public:
  Impl(zmq::context_t& context, JobConfig config, Logger& log)
      : config_(std::move(config)), log_(log), socket_(context, zmq::socket_type::router) {}

  Status init(const RuleRegistry& rules) {
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
                                                              config_.attack.params)));
      log_.warn("simulating " + std::to_string(config_.attack.byzantine) + " Byzantine update(s) per round (" +
                config_.attack.name + ")");
    }
    COHORT_ASSIGN_OR_RETURN(model_, Model::create(config_.model.name, config_.job.seed));
    global_ = model_->flat_parameters();
    COHORT_ASSIGN_OR_RETURN(test_set_, load_test_set(config_.data));
    if (config_.aggregation.root_samples > 0) {
      COHORT_ASSIGN_OR_RETURN(root_set_, load_root_set(config_.data, config_.aggregation.root_samples));
      COHORT_ASSIGN_OR_RETURN(root_model_, Model::create(config_.model.name, config_.job.seed));
    }
    std::error_code ec;
    std::filesystem::create_directories(config_.job.output_dir, ec);
    if (ec) {
      return Status::io_error("cannot create output directory " +
                              config_.job.output_dir.string() + ": " + ec.message());
    }
    // A job starts its metrics afresh (resuming a job is not supported yet).
    metrics_file_.open(config_.job.output_dir / "metrics.jsonl", std::ios::trunc);
    if (!metrics_file_) return Status::io_error("cannot open metrics.jsonl in " + config_.job.output_dir.string());
    return bind();
  }

  std::string endpoint() const { return socket_.get(zmq::sockopt::last_endpoint); }

  Result<JobSummary> run(const RoundCallback& on_round) {
    COHORT_RETURN_IF_ERROR(wait_for_workers());
    JobSummary summary;
    const auto start = Clock::now();
    for (int r = 1; r <= config_.job.rounds; ++r) {
      COHORT_ASSIGN_OR_RETURN(RoundMetrics metrics, run_round(static_cast<uint32_t>(r)));
      log_round(metrics);
      if (on_round) on_round(metrics);
      summary.rounds_completed = r;
      summary.test_accuracy = metrics.test_accuracy;
      summary.test_loss = metrics.test_loss;
    }
    summary.seconds = seconds_since(start);
    summary.checkpoint = checkpoint_path();
    say_goodbye("the job is complete");
    return summary;
  }

 private:
  Status bind() {
    socket_.set(zmq::sockopt::router_mandatory, 1);  // sends to a gone peer fail
    socket_.set(zmq::sockopt::maxmsgsize, config_.network.max_message_bytes);
    socket_.set(zmq::sockopt::linger, 2000);
    try {
      socket_.bind(config_.network.listen);
    } catch (const zmq::error_t& e) {
      return Status::io_error("cannot listen on " + config_.network.listen + ": " + e.what());
    }
    log_.info("listening on " + endpoint());
    return Status();
  }

  std::filesystem::path checkpoint_path() const { return config_.job.output_dir / "model.ckpt"; }

  // ------------------------------------------------------------ registration

  Status wait_for_workers() {
    const auto deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                           config_.round.registration_timeout_seconds));
    log_.info("waiting for " + std::to_string(config_.round.min_workers) + " worker(s)");
    while (workers_.alive_count() < static_cast<size_t>(config_.round.min_workers)) {
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

  void register_worker(const std::string& routing_id, const Hello& hello) {
    const WorkerEntry& entry = workers_.add(routing_id, hello);
    log_.info("worker " + std::to_string(entry.index) + " registered (" +
              to_hex(hello.worker_key).substr(0, 12) + ", " + hello.device.name + ", " +
              std::to_string(hello.dataset.samples) + " samples)");
    send_to(routing_id, Welcome{entry.index, config_.job.name,
                                static_cast<uint32_t>(config_.job.rounds)});
  }

  // ------------------------------------------------------------ one round

  Result<RoundMetrics> run_round(uint32_t round) {
    const auto round_start = Clock::now();
    RoundMetrics metrics;
    metrics.round = round;
    RoundState state;
    state.round = round;

    auto t = Clock::now();
    COHORT_RETURN_IF_ERROR(announce(state));
    metrics.seconds.announce = seconds_since(t);

    t = Clock::now();
    collect(state);
    metrics.seconds.collect = seconds_since(t);

    t = Clock::now();
    metrics.model_updated = aggregate(state, metrics);
    metrics.seconds.aggregate = seconds_since(t);

    t = Clock::now();
    COHORT_RETURN_IF_ERROR(model_->set_flat_parameters(global_));
    Evaluation eval = evaluate(*model_, test_set_);
    metrics.seconds.evaluate = seconds_since(t);

    t = Clock::now();
    Digest digest = digest_of(model_->layout(), global_);
    COHORT_RETURN_IF_ERROR(write_checkpoint(
        checkpoint_path(), Checkpoint{round, config_.model.name, model_->layout(), global_, digest}));
    metrics.seconds.checkpoint = seconds_since(t);

    metrics.test_accuracy = eval.accuracy;
    metrics.test_loss = eval.loss;
    metrics.participants = static_cast<int>(state.pending.size());
    metrics.accepted = static_cast<int>(state.rows.size());
    metrics.rejected = state.rejected;
    metrics.mean_local_loss =
        state.rows.empty() ? 0.0 : state.local_loss_sum / static_cast<double>(state.rows.size());
    report_results(state, metrics, digest);
    metrics.bytes_in = state.bytes_in;
    metrics.bytes_out = state.bytes_out;
    metrics.seconds.total = seconds_since(round_start);
    metrics_file_ << metrics.to_json() << '\n';
    metrics_file_.flush();
    return metrics;
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

  Status announce(RoundState& state) {
    COHORT_ASSIGN_OR_RETURN(
        EncodedPayload payload,
        encode_payload(model_->layout(), global_, static_cast<size_t>(config_.network.chunk_bytes)));
    state.model_digest = payload.header().digest;
    Task task;
    task.round = state.round;
    task.model_name = config_.model.name;
    task.hyper = hyperparameters_of(config_.training);
    task.deadline_unix_ms = unix_ms_in(config_.round.deadline_seconds);
    task.model = payload.header();
    COHORT_ASSIGN_OR_RETURN(PartitionScheme scheme, parse_partition_scheme(config_.data.partition));
    for (const WorkerEntry* worker : select_participants(state.round)) {
      task.task_id = (uint64_t{state.round} << 32) | worker->index;
      task.seed = Rng(config_.job.seed).fork(task.task_id).next_u64();
      task.data = DataSelection{scheme,
                                static_cast<uint32_t>(workers_.size_for_partitioning()),
                                worker->index,
                                config_.data.alpha,
                                config_.data.gamma,
                                config_.job.seed};
      auto sent = send_to(worker->routing_id, task, payload.chunks());
      if (!sent) continue;
      state.bytes_out += *sent;
      state.pending[worker->routing_id] = PendingTask{task.task_id, worker->index, false, ""};
    }
    if (state.pending.empty()) return Status::unavailable("no worker could be sent a task");
    return Status();
  }

  void collect(RoundState& state) {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(config_.round.deadline_seconds));
    while (!state.all_answered() && Clock::now() < deadline) {
      receive_one(until(deadline), &state);
    }
    for (auto& [routing_id, task] : state.pending) {
      if (!task.answered) {
        task.outcome = "no update before the deadline";
        log_.warn("worker " + std::to_string(task.worker_index) + " sent no update for round " +
                  std::to_string(state.round));
      }
    }
  }

  bool aggregate(RoundState& state, RoundMetrics& metrics) {
    if (static_cast<int>(state.rows.size()) < config_.round.min_updates) {
      log_.warn("round " + std::to_string(state.round) + ": " + std::to_string(state.rows.size()) +
                " update(s), quorum is " + std::to_string(config_.round.min_updates) +
                "; keeping the previous model");
      return false;
    }
    Status status = aggregate_accepted(state, metrics);
    if (!status.ok()) {
      log_.error("round " + std::to_string(state.round) + ": " + status.to_string() +
                 "; keeping the previous model");
      return false;
    }
    return true;
  }

  // Root update (if configured) -> simulated attack (if configured) ->
  // pipeline -> global model step.
  Status aggregate_accepted(const RoundState& state, RoundMetrics& metrics) {
    AggregationContext context;
    context.previous = previous_aggregate_;
    context.seed = Rng(config_.job.seed).fork(state.round).next_u64();
    if (root_model_) {
      Result<at::Tensor> root = root_update(context.seed);
      if (!root.ok()) return root.status().with_context("the root update failed");
      context.root_update = *root;
    }
    at::Tensor rows = at::stack(state.rows);
    std::vector<double> weights = state.weights;
    if (attack_) {
      COHORT_RETURN_IF_ERROR(add_byzantine_rows(rows, weights, context.seed)
                                 .with_context("the simulated attack failed"));
      metrics.byzantine = config_.attack.byzantine;
    }
    Result<AggregationResult> result = pipeline_->run(rows, weights, context);
    if (!result.ok()) return result.status().with_context("aggregation failed");
    record_weights(state, *result, metrics);
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
  static void record_weights(const RoundState& state, const AggregationResult& result,
                             RoundMetrics& metrics) {
    for (size_t i = 0; i < result.row_weights.size(); ++i) {
      if (i < state.contributors.size()) {
        metrics.worker_weights.push_back({state.contributors[i], result.row_weights[i]});
      } else {
        metrics.byzantine_weight += result.row_weights[i];
      }
    }
  }

  void report_results(RoundState& state, const RoundMetrics& metrics, const Digest& digest) {
    for (auto& [routing_id, task] : state.pending) {
      RoundResult result;
      result.round = state.round;
      result.accepted = task.outcome.empty();
      result.reason = task.outcome;
      result.test_accuracy = metrics.test_accuracy;
      result.test_loss = metrics.test_loss;
      result.participants = static_cast<uint32_t>(metrics.participants);
      result.model_hash = digest;
      if (auto sent = send_to(routing_id, result)) state.bytes_out += *sent;
    }
  }

  // ------------------------------------------------------------ messages

  // Receives and handles at most one message. `state` is null outside rounds.
  void receive_one(std::chrono::milliseconds timeout, RoundState* state) {
    DecodeLimits limits;
    limits.max_envelope_bytes = static_cast<size_t>(config_.network.max_message_bytes);
    auto incoming = receive_message(socket_, /*has_routing_id=*/true, timeout, limits,
                                    max_payload_frames());
    if (!incoming) return;
    if (state != nullptr) state->bytes_in += incoming->bytes;
    const std::string routing_id(static_cast<const char*>(incoming->routing_id->data()),
                                 incoming->routing_id->size());
    if (!incoming->message.ok()) {
      const Status& status = incoming->message.status();
      reject(routing_id, state, ErrorReply{error_code_for(status), status.message(), 0, 0});
      return;
    }
    Message& message = incoming->message.value();
    if (auto* hello = std::get_if<Hello>(&message)) {
      register_worker(routing_id, *hello);
    } else if (auto* update = std::get_if<Update>(&message)) {
      handle_update(routing_id, *update, std::move(incoming->payload), state);
    } else if (auto* error = std::get_if<ErrorReply>(&message)) {
      handle_worker_error(routing_id, *error, state);
    } else if (std::holds_alternative<Bye>(message)) {
      workers_.mark_gone(routing_id);
      if (state != nullptr && state->pending.contains(routing_id)) {
        close_task(state->pending[routing_id], "the worker left");
      }
    } else {
      reject(routing_id, state,
             ErrorReply{ErrorCode::kMalformedMessage,
                        "a worker may not send a " + std::string(message_kind(message)) + " message",
                        0, 0});
    }
  }

  void handle_update(const std::string& routing_id, const Update& update,
                     std::vector<zmq::message_t> payload, RoundState* state) {
    if (auto refusal = check_update(routing_id, update, state)) {
      reject(routing_id, state, std::move(*refusal));
      return;
    }
    PendingTask& task = state->pending[routing_id];
    PayloadLimits limits;
    limits.max_bytes = static_cast<uint64_t>(config_.network.max_model_bytes);
    Result<DecodedPayload> decoded =
        decode_payload(update.delta, std::move(payload), limits, &model_->layout());
    if (decoded.ok() && !all_finite(decoded->flat)) {
      decoded = Status::invalid_argument("the update contains NaN or Inf values");
    }
    if (!decoded.ok()) {
      close_task(task, decoded.status().message());
      reject(routing_id, state,
             ErrorReply{error_code_for(decoded.status()), decoded.status().message(), update.round,
                        update.task_id});
      return;
    }
    close_task(task, "");
    state->rows.push_back(std::move(decoded->flat));
    state->weights.push_back(static_cast<double>(update.num_samples));
    state->contributors.push_back(workers_.find(routing_id)->index);
    state->local_loss_sum += update.metrics.local_loss;
  }

  // The checks that need no payload decoding, cheapest first. Returns the
  // error to answer with, if any.
  std::optional<ErrorReply> check_update(const std::string& routing_id, const Update& update,
                                         RoundState* state) {
    auto refuse = [&](ErrorCode code, std::string why) {
      return ErrorReply{code, std::move(why), update.round, update.task_id};
    };
    if (workers_.find(routing_id) == nullptr) {
      return refuse(ErrorCode::kNotRegistered, "not registered: send a hello first");
    }
    if (state == nullptr || update.round != state->round) {
      return refuse(ErrorCode::kWrongRound,
                    "update for round " + std::to_string(update.round) + " but " +
                        (state == nullptr ? "no round is open"
                                          : "round " + std::to_string(state->round) + " is open"));
    }
    auto it = state->pending.find(routing_id);
    if (it == state->pending.end() || it->second.task_id != update.task_id) {
      return refuse(ErrorCode::kUnknownTask, "no task " + std::to_string(update.task_id) +
                                                 " was assigned to this worker in round " +
                                                 std::to_string(state->round));
    }
    if (it->second.answered) return refuse(ErrorCode::kDuplicate, "duplicate update for this task");
    if (update.base_model_hash != state->model_digest) {
      return refuse(ErrorCode::kInvalidUpdate, "the update was trained from a different model");
    }
    if (update.num_samples == 0) return refuse(ErrorCode::kInvalidUpdate, "the update claims 0 samples");
    return std::nullopt;
  }

  void handle_worker_error(const std::string& routing_id, const ErrorReply& error, RoundState* state) {
    log_.warn("worker reported " + std::string(error_code_name(error.code)) + ": " + error.message);
    if (state == nullptr) return;
    auto it = state->pending.find(routing_id);
    if (it != state->pending.end() && it->second.task_id == error.task_id) {
      close_task(it->second, "the worker failed the task: " + error.message);
    }
  }

  static void close_task(PendingTask& task, std::string outcome) {
    task.answered = true;
    task.outcome = std::move(outcome);
  }

  void reject(const std::string& routing_id, RoundState* state, ErrorReply error) {
    log_.warn("rejected a message (" + std::string(error_code_name(error.code)) +
              "): " + error.message);
    if (state != nullptr) ++state->rejected;
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
    char line[256];
    std::snprintf(line, sizeof(line),
                  "round %u/%d: accuracy %.4f  loss %.4f  updates %d/%d  rejected %d  %.1f s",
                  m.round, config_.job.rounds, m.test_accuracy, m.test_loss, m.accepted,
                  m.participants, m.rejected, m.seconds.total);
    log_.info(line);
  }

  JobConfig config_;
  Logger& log_;
  zmq::socket_t socket_;
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
  std::ofstream metrics_file_;
};

Result<std::unique_ptr<Coordinator>> Coordinator::create(zmq::context_t& context, JobConfig config,
                                                         const RuleRegistry& rules, Logger& log) {
  auto impl = std::make_unique<Impl>(context, std::move(config), log);
  COHORT_RETURN_IF_ERROR(impl->init(rules));
  return std::unique_ptr<Coordinator>(new Coordinator(std::move(impl)));
}

Coordinator::Coordinator(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Coordinator::~Coordinator() = default;
std::string Coordinator::endpoint() const { return impl_->endpoint(); }
Result<JobSummary> Coordinator::run(const RoundCallback& on_round) { return impl_->run(on_round); }

}  // namespace cohort
