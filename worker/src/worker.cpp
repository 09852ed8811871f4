#include "cohort/worker.h"

#include <ATen/Parallel.h>
#include <ATen/ops/from_blob.h>

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "cohort/models.h"
#include "cohort/partition.h"
#include "cohort/tensor_codec.h"
#include "cohort/training.h"
#include "cohort/wire.h"

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

// Everything a worker keeps between tasks: its data, the shard the last task
// selected, one model per architecture, and (when tasks ask for it) the SGD
// momentum of its previous task.
class Session {
 public:
  Session(zmq::socket_t& socket, const WorkerOptions& options, LabeledImages data,
          at::Device device, Logger& log)
      : socket_(socket), options_(options), data_(std::move(data)), device_(device), log_(log) {}

  // Trains on one task and sends the update. Errors are reported to the
  // coordinator and returned.
  Status serve(const Task& task, std::vector<zmq::message_t> payload) {
    Status status = try_serve(task, std::move(payload));
    if (!status.ok()) {
      log_.warn("task " + std::to_string(task.task_id) + " (round " + std::to_string(task.round) +
                ") failed: " + status.to_string());
      (void)send_message(socket_, {ErrorReply{error_code_for(status), status.message(),
                                              task.round, task.task_id}});
    }
    return status;
  }

 private:
  Status try_serve(const Task& task, std::vector<zmq::message_t> payload) {
    if (task.deadline_unix_ms > 0 && unix_ms_now() > task.deadline_unix_ms) {
      return Status::deadline_exceeded("the task's deadline passed before training started");
    }
    COHORT_ASSIGN_OR_RETURN(Model * model, model_for(task.model_name));
    COHORT_ASSIGN_OR_RETURN(
        DecodedPayload start,
        decode_payload(task.model, std::move(payload), PayloadLimits{}, &model->layout()));
    COHORT_RETURN_IF_ERROR(model->set_flat_parameters(start.flat));
    COHORT_ASSIGN_OR_RETURN(const TensorDataset* shard, shard_for(task.data));

    MomentumBuffers* momentum = task.hyper.keep_momentum ? &momentum_[task.model_name] : nullptr;
    COHORT_ASSIGN_OR_RETURN(LocalTraining trained,
                            train_locally(*model, *shard, task.hyper, task.seed, momentum));
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
    log_.info("round " + std::to_string(task.round) + ": trained " +
              std::to_string(trained.metrics.steps) + " steps on " +
              std::to_string(shard->size()) + " samples in " +
              std::to_string(trained.metrics.train_seconds).substr(0, 5) + " s, loss " +
              std::to_string(trained.metrics.local_loss).substr(0, 6));
    return send_message(socket_, {std::move(update), encoded.chunks()}).status();
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
  LabeledImages data_;
  at::Device device_;
  Logger& log_;
  std::map<std::string, std::unique_ptr<Model>> models_;
  std::map<std::string, MomentumBuffers> momentum_;  // per model, for keep_momentum
  std::optional<TensorDataset> shard_;
  std::optional<DataSelection> shard_selection_;
};

}  // namespace

Result<LabeledImages> load_worker_data(const WorkerOptions& options) {
  if (options.images.empty() != options.labels.empty()) {
    return Status::invalid_argument("--images and --labels must be given together");
  }
  COHORT_ASSIGN_OR_RETURN(LabeledImages data,
                          options.images.empty() ? load_mnist_format_dir(options.data_dir, Split::kTrain)
                                                 : load_idx_pair(options.images, options.labels));
  if (options.flip_labels) {
    constexpr uint8_t kClasses = 10;
    for (uint8_t& label : data.labels) label = label < kClasses ? kClasses - 1 - label : label;
  }
  return data;
}

Result<WorkerSummary> run_worker(zmq::context_t& context, const WorkerOptions& options,
                                 const Identity& identity, Logger& log) {
  COHORT_ASSIGN_OR_RETURN(at::Device device, parse_device(options.device));
  if (options.threads > 0) at::set_num_threads(options.threads);
  COHORT_ASSIGN_OR_RETURN(LabeledImages data, load_worker_data(options));

  zmq::socket_t socket(context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 5000);
  socket.connect(options.coordinator);

  Hello hello;
  hello.worker_key = identity.public_key();
  hello.device = DeviceInfo{device.is_cuda() ? DeviceKind::kCuda : DeviceKind::kCpu, device.str(),
                            static_cast<uint32_t>(at::get_num_threads()), 0};
  hello.dataset = describe(options, data);
  hello.software = "cohort 0.1.0";
  COHORT_RETURN_IF_ERROR(send_message(socket, {hello}).status());
  log.info("connecting to " + options.coordinator + " with " + std::to_string(data.count) +
           " local samples on " + device.str());

  Session session(socket, options, std::move(data), device, log);
  WorkerSummary summary;
  while (true) {
    auto incoming = receive_message(socket, /*has_routing_id=*/false, options.idle_timeout);
    if (!incoming) {
      summary.exit_reason = "no message from the coordinator for " +
                            std::to_string(options.idle_timeout.count() / 1000) + " s";
      return summary;
    }
    if (!incoming->message.ok()) {
      log.warn("ignoring a malformed message: " + incoming->message.status().to_string());
      continue;
    }
    Message& message = incoming->message.value();
    if (auto* task = std::get_if<Task>(&message)) {
      bool ok = session.serve(*task, std::move(incoming->payload)).ok();
      ++(ok ? summary.tasks_completed : summary.tasks_failed);
    } else if (auto* welcome = std::get_if<Welcome>(&message)) {
      log.info("registered as worker " + std::to_string(welcome->worker_index) + " of job '" +
               welcome->job_name + "'");
    } else if (auto* result = std::get_if<RoundResult>(&message)) {
      log.info("round " + std::to_string(result->round) + " closed: update " +
               (result->accepted ? "accepted" : "rejected (" + result->reason + ")") +
               ", test accuracy " + std::to_string(result->test_accuracy).substr(0, 6));
    } else if (auto* error = std::get_if<ErrorReply>(&message)) {
      log.warn("coordinator error (" + std::string(error_code_name(error->code)) +
               "): " + error->message);
      if (error->code == ErrorCode::kUnsupportedVersion) {
        return Status::failed_precondition("coordinator rejected us: " + error->message);
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
