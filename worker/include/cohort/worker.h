// A volunteer's or data holder's side of a job: connect to a coordinator,
// register, and for each task train the received model on local data and
// send back the update. Raw data never leaves the worker; only updates do.
//
// A Worker runs on the calling thread until the coordinator says the job is
// done (Bye), or no message arrived for `idle_timeout`, or a fatal error
// occurs. Malformed or unexpected messages from the coordinator are logged
// and skipped. Not thread-safe: one thread drives one Worker.
#pragma once

#include <chrono>
#include <filesystem>
#include <string>

#include <zmq.hpp>

#include "cohort/crypto.h"
#include "cohort/dataset.h"
#include "cohort/log.h"
#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

struct WorkerOptions {
  std::string coordinator = "tcp://127.0.0.1:5555";
  std::string device = "cpu";         // cpu | cuda | cuda:N
  int threads = 0;                    // intra-op threads; 0 = LibTorch's default
  // Local data: the training split of an MNIST-format directory, or a data
  // holder's own IDX pair when `images` and `labels` are both set.
  std::filesystem::path data_dir = kDefaultFashionMnistDir;
  std::filesystem::path images;
  std::filesystem::path labels;
  std::chrono::milliseconds idle_timeout{600'000};  // give up waiting for work
  size_t chunk_bytes = size_t{16} << 20;
  DType wire_dtype = DType::kFloat32;              // dtype of updates on the wire
  // A Byzantine behaviour for robustness experiments: train honestly on
  // flipped labels (y -> 9 - y), as ByzFL, Blades and epfml define it.
  bool flip_labels = false;
};

struct WorkerSummary {
  int tasks_completed = 0;
  int tasks_failed = 0;
  std::string exit_reason;  // the coordinator's Bye reason, or why we stopped
};

// Loads the worker's local training data as configured in `options`
// (labels flipped when options.flip_labels).
Result<LabeledImages> load_worker_data(const WorkerOptions& options);

// Connects, registers and serves tasks. `identity` is the worker's account.
// Errors: the device is unavailable, local data cannot be read, the
// coordinator could not be reached or rejected the registration.
Result<WorkerSummary> run_worker(zmq::context_t& context, const WorkerOptions& options,
                                 const Identity& identity, Logger& log);

}  // namespace cohort
