#include "simulated_workers.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <optional>
#include <variant>
#include <vector>

#include <zmq.hpp>

#include "cohort/models.h"
#include "cohort/tensor_codec.h"
#include "cohort/transport.h"
#include "cohort/wire.h"

extern char** environ;

namespace cohort_bench {
namespace {

constexpr size_t kChunkBytes = size_t{16} << 20;

std::string worker_id(int index) {
  char id[16];
  std::snprintf(id, sizeof(id), "w%03d", index);
  return id;
}

// The delta every worker sends: random, in the model's layout.
cohort::EncodedPayload simulated_delta(const std::string& model) {
  const cohort::Layout layout = take(cohort::Model::create(model, /*seed=*/0))->layout();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(2);
  return take(cohort::encode_payload(layout, at::randn({layout.numel()}, generator) * 1e-3, kChunkBytes));
}

}  // namespace

void serve_simulated_workers(const WorkerSpec& spec) {
  const cohort::EncodedPayload delta = simulated_delta(spec.model);
  zmq::context_t context;
  std::vector<cohort::Identity> identities;
  std::vector<zmq::socket_t> sockets;
  std::vector<zmq::pollitem_t> items;
  for (int i = 0; i < spec.count; ++i) {
    const cohort::Identity& identity = identities.emplace_back(cohort::Identity::generate());
    zmq::socket_t& socket = sockets.emplace_back(context, zmq::socket_type::dealer);
    socket.set(zmq::sockopt::routing_id, worker_id(i));
    socket.set(zmq::sockopt::linger, 0);
    if (spec.curve) take_status(cohort::make_curve_client(socket, identity, spec.server));
    socket.connect(spec.endpoint);
    cohort::Hello hello;
    hello.worker_key = identity.public_key();
    take(cohort::send_message(socket, cohort::Outgoing{hello, {}}));
  }
  for (auto& socket : sockets) items.push_back({socket.handle(), 0, ZMQ_POLLIN, 0});

  cohort::PayloadLimits limits;
  limits.max_bytes = uint64_t{1} << 30;
  limits.verify_digest = true;
  int finished = 0;
  while (finished < spec.count) {
    zmq::poll(items.data(), items.size(), std::chrono::milliseconds(100));
    for (int i = 0; i < spec.count; ++i) {
      if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
      auto in = cohort::receive_message(sockets[i], false, std::chrono::milliseconds(0));
      if (!in) continue;
      if (!in->message.ok()) throw std::runtime_error(in->message.status().to_string());
      if (std::holds_alternative<cohort::Bye>(*in->message)) {
        ++finished;
        continue;
      }
      if (std::holds_alternative<cohort::Welcome>(*in->message) ||
          std::holds_alternative<cohort::RoundResult>(*in->message)) {
        continue;
      }
      const auto* task = std::get_if<cohort::Task>(&*in->message);
      if (task == nullptr) throw std::runtime_error("worker got an unexpected message");
      const cohort::PublicKey& key = identities[static_cast<size_t>(i)].public_key();
      if (!cohort::verify_signature(spec.server, cohort::task_signing_bytes(*task, key), task->signature)) {
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

SimulatedWorkers::SimulatedWorkers(WorkerSpec spec)
    : thread_([this, spec = std::move(spec)] {
        try {
          serve_simulated_workers(spec);
        } catch (const std::exception& e) {
          std::lock_guard lock(mutex_);
          error_ = e.what();
        }
      }) {}

std::string SimulatedWorkers::join() {
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  return error_;
}

// argv = [program, kWorkerMode, endpoint, count, model, server key, curve].
constexpr int kWorkerArgc = 7;

WorkerProcess::WorkerProcess(const WorkerSpec& spec) {
  std::vector<std::string> args = {"coordinator_bench", std::string(kWorkerMode), spec.endpoint,
                                   std::to_string(spec.count), spec.model, cohort::to_hex(spec.server),
                                   spec.curve ? "1" : "0"};
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  if (::posix_spawn(&pid_, "/proc/self/exe", nullptr, nullptr, argv.data(), environ) != 0) {
    throw std::runtime_error("cannot start the simulated-worker process");
  }
}

WorkerProcess::~WorkerProcess() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
}

bool WorkerProcess::wait() {
  int status = 0;
  const bool clean = ::waitpid(pid_, &status, 0) == pid_ && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  pid_ = -1;
  return clean;
}

bool is_worker_process(int argc, char** argv) { return argc == kWorkerArgc && argv[1] == kWorkerMode; }

int simulated_worker_process(char** argv) {
  try {
    take_status(cohort::init_crypto());
    at::set_num_threads(1);
    WorkerSpec spec;
    spec.endpoint = argv[2];
    spec.count = std::stoi(argv[3]);
    spec.model = argv[4];
    spec.server = take(cohort::parse_public_key(argv[5]));
    spec.curve = std::string_view(argv[6]) == "1";
    serve_simulated_workers(spec);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "simulated workers: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace cohort_bench
