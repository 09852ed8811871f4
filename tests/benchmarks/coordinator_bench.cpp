// The real coordinator's rounds (cohort::Coordinator, coordinator/), without
// local training, over ZeroMQ TCP loopback.
//
// Every benchmark here starts a Coordinator as `cohort coordinator` does
// (start_coordinator: lock_job, load_coordinator_identity, listen_router,
// Coordinator::create) and runs a job of one warm-up round plus one round
// per benchmark iteration (Coordinator::run; the iteration loop is advanced
// from its per-round callback, so Time is one round and CPU is the
// coordinator thread's CPU per round). The job (bench_job): a built-in
// model, FedAvg, every registered worker in every round, evaluation on
// 1000 test images, a checkpoint and a metrics.jsonl line every round (in a
// temporary directory), no proof of learning, CURVE on or off. Its peers are
// simulated workers (simulated_workers.h): DEALER sockets that check each
// Task's signature, decode its model and answer with a signed, precomputed
// delta without training.
//
// BM_Round: 8 or 64 workers on one helper thread of this process, the
// models "mlp" (535,818 parameters) and "mlp-wide" (1,068,810), each with
// curve = 0 (plaintext) and curve = 1 (every connection CurveZMQ: the
// coordinator a CURVE server with a ZAP handler, each worker a CURVE
// client with its own derived key). Until the benchmark ran the real
// coordinator it drove a hand-written copy of the round with synthetic
// models of 0.5M and 10M parameters; the built-in models are the sizes it
// can run now (none is near 10M).
//
// BM_LoadCoordinator: the load test, 500 workers in a child process (so
// that the process's peak memory, VmHWM reset before the workers connect,
// is the coordinator's), "mlp-wide", CURVE on, 5 measured rounds. Besides
// the counters below it reports round latency p50/p99 (nearest rank over
// the measured rounds), peak_MB and the coordinator's CPU per update:
// pre_aggregation_cpu_ms_per_update (announce + collect: sending the tasks,
// receiving, checking and decoding the updates), round_cpu_ms_per_update
// (the whole round) and io_cpu_ms_per_update (its I/O thread).
//
// Reported per measured round (averages), from the RoundMetrics the
// coordinator gives its callback (metrics.jsonl holds the same):
//   Time (real)             the round, wall clock
//   CPU                     the coordinator thread's CPU time over the same
//   announce_ms ...         wall seconds of each phase: announce, collect,
//     checkpoint_ms, total_ms  aggregate, evaluate, checkpoint, and the
//                              round's total (RoundMetrics.seconds)
//   announce_cpu_ms ...     the coordinator thread's CPU in each phase
//     total_cpu_ms            (RoundMetrics.cpu_seconds)
//   MB_out, MB_in           bytes sent and received (RoundMetrics)
//   io_cpu_ms               CPU time of the coordinator context's ZeroMQ I/O
//                           thread (framing, TCP, with CURVE encryption and
//                           decryption), read from /proc/self/task between
//                           the callbacks of consecutive rounds
// The hand-written loop's collect_active_ms, stack_ms and busy_ms are gone:
// the coordinator does not time a phase's active part or the stack alone;
// collect_cpu_ms and total_cpu_ms are the nearest it gives.
//
// In BM_Round the workers' thread and both contexts' I/O threads compete
// with the coordinator thread for the same cores, so wall-clock numbers are
// upper bounds of what a coordinator alone would see. Torch runs with 1
// intra-op thread.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "cohort/aggregation.h"
#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/log.h"
#include "cohort/router_channel.h"
#include "simulated_workers.h"

