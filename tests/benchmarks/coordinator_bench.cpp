// Coordinator overhead per round, without local training, over real ZeroMQ
// TCP loopback.
//
// The benchmark thread plays the coordinator: a ROUTER socket, the same
// steps as Coordinator's round (coordinator/src/coordinator.cpp) minus
// evaluation, checkpoint and results:
//   announce   encode the global model once (encode_payload), send a Task
//              and the model's chunks to each of N workers (send_message)
//   collect    receive N Updates (receive_message), decode each delta with
//              decode_payload (verify_digest on, expected layout), check
//              at::isfinite(...).all()
//   aggregate  at::stack, cohort::fedavg with sample-count weights,
//              global += aggregate
// N simulated workers are N DEALER sockets driven by one helper thread with
// their own ZeroMQ context (as separate processes would have): each decodes
// its task payload (verify on) and at once replies with a precomputed Update
// and delta payload. They do not train.
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

#include <unistd.h>

#include <chrono>
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
#include "cohort/log.h"
#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "cohort/wire.h"

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

// N DEALER sockets on one thread, answering every Task with the same
// precomputed delta until each receives a Bye. With `server` set they
// connect with CURVE, each under its own identity.
class SimulatedWorkers {
 public:
  SimulatedWorkers(std::string endpoint, int count, const cohort::EncodedPayload& delta,
                   std::optional<cohort::PublicKey> server)
      : endpoint_(std::move(endpoint)), count_(count), delta_(delta), server_(server),
        thread_([this] { run(); }) {}

  ~SimulatedWorkers() { join(); }

  // Waits for the thread to finish (after every worker got a Bye) and
  // returns the error it met, or an empty string.
  std::string join() {
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mutex_);
    return error_;
  }

 private:
  void run() {
    try {
      serve();
    } catch (const std::exception& e) {
      std::lock_guard lock(mutex_);
      error_ = e.what();
    }
  }

  void serve() {
    zmq::context_t context;
    std::vector<zmq::socket_t> sockets;
    std::vector<zmq::pollitem_t> items;
    for (int i = 0; i < count_; ++i) {
      zmq::socket_t& socket = sockets.emplace_back(context, zmq::socket_type::dealer);
      socket.set(zmq::sockopt::routing_id, worker_id(i));
      socket.set(zmq::sockopt::linger, 0);
      if (server_) take_status(cohort::make_curve_client(socket, cohort::Identity::generate(), *server_));
      socket.connect(endpoint_);
      take(cohort::send_message(socket, cohort::Outgoing{cohort::Hello{}, {}}));
    }
    for (auto& socket : sockets) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});

    const cohort::PayloadLimits limits = payload_limits();
    int finished = 0;
    while (finished < count_) {
      zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
      for (int i = 0; i < count_; ++i) {
        if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
        auto in = cohort::receive_message(sockets[i], false, std::chrono::milliseconds(0));
        if (!in) continue;
        if (!in->message.ok()) throw std::runtime_error(in->message.status().to_string());
        if (std::holds_alternative<cohort::Bye>(*in->message)) {
          ++finished;
          continue;
        }
        const auto* task = std::get_if<cohort::Task>(&*in->message);
        if (task == nullptr) throw std::runtime_error("worker got an unexpected message");
        // What a worker does before training: rebuild the model it was sent.
        cohort::DecodedPayload model =
            take(cohort::decode_payload(task->model, std::move(in->payload), limits));
        benchmark::DoNotOptimize(model.flat.data_ptr());

        cohort::Update update;
        update.round = task->round;
        update.task_id = task->task_id;
        update.num_samples = 100 + static_cast<uint64_t>(i);
        update.metrics.steps = 1;
        update.base_model_hash = task->model.digest;
        update.delta = delta_.header();
        take(cohort::send_message(sockets[i], cohort::Outgoing{update, delta_.chunks()}));
      }
    }
  }

  std::string endpoint_;
  int count_;
  const cohort::EncodedPayload& delta_;
  std::optional<cohort::PublicKey> server_;
  std::mutex mutex_;
  std::string error_;
  std::thread thread_;
};

struct Phases {
  double announce = 0, collect = 0, collect_active = 0, aggregate = 0, stack = 0;
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
    for (int i = 0; i < workers; ++i) {
      const std::string id = worker_id(i);
      routing_ids_.emplace_back(id.data(), id.size());
    }
    at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(1);
    global_ = at::randn({numel}, generator);
  }

  std::string endpoint() const { return router_.get(zmq::sockopt::last_endpoint); }
  const cohort::Layout& layout() const { return layout_; }
  // The key workers must pin when CURVE is on.
  std::optional<cohort::PublicKey> curve_key() const {
    return zap_ ? std::optional(identity_.public_key()) : std::nullopt;
  }

  // Waits for every worker's Hello, so that sends can be routed.
  void await_workers() {
    for (size_t seen = 0; seen < routing_ids_.size(); ++seen) {
      auto in = cohort::receive_message(router_, true, kReplyTimeout);
      if (!in || !in->message.ok() || !std::holds_alternative<cohort::Hello>(*in->message)) {
        throw std::runtime_error("a simulated worker did not say hello");
      }
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
      phases.bytes_out += static_cast<double>(take(cohort::send_message(
          router_, cohort::Outgoing{task, model.chunks()}, &routing_ids_[i])));
    }
    phases.announce += seconds_since(t);

    // collect
    t = Clock::now();
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
      answered[index] = true;
      cohort::DecodedPayload delta =
          take(cohort::decode_payload(update->delta, std::move(in->payload), limits, &layout_));
      if (!at::isfinite(delta.flat).all().item<bool>()) {
        throw std::runtime_error("update contains NaN or Inf");
      }
      rows.push_back(std::move(delta.flat));
      weights.push_back(static_cast<double>(update->num_samples));
      phases.collect_active += seconds_since(active);
    }
    phases.collect += seconds_since(t);

    // aggregate
    t = Clock::now();
    at::Tensor stack = at::stack(rows);
    rows.clear();
    phases.stack += seconds_since(t);
    cohort::AggregationResult result = take(cohort::fedavg(stack, weights));
    global_.add_(result.aggregate);
    phases.aggregate += seconds_since(t);
  }

  void say_goodbye() {
    for (const auto& id : routing_ids_) {
      (void)cohort::send_message(router_, cohort::Outgoing{cohort::Bye{"done"}, {}}, &id);
    }
  }

 private:
  cohort::Identity identity_;
  cohort::Logger log_;
  zmq::context_t context_;
  std::unique_ptr<cohort::ZapHandler> zap_;  // with CURVE; outlives router_
  zmq::socket_t router_;
  std::vector<zmq::message_t> routing_ids_;
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

}  // namespace

BENCHMARK_MAIN();
