// Coordinator overhead per round, without local training, over real ZeroMQ
// TCP loopback.
//
// The benchmark thread plays the coordinator: a ROUTER socket, the same
// steps as Coordinator's round (coordinator/src/coordinator.cpp) minus
// evaluation, checkpoint and results:
//   announce   encode the global model once (encode_payload), sign a Task
//              for each of N workers and send it with the model's chunks
//              (send_message)
//   collect    receive N Updates (receive_message), verify each one's
//              Ed25519 signature, decode its delta with decode_payload
//              (verify_digest on, expected layout), check
//              at::isfinite(...).all()
//   aggregate  at::stack, cohort::fedavg with sample-count weights,
//              global += aggregate
// N simulated workers are N DEALER sockets driven by one helper thread with
// their own ZeroMQ context (as separate processes would have): each checks
// its task's signature, decodes its payload (verify on) and at once replies
// with a signed Update and a precomputed delta payload. They do not train.
//
// BM_Load is the load test: 500 workers and a 1M-parameter model with
// CURVE, the workers in a child process (this program run with
// --simulated-workers) so that the process's peak memory (VmHWM, reset
// before the rounds through /proc/self/clear_refs) is the coordinator's.
// It reports round latency percentiles and the coordinator's CPU per
// update before aggregation (update_cpu_ms: its thread's CPU time to
// receive, check, verify and decode one update; io_cpu_ms_per_update: its
// I/O thread's CPU during collect, which decrypts the updates, per update).
//
// BM_LoadCoordinator is the same load against the real Coordinator class
// (coordinator/): a job of the 1,068,810-parameter "mlp-wide" with FedAvg,
// CURVE on, evaluation on 1000 test images and a checkpoint every round,
// the same 500 simulated workers answering its tasks. Per round (from the
// RoundMetrics its callback receives): latency p50/p99, the collect,
// aggregate and evaluate phases, and the coordinator thread's CPU per
// update (RoundMetrics.cpu_seconds): before aggregation
// (pre_aggregation_cpu_ms_per_update: announce and collect, i.e. sending
// the tasks and receiving, checking and decoding the updates) and for the
// whole round (round_cpu_ms_per_update, with aggregation, evaluation and the
// checkpoint), plus its ZeroMQ I/O thread's CPU per update (decryption).
//
// Reported per round (averages over iterations):
//   Time (real)        the whole round, wall clock
//   CPU                CPU time of the coordinator thread alone
//   announce_ms        encode + send calls (sending is zero-copy; the bytes
//                      leave in ZeroMQ's I/O thread afterwards)
//   collect_ms         from the last send to the last update checked: the
//                      transfer out, the simulated workers' decode, the
//                      transfer in, and the coordinator's decode + checks
//   collect_active_ms  the coordinator thread's share of collect: receiving
//                      the frames, decode_payload, isfinite (not waiting)
//   aggregate_ms       stack + fedavg + apply
//   stack_ms           at::stack alone (part of aggregate_ms)
//   busy_ms            announce + collect_active + aggregate: the
//                      coordinator's own work per round
//   io_cpu_ms          CPU time of the coordinator context's ZeroMQ I/O
//                      thread (framing, TCP and, with CURVE, encryption of
//                      what it sends and decryption of what it receives),
//                      read from /proc/self/task
// With curve = 1 every connection is CurveZMQ (cohort/transport.h): the
// coordinator's ROUTER is a CURVE server with a ZAP handler (open
// admission), each worker a CURVE client with its own derived key, so
// every frame is encrypted and authenticated both ways; curve = 0 is
// plaintext. The difference is the price of transport security.
// Everything runs in one process on the same cores: the worker thread and
// both contexts' I/O threads compete with the coordinator thread, so the
// wall-clock numbers are upper bounds of what a coordinator alone would see.
// Torch runs with 1 intra-op thread so that the CPU column is the
// coordinator's work only.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "cohort/aggregation.h"
#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/log.h"
#include "cohort/models.h"
#include "cohort/router_channel.h"
#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "cohort/wire.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunkBytes = size_t{16} << 20;
constexpr auto kReplyTimeout = std::chrono::seconds(120);

// Names the I/O threads of the coordinator's ZeroMQ context
// "<prefix>/ZMQbg/...", to tell their CPU time from the workers' context's.
constexpr int kCoordinatorThreadPrefix = 42;

