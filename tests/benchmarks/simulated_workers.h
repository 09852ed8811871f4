// Simulated workers for coordinator_bench: the peers of a real Coordinator
// that speak the real protocol but do not train.
//
// N simulated workers are N DEALER sockets driven by one thread with their
// own ZeroMQ context (as separate processes would have), each with its own
// Ed25519 identity. Each says Hello with its key, checks the coordinator's
// signature on every Task, decodes the model it was sent (digest verified)
// and at once answers with a signed Update carrying the same precomputed
// delta (random, 1e-3 scale, in the layout of the job's model), until it
// receives a Bye; Welcomes and RoundResults are read and dropped. With
// CURVE each connects as a CURVE client under a key derived from its
// identity (cohort/transport.h), pinning the coordinator's key.
//
// They run either on a helper thread of the benchmark process
// (SimulatedWorkers) or in a child process (WorkerProcess: this program
// started with kWorkerMode), so that the benchmark process's memory and CPU
// are the coordinator's alone.
#pragma once

#include <sys/types.h>

#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "cohort/crypto.h"
#include "cohort/status.h"

namespace cohort_bench {

template <class T>
T take(cohort::Result<T> result) {
  if (!result.ok()) throw std::runtime_error(result.status().to_string());
  return std::move(result).value();
}

inline void take_status(const cohort::Status& status) {
  if (!status.ok()) throw std::runtime_error(status.to_string());
}

// What the simulated workers are told.
struct WorkerSpec {
  std::string endpoint;      // the coordinator's
  int count = 0;             // workers
  std::string model;         // a built-in model's name: the delta's layout
  cohort::PublicKey server;  // the coordinator's key: tasks' signatures, CURVE
  bool curve = true;         // connect with CURVE
};

// Runs the workers of `spec` on the calling thread until each got a Bye.
// Throws on any error.
void serve_simulated_workers(const WorkerSpec& spec);

// The simulated workers on a helper thread of this process.
class SimulatedWorkers {
 public:
  explicit SimulatedWorkers(WorkerSpec spec);
  ~SimulatedWorkers() { join(); }
  SimulatedWorkers(const SimulatedWorkers&) = delete;
  SimulatedWorkers& operator=(const SimulatedWorkers&) = delete;

  // Waits for the thread to finish (after every worker got a Bye) and
  // returns the error it met, or an empty string.
  std::string join();

 private:
  std::mutex mutex_;
  std::string error_;
  std::thread thread_;
};

// The first argument that makes this program a simulated-worker process.
inline constexpr std::string_view kWorkerMode = "--simulated-workers";

// The simulated workers in a child process (this program in kWorkerMode);
// killed if still running when dropped.
class WorkerProcess {
 public:
  explicit WorkerProcess(const WorkerSpec& spec);
  ~WorkerProcess();
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Waits for the process (after every worker got a Bye); true if it
  // exited cleanly.
  bool wait();

 private:
  pid_t pid_ = -1;
};

// Whether argv asks for the simulated-worker process, and its main.
bool is_worker_process(int argc, char** argv);
int simulated_worker_process(char** argv);

}  // namespace cohort_bench
