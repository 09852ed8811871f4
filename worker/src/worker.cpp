// run_worker: load the local data and the kept receipts, open the session
// with the coordinator (coordinator_session.h), then serve its messages
// (dispatch.h).
#include "cohort/worker.h"

#include <ATen/Parallel.h>

#include <cstdlib>
#include <memory>
#include <set>

#include "cohort/models.h"
#include "cohort/version.h"
#include "coordinator_session.h"
#include "dispatch.h"
#include "receipt_store.h"

namespace cohort {
namespace {

// The IDX files a worker trains on: a data holder's own pair, or the
// training split of an MNIST-format directory.
Result<IdxFiles> worker_data_files(const WorkerOptions& options) {
  if (options.images.empty() != options.labels.empty()) {
    return Status::invalid_argument("--images and --labels must be given together");
  }
  if (!options.images.empty()) return IdxFiles{options.images, options.labels};
  return find_mnist_format_files(options.data_dir, Split::kTrain);
}

// The registration: this worker's key, device, data and software.
Hello hello_of(const Identity& identity, const at::Device& device, const WorkerOptions& options,
               const LabeledImages& data) {
  std::set<uint8_t> classes(data.labels.begin(), data.labels.end());
  Hello hello;
  hello.worker_key = identity.public_key();
  hello.device = DeviceInfo{device.is_cuda() ? DeviceKind::kCuda : DeviceKind::kCpu, device.str(),
                            static_cast<uint32_t>(at::get_num_threads()), 0};
  hello.dataset = DatasetInfo{options.images.empty() ? "fashion-mnist" : "idx", static_cast<uint64_t>(data.count),
                              static_cast<uint32_t>(classes.size())};
  hello.software = kSoftwareVersion;
  return hello;
}

}  // namespace

Result<std::shared_ptr<const LabeledImages>> load_worker_data(const WorkerOptions& options, Digest* digest) {
  COHORT_ASSIGN_OR_RETURN(const IdxFiles files, worker_data_files(options));
  std::shared_ptr<const LabeledImages> data = options.loaded_data;
  if (data == nullptr) {
    COHORT_ASSIGN_OR_RETURN(LabeledImages loaded, load_idx_pair(files.images, files.labels));
    data = std::make_shared<const LabeledImages>(std::move(loaded));
  }
  // Before it registers: data that fits no model would fail every task.
  COHORT_RETURN_IF_ERROR(check_fits(*data, kBuiltinModelInput, "the models", files));
  // Of the data as loaded: a label-flipping worker claims the honest data
  // (and is caught by an audit, which re-executes with the true labels).
  if (digest != nullptr) *digest = digest_of(*data);
  if (options.misbehaviour != nullptr) {
    LabeledImages changed = *data;
    options.misbehaviour->on_data_loaded(changed);
    data = std::make_shared<const LabeledImages>(std::move(changed));
  }
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

Result<WorkerSummary> run_worker(const CoordinatorConnector& connect, const WorkerOptions& given_options,
                                 const Identity& identity, Logger& log, std::stop_token stop) {
  WorkerOptions options = given_options;
  // Created when first needed: jobs without proof of learning leave nothing.
  if (options.state_dir.empty()) options.state_dir = default_state_dir(identity.public_key());
  COHORT_ASSIGN_OR_RETURN(at::Device device, parse_device(options.device));
  WorkerData data;
  COHORT_ASSIGN_OR_RETURN(data.data, load_worker_data(options, &data.digest));
  COHORT_ASSIGN_OR_RETURN(data.files, worker_data_files(options));
  COHORT_ASSIGN_OR_RETURN(ReceiptStore receipts, ReceiptStore::open(options.state_dir));
  COHORT_ASSIGN_OR_RETURN(ModelArchives archives,
                          ModelArchives::open(options.models_from, options.accept_models, options.state_dir / "models"));

  COHORT_ASSIGN_OR_RETURN(
      std::unique_ptr<CoordinatorSession> session,
      CoordinatorSession::open(connect, options, hello_of(identity, device, options, *data.data), log));
  log.info("connecting to " + options.coordinator + " with " + std::to_string(data.data->count) +
           " local samples on " + device.str());
  Dispatcher dispatcher(*session, options, identity, std::move(data), device, std::move(receipts),
                        std::move(archives), log);
  return dispatcher.run(std::move(stop));
}

}  // namespace cohort