zmq::context_t& with_named_threads(zmq::context_t& context) {
  context.set(zmq::ctxopt::thread_name_prefix, kCoordinatorThreadPrefix);
  return context;
}

// CPU seconds (user + system) of this process's threads whose name starts
// with "<prefix>/".
double thread_cpu_seconds(int prefix) {
  const std::string wanted = std::to_string(prefix) + "/";
  double ticks = 0;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name, stat;
    std::getline(std::ifstream(task.path() / "comm"), name);
    if (!name.starts_with(wanted)) continue;
    std::getline(std::ifstream(task.path() / "stat"), stat);
    // After "pid (comm) ": state is field 3, utime field 14, stime field 15.
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string skipped;
    for (int field = 3; field < 14; ++field) fields >> skipped;
    double utime = 0, stime = 0;
    fields >> utime >> stime;
    ticks += utime + stime;
  }
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

cohort::Layout make_layout(int64_t numel) {
  cohort::Layout layout;
  const int64_t parts = 8;
  int64_t left = numel;
  for (int64_t i = 0; i < parts; ++i) {
    const int64_t size = i + 1 == parts ? left : numel / parts;
    left -= size;
    layout.tensors.push_back(
        cohort::TensorSpec{"layer" + std::to_string(i) + ".weight", cohort::DType::kFloat32, {size}});
  }
  return layout;
}

template <class T>
T take(cohort::Result<T> result) {
  if (!result.ok()) throw std::runtime_error(result.status().to_string());
  return std::move(result).value();
}

void take_status(const cohort::Status& status) {
  if (!status.ok()) throw std::runtime_error(status.to_string());
}

std::string worker_id(int index) {
  char id[16];
  std::snprintf(id, sizeof(id), "w%03d", index);
  return id;
}

cohort::PayloadLimits payload_limits() {
  cohort::PayloadLimits limits;
  limits.max_bytes = uint64_t{1} << 30;
  limits.verify_digest = true;
  return limits;
}

// N simulated workers on one thread (the lightweight simulated-worker
// mode): N DEALER sockets, each with its own Ed25519 identity, speaking the
// real protocol. Each says Hello with its key, checks the coordinator's
// signature on every Task (when `server` is set), decodes the model (verify
// on) and at once answers with a signed Update carrying the same
// precomputed delta, until it receives a Bye (Welcomes and RoundResults
// are read and dropped). With `server` set they
// connect with CURVE under keys derived from their identities. Throws on
// any error.
void serve_simulated_workers(const std::string& endpoint, int count, const cohort::EncodedPayload& delta,
                             std::optional<cohort::PublicKey> server) {
  zmq::context_t context;
  std::vector<cohort::Identity> identities;
  std::vector<zmq::socket_t> sockets;
  std::vector<zmq::pollitem_t> items;
  for (int i = 0; i < count; ++i) {
    const cohort::Identity& identity = identities.emplace_back(cohort::Identity::generate());
    zmq::socket_t& socket = sockets.emplace_back(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::routing_id, worker_id(i));
    socket.set(zmq::sockopt::linger, 0);
    if (server) take_status(cohort::make_curve_client(socket, identity, *server));
    socket.connect(endpoint);
    cohort::Hello hello;
    hello.worker_key = identity.public_key();
    take(cohort::send_message(socket, cohort::Outgoing{hello, {}}));
  }
  for (auto& socket : sockets) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});

  const cohort::PayloadLimits limits = payload_limits();
  int finished = 0;
  while (finished < count) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (int i = 0; i < count; ++i) {
      if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
      auto in = cohort::receive_message(sockets[i], false, std::chrono::milliseconds(0));
      if (!in) continue;
      if (!in->message.ok()) throw std::runtime_error(in->message.status().to_string());
      if (std::holds_alternative<cohort::Bye>(*in->message)) {
        ++finished;
        continue;
      }
      // The real Coordinator also welcomes and tells each round's result.
      if (std::holds_alternative<cohort::Welcome>(*in->message) ||
          std::holds_alternative<cohort::RoundResult>(*in->message)) {
        continue;
      }
      const auto* task = std::get_if<cohort::Task>(&*in->message);
      if (task == nullptr) throw std::runtime_error("worker got an unexpected message");
      const cohort::PublicKey& key = identities[static_cast<size_t>(i)].public_key();
      if (server && !cohort::verify_signature(*server, cohort::task_signing_bytes(*task, key), task->signature)) {
        throw std::runtime_error("a task without the coordinator's signature");
      }
      // What a worker does before training: rebuild the model it was sent.
      cohort::DecodedPayload model = take(cohort::decode_payload(task->model, std::move(in->payload), limits));
      benchmark::DoNotOptimize(model.flat.data_ptr());

      cohort::Update update;
      update.round = task->round;
      update.task_id = task->task_id;
      update.num_samples = 100 + static_cast<uint64_t>(i);
      update.metrics.steps = 1;
      update.base_model_hash = task->model.digest;
      update.delta = delta.header();
      update.signature = identities[static_cast<size_t>(i)].sign(cohort::update_signing_bytes(update, key));
      take(cohort::send_message(sockets[i], cohort::Outgoing{update, delta.chunks()}));
    }
  }
}