namespace {

using cohort_bench::take;
using cohort_bench::take_status;

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

// The job every benchmark runs: `workers` simulated workers, all in every
// round, FedAvg, evaluation on 1000 test images, no proof of learning.
cohort::JobConfig bench_job(const std::string& model, int workers, int rounds, bool curve,
                            const std::filesystem::path& output_dir) {
  cohort::JobConfig job;
  job.job.name = "bench";
  job.job.rounds = rounds;
  job.job.output_dir = output_dir;
  job.model.name = model;
  job.data.eval_samples = 1000;
  job.round.min_workers = workers;
  job.round.deadline_seconds = 600;
  job.round.registration_timeout_seconds = 600;
  job.network.listen = "tcp://127.0.0.1:*";
  job.network.curve = curve;
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
  auto shared = std::make_shared<const cohort::Identity>(std::move(identity));
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<cohort::Channel> channel,
                          cohort::listen_router(context, job.network, *shared, log));
  cohort::CoordinatorParts parts{std::move(lock), std::make_shared<const cohort::SystemClock>(), std::move(shared),
                                 nullptr, std::move(channel)};
  return cohort::Coordinator::create(job, std::move(parts), rules, log);
}

// Where the simulated workers run.
enum class Peers { kThread, kProcess };

// Sums of the measured rounds' RoundMetrics.
struct Totals {
  cohort::PhaseSeconds seconds, cpu_seconds;
  double bytes_out = 0, bytes_in = 0, io_cpu = 0, updates = 0;
  std::vector<double> latencies_ms;  // RoundMetrics.seconds.total
};

void add(cohort::PhaseSeconds& sum, const cohort::PhaseSeconds& phases) {
  sum.announce += phases.announce;
  sum.collect += phases.collect;
  sum.aggregate += phases.aggregate;
  sum.evaluate += phases.evaluate;
  sum.checkpoint += phases.checkpoint;
  sum.total += phases.total;
}

void report(benchmark::State& state, const Totals& totals) {
  const double rounds = static_cast<double>(totals.latencies_ms.size());
  const auto ms = [&](double seconds) { return seconds * 1e3 / rounds; };
  const auto phases = [&](const cohort::PhaseSeconds& s, const std::string& suffix) {
    state.counters["announce" + suffix] = ms(s.announce);
    state.counters["collect" + suffix] = ms(s.collect);
    state.counters["aggregate" + suffix] = ms(s.aggregate);
    state.counters["evaluate" + suffix] = ms(s.evaluate);
    state.counters["checkpoint" + suffix] = ms(s.checkpoint);
    state.counters["total" + suffix] = ms(s.total);
  };
  phases(totals.seconds, "_ms");
  phases(totals.cpu_seconds, "_cpu_ms");
  state.counters["io_cpu_ms"] = ms(totals.io_cpu);
  state.counters["MB_out"] = totals.bytes_out / 1e6 / rounds;
  state.counters["MB_in"] = totals.bytes_in / 1e6 / rounds;
}