// The simulated workers on a helper thread of this process.
class SimulatedWorkers {
 public:
  SimulatedWorkers(std::string endpoint, int count, const cohort::EncodedPayload& delta,
                   std::optional<cohort::PublicKey> server)
      : thread_([this, endpoint = std::move(endpoint), count, &delta, server] {
          try {
            serve_simulated_workers(endpoint, count, delta, server);
          } catch (const std::exception& e) {
            std::lock_guard lock(mutex_);
            error_ = e.what();
          }
        }) {}

  ~SimulatedWorkers() { join(); }

  // Waits for the thread to finish (after every worker got a Bye) and
  // returns the error it met, or an empty string.
  std::string join() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  std::mutex mutex_;
  std::string error_;
  std::thread thread_;
};

double thread_cpu_now() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

struct Phases {
  double announce = 0, collect = 0, collect_active = 0, aggregate = 0, stack = 0;
  double update_cpu = 0;      // coordinator-thread CPU handling updates
  double collect_io_cpu = 0;  // coordinator I/O-thread CPU during collect
  double bytes_out = 0, bytes_in = 0;
};

// The coordinator's side of the benchmark.
class BenchCoordinator {
 public:
  BenchCoordinator(int workers, int64_t numel, bool curve)
      : identity_(cohort::Identity::generate()), log_(std::cerr, cohort::LogLevel::kQuiet, "bench"),
        router_(with_named_threads(context_), zmq::socket_type::router), layout_(make_layout(numel)) {
    router_.set(zmq::sockopt::router_mandatory, 1);
    router_.set(zmq::sockopt::linger, 0);
    if (curve) {
      zap_ = take(cohort::ZapHandler::start(context_, cohort::Admission{}, log_));
      cohort::make_curve_server(router_, identity_);
    }
    router_.bind("tcp://127.0.0.1:*");
    for (int i = 0; i < workers; ++i) routing_ids_.push_back(worker_id(i));
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
    global_ = at::randn({numel}, generator);
  }

  std::string endpoint() const { return router_.get(zmq::sockopt::last_endpoint); }
  const cohort::Layout& layout() const { return layout_; }
  // The key workers must pin when CURVE is on.
  std::optional<cohort::PublicKey> curve_key() const {
    return zap_ ? std::optional(identity_.public_key()) : std::nullopt;
  }

  // Waits for every worker's Hello, so that sends can be routed, and
  // keeps its key; with CURVE the key must be the connection's.
  void await_workers() {
    worker_keys_.resize(routing_ids_.size());
    for (size_t seen = 0; seen < routing_ids_.size(); ++seen) {
      auto in = cohort::receive_message(router_, true, kReplyTimeout);
      if (!in || !in->message.ok() || !std::holds_alternative<cohort::Hello>(*in->message)) {
        throw std::runtime_error("a simulated worker did not say hello");
      }
      const cohort::PublicKey& key = std::get<cohort::Hello>(*in->message).worker_key;
      if (zap_ && !cohort::authenticated_as(in->user_id, key)) {
        throw std::runtime_error("a Hello whose key is not the connection's");
      }
      const std::string& id = in->peer;
      worker_keys_.at(static_cast<size_t>(std::stoi(id.substr(1)))) = key;
    }
  }

  void run_round(uint32_t round, Phases& phases) {
    const int n = static_cast<int>(routing_ids_.size());

    // announce
    auto t = Clock::now();
    cohort::EncodedPayload model = take(cohort::encode_payload(layout_, global_, kChunkBytes));
    cohort::Task task;
    task.round = round;
    task.model_name = "bench";
    task.hyper.local_steps = 1;
    task.model = model.header();
    for (int i = 0; i < n; ++i) {
      task.task_id = (uint64_t{round} << 32) | static_cast<uint64_t>(i);
      task.signature = identity_.sign(cohort::task_signing_bytes(task, worker_keys_[static_cast<size_t>(i)]));
      phases.bytes_out += static_cast<double>(take(cohort::send_message(
          router_, cohort::Outgoing{task, model.chunks()}, routing_ids_[i])));
    }
    phases.announce += seconds_since(t);

    // collect
    t = Clock::now();
    const double io_cpu_start = thread_cpu_seconds(kCoordinatorThreadPrefix);
    const cohort::PayloadLimits limits = payload_limits();
    std::vector<at::Tensor> rows;
    std::vector<double> weights;
    std::vector<bool> answered(static_cast<size_t>(n), false);
    rows.reserve(static_cast<size_t>(n));
    while (static_cast<int>(rows.size()) < n) {
      zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
      if (zmq::poll(&item, 1, std::chrono::duration_cast<std::chrono::milliseconds>(kReplyTimeout)) == 0) {
        throw std::runtime_error("timed out waiting for updates");
      }
      const auto active = Clock::now();
      const double cpu = thread_cpu_now();
      auto in = cohort::receive_message(router_, true, std::chrono::milliseconds(0));
      if (!in) continue;
      phases.bytes_in += static_cast<double>(in->bytes);
      if (!in->message.ok()) throw std::runtime_error(in->message.status().to_string());
      const auto* update = std::get_if<cohort::Update>(&*in->message);
      if (update == nullptr) throw std::runtime_error("coordinator got an unexpected message");
      const auto index = static_cast<size_t>(update->task_id & 0xffffffffu);
      if (update->round != round || index >= answered.size() || answered[index] ||
          update->base_model_hash != model.header().digest) {
        throw std::runtime_error("update for the wrong round, task or base model");
      }
      if (!cohort::verify_signature(worker_keys_[index], cohort::update_signing_bytes(*update, worker_keys_[index]),
                                    update->signature)) {
        throw std::runtime_error("an update whose signature does not verify");
      }
      answered[index] = true;
      cohort::DecodedPayload delta =
          take(cohort::decode_payload(update->delta, std::move(in->payload), limits, &layout_));
      if (!at::isfinite(delta.flat).all().item<bool>()) {
        throw std::runtime_error("update contains NaN or Inf");
      }
      rows.push_back(std::move(delta.flat));
      weights.push_back(static_cast<double>(update->num_samples));
      phases.collect_active += seconds_since(active);
      phases.update_cpu += thread_cpu_now() - cpu;
    }
    phases.collect += seconds_since(t);
    phases.collect_io_cpu += thread_cpu_seconds(kCoordinatorThreadPrefix) - io_cpu_start;

    // aggregate
    t = Clock::now();
    at::Tensor stack = at::stack(rows);
    rows.clear();
    phases.stack += seconds_since(t);
    cohort::AggregationResult result = take(cohort::fedavg(stack, weights));
    // Not in place: the tasks' payload frames share global_'s bytes and
    // ZeroMQ may still be sending them.
    global_ = global_.add(result.aggregate);
    phases.aggregate += seconds_since(t);
  }

  void say_goodbye() {
    for (const auto& id : routing_ids_) {
      (void)cohort::send_message(router_, cohort::Outgoing{cohort::Bye{"done"}, {}}, id);
    }
  }

 private:
  cohort::Identity identity_;
  cohort::Logger log_;
  zmq::context_t context_;
  std::unique_ptr<cohort::ZapHandler> zap_;  // with CURVE; outlives router_
  zmq::socket_t router_;
  std::vector<std::string> routing_ids_;
  std::vector<cohort::PublicKey> worker_keys_;  // by worker index, from their Hellos
  cohort::Layout layout_;
  at::Tensor global_;
};