// Runs a job of 1 + state.max_iterations rounds of `model` with `workers`
// simulated workers and reports the rounds after the first (a warm-up:
// connections, buffers, allocator). Returns the totals, or nothing after
// state.SkipWithError.
std::optional<Totals> run_job(benchmark::State& state, const std::string& model, int workers, bool curve,
                              Peers peers) {
  at::set_num_threads(1);
  take_status(cohort::init_crypto());
  const int rounds = static_cast<int>(state.max_iterations) + 1;
  const std::filesystem::path output_dir =
      std::filesystem::temp_directory_path() / ("cohort-bench-" + std::to_string(::getpid()));
  std::filesystem::remove_all(output_dir);
  Totals totals;
  std::string error;
  bool finished = false;  // KeepRunning returned false
  try {
    zmq::context_t context;
    cohort::Logger log(std::cerr, cohort::LogLevel::kQuiet, "coordinator");
    cohort::RuleRegistry rules;
    cohort::register_builtin_rules(rules);
    auto coordinator = take(start_coordinator(with_named_threads(context),
                                              bench_job(model, workers, rounds, curve, output_dir), rules, log));
    const cohort_bench::WorkerSpec spec{coordinator->endpoint(), workers, model, coordinator->public_key(), curve};
    std::optional<cohort_bench::SimulatedWorkers> thread;
    std::optional<cohort_bench::WorkerProcess> process;
    if (peers == Peers::kThread) {
      thread.emplace(spec);
    } else {
      process.emplace(spec);
    }
    reset_peak_memory();

    double io_cpu_before = 0;
    const auto on_round = [&](const cohort::RoundMetrics& m) {
      const double io_cpu = thread_cpu_seconds(kCoordinatorThreadPrefix);
      if (m.round > 1) {
        add(totals.seconds, m.seconds);
        add(totals.cpu_seconds, m.cpu_seconds);
        totals.bytes_out += static_cast<double>(m.bytes_out);
        totals.bytes_in += static_cast<double>(m.bytes_in);
        totals.io_cpu += io_cpu - io_cpu_before;
        totals.updates += m.accepted;
        totals.latencies_ms.push_back(m.seconds.total * 1e3);
      }
      io_cpu_before = io_cpu;
      // Round 1's callback starts the timer; each later one ends an
      // iteration, the last returning false.
      finished = !state.KeepRunning();
    };
    const cohort::Result<cohort::JobSummary> summary = coordinator->run(on_round);
    // A failed worker shows up as a coordinator timeout; report its cause.
    if (thread) {
      const std::string worker_error = thread->join();
      if (!worker_error.empty()) throw std::runtime_error("simulated worker: " + worker_error);
    }
    if (process && !process->wait()) throw std::runtime_error("the simulated-worker process failed (see its stderr)");
    if (!summary.ok()) throw std::runtime_error(summary.status().to_string());
    if (!finished || summary.value().rounds_completed != rounds) throw std::runtime_error("the job did not finish");
    if (totals.updates == 0) throw std::runtime_error("no update accepted after the first round");
  } catch (const std::exception& e) {
    error = e.what();
  }
  std::filesystem::remove_all(output_dir);
  if (!error.empty()) {
    state.SkipWithError(error.c_str());
    return std::nullopt;
  }
  report(state, totals);
  return totals;
}

void BM_Round(benchmark::State& state, const char* model) {
  run_job(state, model, static_cast<int>(state.range(0)), state.range(1) != 0, Peers::kThread);
}

void BM_LoadCoordinator(benchmark::State& state) {
  const int workers = static_cast<int>(state.range(0));
  const std::optional<Totals> totals = run_job(state, "mlp-wide", workers, /*curve=*/true, Peers::kProcess);
  if (!totals) return;
  state.counters["p50_ms"] = percentile(totals->latencies_ms, 50);
  state.counters["p99_ms"] = percentile(totals->latencies_ms, 99);
  state.counters["peak_MB"] = peak_memory_mb();
  const double per_update = 1e3 / totals->updates;
  state.counters["pre_aggregation_cpu_ms_per_update"] =
      (totals->cpu_seconds.announce + totals->cpu_seconds.collect) * per_update;
  state.counters["round_cpu_ms_per_update"] = totals->cpu_seconds.total * per_update;
  state.counters["io_cpu_ms_per_update"] = totals->io_cpu * per_update;
}

// Each model and worker count plaintext and with CURVE.
BENCHMARK_CAPTURE(BM_Round, mlp, "mlp")->ArgNames({"workers", "curve"})->ArgsProduct({{8}, {0, 1}})
    ->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, mlp, "mlp")->ArgNames({"workers", "curve"})->ArgsProduct({{64}, {0, 1}})
    ->Iterations(10)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, mlp-wide, "mlp-wide")->ArgNames({"workers", "curve"})->ArgsProduct({{8}, {0, 1}})
    ->Iterations(20)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Round, mlp-wide, "mlp-wide")->ArgNames({"workers", "curve"})->ArgsProduct({{64}, {0, 1}})
    ->Iterations(5)->UseRealTime()->Unit(benchmark::kMillisecond);

// 500 concurrent workers, mlp-wide, CURVE on: a job of 6 rounds, 5 measured.
BENCHMARK(BM_LoadCoordinator)->ArgNames({"workers"})->Arg(500)->Iterations(5)
    ->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  if (cohort_bench::is_worker_process(argc, argv)) return cohort_bench::simulated_worker_process(argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