void BM_Round(benchmark::State& state) {
  at::set_num_threads(1);
  take_status(cohort::init_crypto());
  const int workers = static_cast<int>(state.range(0));
  const int64_t numel = state.range(1);
  const bool curve = state.range(2) != 0;

  BenchCoordinator coordinator(workers, numel, curve);
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(2);
  const cohort::EncodedPayload delta = take(cohort::encode_payload(
      coordinator.layout(), at::randn({numel}, generator) * 1e-3, kChunkBytes));
  std::string error;
  {
    SimulatedWorkers simulated(coordinator.endpoint(), workers, delta, coordinator.curve_key());
    try {
      coordinator.await_workers();
      Phases warmup;
      coordinator.run_round(0, warmup);  // connections, buffers, allocator

      Phases phases;
      uint32_t round = 1;
      const double io_cpu_start = thread_cpu_seconds(kCoordinatorThreadPrefix);
      for (auto _ : state) coordinator.run_round(round++, phases);
      const double io_cpu = thread_cpu_seconds(kCoordinatorThreadPrefix) - io_cpu_start;

      using benchmark::Counter;
      const auto avg_ms = [](double seconds) {
        return Counter(seconds * 1e3, Counter::kAvgIterations);
      };
      state.counters["announce_ms"] = avg_ms(phases.announce);
      state.counters["collect_ms"] = avg_ms(phases.collect);
      state.counters["collect_active_ms"] = avg_ms(phases.collect_active);
      state.counters["aggregate_ms"] = avg_ms(phases.aggregate);
      state.counters["stack_ms"] = avg_ms(phases.stack);
      state.counters["busy_ms"] = avg_ms(phases.announce + phases.collect_active + phases.aggregate);
      state.counters["io_cpu_ms"] = avg_ms(io_cpu);
      state.counters["MB_out"] = Counter(phases.bytes_out / 1e6, Counter::kAvgIterations);
      state.counters["MB_in"] = Counter(phases.bytes_in / 1e6, Counter::kAvgIterations);
    } catch (const std::exception& e) {
      error = e.what();
    }
    coordinator.say_goodbye();
    // A failed worker shows up as a coordinator timeout; report its cause.
    const std::string worker_error = simulated.join();
    if (!worker_error.empty()) error = "simulated worker: " + worker_error;
  }
  if (!error.empty()) state.SkipWithError(error.c_str());
}

// ------------------------------------------------------------------ load

constexpr std::string_view kWorkerMode = "--simulated-workers";

// The layout updates are sent in: a model's name, or a parameter count
// (make_layout).
cohort::Layout layout_for(const std::string& model_or_numel) {
  if (std::isdigit(static_cast<unsigned char>(model_or_numel.front()))) return make_layout(std::stoll(model_or_numel));
  return take(cohort::Model::create(model_or_numel, /*seed=*/0))->layout();
}

// Runs `count` simulated workers in a child process (this program in
// kWorkerMode); killed if still running when dropped.
class WorkerProcess {
 public:
  WorkerProcess(const std::string& endpoint, int count, const std::string& model_or_numel,
                const cohort::PublicKey& server) {
    std::vector<std::string> args = {"coordinator_bench", std::string(kWorkerMode), endpoint,
                                     std::to_string(count), model_or_numel, cohort::to_hex(server)};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start the simulated-worker process");
    }
  }
  ~WorkerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  WorkerProcess(const WorkerProcess&) = delete;
  WorkerProcess& operator=(const WorkerProcess&) = delete;

  // Waits for the process (after every worker got a Bye); true if it
  // exited cleanly.
  bool wait() {
    int status = 0;
    const bool clean = ::waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    pid_ = -1;
    return clean;
  }

 private:
  pid_t pid_ = -1;
};

// The simulated-worker process: argv = [program, kWorkerMode, endpoint,
// count, model name or numel (layout_for), server key].
int simulated_worker_process(char** argv) {
  try {
    take_status(cohort::init_crypto());
    at::set_num_threads(1);
    const cohort::Layout layout = layout_for(argv[4]);
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(2);
    const cohort::EncodedPayload delta =
        take(cohort::encode_payload(layout, at::randn({layout.numel()}, generator) * 1e-3, kChunkBytes));
    serve_simulated_workers(argv[2], std::stoi(argv[3]), delta, take(cohort::parse_public_key(argv[5])));
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "simulated workers: " << e.what() << "\n";
    return 1;
  }
}

// Forgets the process's peak resident set so far (Linux >= 4.0).
void reset_peak_memory() { std::ofstream("/proc/self/clear_refs") << "5"; }

// VmHWM from /proc/self/status, in MB.
double peak_memory_mb() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.starts_with("VmHWM:")) return std::stod(line.substr(6)) / 1024.0;  // kB
  }
  return 0.0;
}

// Nearest-rank percentile of `values` (0 < p <= 100).
double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(values.size())));
  return values[std::max<size_t>(rank, 1) - 1];
}

void BM_Load(benchmark::State& state) {
  at::set_num_threads(1);
  take_status(cohort::init_crypto());
  const int workers = static_cast<int>(state.range(0));
  const int64_t numel = state.range(1);
  std::string error;
  try {
    BenchCoordinator coordinator(workers, numel, /*curve=*/true);
    WorkerProcess process(coordinator.endpoint(), workers, std::to_string(numel), *coordinator.curve_key());
    reset_peak_memory();
    coordinator.await_workers();
    Phases warmup;
    coordinator.run_round(0, warmup);

    Phases phases;
    std::vector<double> latencies;
    uint32_t round = 1;
    for (auto _ : state) {
      const auto start = Clock::now();
      coordinator.run_round(round++, phases);
      latencies.push_back(seconds_since(start) * 1e3);
    }
    coordinator.say_goodbye();
    if (!process.wait()) throw std::runtime_error("the simulated-worker process failed (see its stderr)");

    const double updates = static_cast<double>(workers) * static_cast<double>(latencies.size());
    state.counters["p50_ms"] = percentile(latencies, 50);
    state.counters["p99_ms"] = percentile(latencies, 99);
    state.counters["peak_MB"] = peak_memory_mb();
    state.counters["update_cpu_ms"] = phases.update_cpu * 1e3 / updates;
    state.counters["io_cpu_ms_per_update"] = phases.collect_io_cpu * 1e3 / updates;
    state.counters["collect_ms"] = benchmark::Counter(phases.collect * 1e3, benchmark::Counter::kAvgIterations);
    state.counters["aggregate_ms"] =
        benchmark::Counter(phases.aggregate * 1e3, benchmark::Counter::kAvgIterations);
  } catch (const std::exception& e) {
    error = e.what();
  }
  if (!error.empty()) state.SkipWithError(error.c_str());
}

// The job BM_LoadCoordinator runs: `workers` simulated workers, the
// 1M-parameter mlp-wide, FedAvg, CURVE, no proof of learning.
cohort::JobConfig load_job(int workers, int rounds, const std::filesystem::path& output_dir) {
  cohort::JobConfig job;
  job.job.name = "load";
  job.job.rounds = rounds;
  job.job.output_dir = output_dir;
  job.model.name = "mlp-wide";
  job.data.eval_samples = 1000;
  job.round.min_workers = workers;
  job.round.deadline_seconds = 600;
  job.round.registration_timeout_seconds = 600;
  job.network.listen = "tcp://127.0.0.1:*";
  job.network.curve = true;
  job.proof.segment_steps = 0;
  return job;
}

// The real coordinator, wired as `cohort coordinator` wires it.
cohort::Result<std::unique_ptr<cohort::Coordinator>> start_coordinator(zmq::context_t& context,
                                                                       const cohort::JobConfig& job,
                                                                       const cohort::RuleRegistry& rules,
                                                                       cohort::Logger& log) {
  COHORT_ASSIGN_OR_RETURN(cohort::FileLock lock, cohort::lock_job(job));
  COHORT_ASSIGN_OR_RETURN(cohort::Identity identity, cohort::load_coordinator_identity(job, log));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<cohort::Channel> channel,
                          cohort::listen_router(context, job.network, identity, log));
  return cohort::Coordinator::create(job, {std::move(lock), std::move(identity), std::move(channel)}, rules, log);
}

void BM_LoadCoordinator(benchmark::State& state) {
  at::set_num_threads(1);
  take_status(cohort::init_crypto());
  const int workers = static_cast<int>(state.range(0));
  const int rounds = static_cast<int>(state.range(1));
  const std::filesystem::path output_dir =
      std::filesystem::temp_directory_path() / ("cohort-load-" + std::to_string(::getpid()));
  std::string error;
  try {
    zmq::context_t context;
    cohort::Logger log(std::cerr, cohort::LogLevel::kQuiet, "coordinator");
    cohort::RuleRegistry rules;
    cohort::register_builtin_rules(rules);
    auto coordinator = take(start_coordinator(with_named_threads(context), load_job(workers, rounds, output_dir),
                                              rules, log));
    WorkerProcess process(coordinator->endpoint(), workers, "mlp-wide", coordinator->public_key());
    reset_peak_memory();

    std::vector<double> latencies;
    double collect = 0, aggregate = 0, evaluate = 0, pre_aggregation_cpu = 0, round_cpu = 0;
    double updates = 0, all_updates = 0;
    const double io_cpu_start = thread_cpu_seconds(kCoordinatorThreadPrefix);
    for (auto _ : state) {
      const auto on_round = [&](const cohort::RoundMetrics& m) {
        all_updates += m.accepted;
        if (m.round == 1) return;  // a warm-up: the first tasks meet cold caches
        latencies.push_back(m.seconds.total * 1e3);
        collect += m.seconds.collect;
        aggregate += m.seconds.aggregate;
        evaluate += m.seconds.evaluate;
        pre_aggregation_cpu += m.cpu_seconds.announce + m.cpu_seconds.collect;
        round_cpu += m.cpu_seconds.total;
        updates += m.accepted;
      };
      const cohort::JobSummary summary = take(coordinator->run(on_round));
      if (summary.rounds_completed != rounds) throw std::runtime_error("the job did not finish");
    }
    const double io_cpu = thread_cpu_seconds(kCoordinatorThreadPrefix) - io_cpu_start;
    if (!process.wait()) throw std::runtime_error("the simulated-worker process failed (see its stderr)");
    if (latencies.empty() || updates == 0) throw std::runtime_error("no round after the first");

    const double measured = static_cast<double>(latencies.size());
    state.counters["p50_ms"] = percentile(latencies, 50);
    state.counters["p99_ms"] = percentile(latencies, 99);
    state.counters["peak_MB"] = peak_memory_mb();
    state.counters["pre_aggregation_cpu_ms_per_update"] = pre_aggregation_cpu * 1e3 / updates;
    state.counters["round_cpu_ms_per_update"] = round_cpu * 1e3 / updates;
    state.counters["io_cpu_ms_per_update"] = io_cpu * 1e3 / all_updates;  // every round, registrations too
    state.counters["collect_ms"] = collect * 1e3 / measured;
    state.counters["aggregate_ms"] = aggregate * 1e3 / measured;
    state.counters["evaluate_ms"] = evaluate * 1e3 / measured;
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::filesystem::remove_all(output_dir);
  if (!error.empty()) state.SkipWithError(error.c_str());
}

constexpr int64_t kHalfMillion = 500'000;
constexpr int64_t kTenMillion = 10'000'000;

// Each size plaintext and with CURVE.
BENCHMARK(BM_Round)->ArgNames({"workers", "params", "curve"})->ArgsProduct({{8}, {kHalfMillion}, {0, 1}})
    ->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Round)->ArgNames({"workers", "params", "curve"})->ArgsProduct({{64}, {kHalfMillion}, {0, 1}})
    ->Iterations(10)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Round)->ArgNames({"workers", "params", "curve"})->ArgsProduct({{8}, {kTenMillion}, {0, 1}})
    ->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Round)->ArgNames({"workers", "params", "curve"})->ArgsProduct({{64}, {kTenMillion}, {0, 1}})
    ->Iterations(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// 500 concurrent workers, a 1M-parameter model, CURVE on.
BENCHMARK(BM_Load)->ArgNames({"workers", "params"})->Args({500, 1'000'000})->Iterations(5)
    ->UseRealTime()->Unit(benchmark::kMillisecond);
// The same through the real Coordinator: a job of 6 rounds (5 measured).
BENCHMARK(BM_LoadCoordinator)->ArgNames({"workers", "rounds"})->Args({500, 6})->Iterations(1)
    ->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && argv[1] == kWorkerMode) return simulated_worker_process(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
