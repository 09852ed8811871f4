// Study 2 of experiments/: what proof of learning catches, and what it
// costs. Real provers (cohort/cheats.h), the real verifier and the real
// challenge derivation, without the network (the wire adds nothing to
// either question):
//
//   pol_experiment detection --out DIR   cheaters faking a fraction q of their
//       segments; every segment of every task is re-executed once (the
//       ground truth), then `trials` challenges per task and s are drawn with
//       derive_challenge from fresh secrets; plus honest tasks, trained at 1
//       thread and re-executed at 2, counting false positives.
//   pol_experiment cost --out DIR        CPU seconds of training without and
//       with commitments, and of re-executing each segment (the default
//       model, "cnn", on Fashion-MNIST).
//
// Writes CSV files into DIR; plot.py draws them. Progress and an ETA go to
// stderr.
#include <ATen/Parallel.h>
#include <boost/program_options.hpp>
#include <time.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "cohort/cheats.h"
#include "cohort/crypto.h"
#include "cohort/dataset.h"
#include "cohort/proof_of_learning.h"

namespace po = boost::program_options;
using namespace cohort;

namespace {

// CPU seconds of the whole process (every thread): unlike wall time, other
// programs on a shared machine do not inflate it.
double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class Progress {
 public:
  Progress(std::string what, size_t total) : what_(std::move(what)), total_(total), start_(wall_seconds()) {}
  void step() {
    ++done_;
    const double elapsed = wall_seconds() - start_;
    const double eta = elapsed / static_cast<double>(done_) * static_cast<double>(total_ - done_);
    std::fprintf(stderr, "\r[%s] %zu/%zu, %.0f s elapsed, ETA %.0f s   ", what_.c_str(), done_, total_, elapsed,
                 eta);
    if (done_ == total_) std::fprintf(stderr, "\n");
  }

 private:
  std::string what_;
  size_t total_, done_ = 0;
  double start_;
};

[[noreturn]] void die(const std::string& what, const Status& status) {
  std::cerr << "pol_experiment: " << what << ": " << status.to_string() << "\n";
  std::exit(1);
}

template <typename T>
T value_or_die(Result<T> result, const std::string& what) {
  if (!result.ok()) die(what, result.status());
  return std::move(result).value();
}

TensorDataset fashion_mnist_shard(int64_t samples) {
  LabeledImages all = value_or_die(load_mnist_format_dir(kDefaultFashionMnistDir, Split::kTrain),
                                   "Fashion-MNIST (Debian package dataset-fashion-mnist)");
  std::vector<int64_t> first(static_cast<size_t>(samples));
  for (int64_t i = 0; i < samples; ++i) first[static_cast<size_t>(i)] = i;
  return to_tensors(select_samples(all, first));
}

Hyperparameters sgd(uint32_t steps) {
  Hyperparameters hyper;
  hyper.local_steps = steps;
  hyper.batch_size = 32;
  hyper.learning_rate = 0.05;
  hyper.momentum = 0.9;
  return hyper;
}

// One task's ground truth: which segments fail re-execution, and the CPU
// seconds of training and of re-executing each segment.
struct TaskOutcome {
  Commitment commitment;
  std::set<uint32_t> failing;
  double train_cpu = 0.0;
  std::vector<double> verify_cpu;  // by segment - 1
};

struct Setup {
  std::string model = "mlp";
  TensorDataset shard;
  Hyperparameters hyper;
  ProofParams params;
  std::filesystem::path scratch_dir;
};

TaskOutcome run_task(const Setup& setup, const Cheat& cheat, uint64_t task_id, int train_threads,
                     int verify_threads) {
  auto model = value_or_die(Model::create(setup.model, task_id), "model");
  auto scratch = value_or_die(Model::create(setup.model, 0), "model");
  const at::Tensor start = model->flat_parameters();
  const std::filesystem::path dir = setup.scratch_dir / ("task-" + std::to_string(task_id));
  TaskOutcome out;
  at::set_num_threads(train_threads);
  CheatMemory memory;
  const double t0 = cpu_seconds();
  ProvenTraining proven = value_or_die(
      train_dishonestly(cheat, *model, setup.shard, setup.hyper, task_id, task_id, setup.params, dir, memory),
      "training");
  out.train_cpu = cpu_seconds() - t0;
  out.commitment = proven.commitment;

  at::set_num_threads(verify_threads);
  AuditContext context;
  context.shard = &setup.shard;
  context.hyper = setup.hyper;
  context.seed = task_id;
  context.task_id = task_id;
  context.params = setup.params;
  context.root = proven.commitment.root;
  context.total_steps = proven.commitment.total_steps;
  context.start_parameters = start;
  context.submitted_delta = proven.training.delta;
  const uint32_t segments = segment_count(proven.commitment.total_steps, setup.params.segment_steps);
  for (uint32_t j = 1; j <= segments; ++j) {
    const double v0 = cpu_seconds();
    SegmentOpening opening =
        value_or_die(open_segment(proven.commitment, task_id, dir, j), "opening segment " + std::to_string(j));
    if (!verify_segment(*scratch, context, opening).passed) out.failing.insert(j);
    out.verify_cpu.push_back(cpu_seconds() - v0);
  }
  std::filesystem::remove_all(dir);
  return out;
}

// A secret no party could know in advance, reproducible from the indices.
Digest trial_secret(uint64_t task_id, uint32_t s, uint32_t trial) {
  CanonicalBytes bytes("pol-experiment-secret");
  bytes.u64(task_id).u32(s).u32(trial);
  return blake2b_256(bytes.data());
}

int detection(const po::variables_map& vm) {
  const std::filesystem::path out = vm["out"].as<std::string>();
  const bool quick = vm.count("quick") > 0;
  const int tasks = quick ? 4 : vm["tasks"].as<int>();
  const uint32_t trials = quick ? 500 : vm["trials"].as<uint32_t>();
  const int honest_tasks = quick ? 4 : vm["honest-tasks"].as<int>();
  Setup setup;
  setup.model = "mlp";
  setup.shard = fashion_mnist_shard(1280);
  setup.params = ProofParams{5, DeterminismProfile::kCpuExact, 0.0};
  setup.hyper = sgd(105);  // 21 segments of 5 steps: 20 that can be faked
  setup.scratch_dir = out / "scratch";
  const std::vector<double> fractions = {0.05, 0.1, 0.25, 0.5};
  const std::vector<uint32_t> audited_segments = {1, 2, 4, 7, 8};
  const std::array<uint8_t, 32> worker_seed{7};
  const Identity worker = Identity::from_seed(worker_seed);

  std::filesystem::create_directories(out);
  std::ofstream catches(out / "detection.csv");
  catches << "q,s,task,segments,faked,trials,caught\n";
  Progress progress("detection", fractions.size() * static_cast<size_t>(tasks) + honest_tasks);
  uint64_t task_id = 1000;
  for (double q : fractions) {
    for (int t = 0; t < tasks; ++t, ++task_id) {
      const TaskOutcome outcome = run_task(setup, Cheat{CheatKind::kFakeSegments, q}, task_id, 1, 1);
      const uint32_t segments = static_cast<uint32_t>(outcome.verify_cpu.size());
      for (uint32_t s : audited_segments) {
        uint32_t caught = 0;
        for (uint32_t trial = 0; trial < trials; ++trial) {
          const Challenge challenge = derive_challenge(trial_secret(task_id, s, trial), outcome.commitment.root,
                                                       worker.public_key(), task_id, segments, {1.0, s});
          for (uint32_t j : challenge.segments) {
            if (outcome.failing.contains(j)) {
              ++caught;
              break;
            }
          }
        }
        catches << q << ',' << s << ',' << task_id << ',' << segments << ',' << outcome.failing.size() << ','
                << trials << ',' << caught << '\n';
      }
      progress.step();
    }
  }

  // Honest work trained at 1 thread, re-executed at 2 (as in a job).
  std::ofstream honest(out / "honest.csv");
  honest << "task,segments,failing\n";
  for (int t = 0; t < honest_tasks; ++t, ++task_id) {
    const TaskOutcome outcome = run_task(setup, Cheat{}, task_id, 1, 2);
    honest << task_id << ',' << outcome.verify_cpu.size() << ',' << outcome.failing.size() << '\n';
    progress.step();
  }
  std::filesystem::remove_all(setup.scratch_dir);
  return 0;
}

int cost(const po::variables_map& vm) {
  const std::filesystem::path out = vm["out"].as<std::string>();
  const bool quick = vm.count("quick") > 0;
  const int tasks = quick ? 1 : vm["cost-tasks"].as<int>();
  const int threads = vm["threads"].as<int>();
  Setup setup;
  setup.model = vm["model"].as<std::string>();
  setup.shard = fashion_mnist_shard(quick ? 3200 : 9600);
  setup.params = ProofParams{50, DeterminismProfile::kCpuExact, 0.0};
  setup.hyper = sgd(quick ? 100 : 300);
  setup.scratch_dir = out / "scratch";
  std::filesystem::create_directories(out);
  std::ofstream rows(out / "cost.csv");
  rows << "task,threads,steps,segment_steps,train_plain_cpu,train_committed_cpu,verify_cpu_per_segment\n";
  Progress progress("cost", static_cast<size_t>(tasks));
  for (int t = 0; t < tasks; ++t) {
    const uint64_t task_id = 5000 + static_cast<uint64_t>(t);
    // Plain training first on odd tasks, second on even ones, so that any
    // drift of the machine's speed falls on both alike.
    auto plain = [&] {
      auto model = value_or_die(Model::create(setup.model, task_id), "model");
      at::set_num_threads(threads);
      const double t0 = cpu_seconds();
      value_or_die(train_locally(*model, setup.shard, setup.hyper, task_id), "training");
      return cpu_seconds() - t0;
    };
    double plain_cpu = t % 2 == 1 ? plain() : 0.0;
    const TaskOutcome committed = run_task(setup, Cheat{}, task_id, threads, threads);
    if (t % 2 == 0) plain_cpu = plain();
    if (!committed.failing.empty()) {
      std::cerr << "pol_experiment: an honest task failed re-execution\n";
      return 1;
    }
    double verify_total = 0.0;
    for (double v : committed.verify_cpu) verify_total += v;
    rows << task_id << ',' << threads << ',' << setup.hyper.local_steps << ',' << setup.params.segment_steps << ','
         << plain_cpu << ',' << committed.train_cpu << ','
         << verify_total / static_cast<double>(committed.verify_cpu.size()) << '\n';
    progress.step();
  }
  std::filesystem::remove_all(setup.scratch_dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  po::options_description options("pol_experiment detection|cost --out DIR [options]");
  options.add_options()
      ("help,h", "show this help")
      ("study", po::value<std::string>(), "detection or cost")
      ("out", po::value<std::string>()->default_value("experiments/proof_of_learning/results"), "output directory")
      ("quick", "a few tasks only (smoke test)")
      ("tasks", po::value<int>()->default_value(10), "cheating tasks per fraction q")
      ("trials", po::value<uint32_t>()->default_value(4000), "challenges drawn per task and s")
      ("honest-tasks", po::value<int>()->default_value(20), "honest tasks (false positives)")
      ("cost-tasks", po::value<int>()->default_value(4), "tasks timed by `cost`")
      ("threads", po::value<int>()->default_value(1), "intra-op threads for `cost`")
      ("model", po::value<std::string>()->default_value("cnn"), "model timed by `cost`");
  po::positional_options_description positional;
  positional.add("study", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "pol_experiment: " << e.what() << "\n";
    return 2;
  }
  if (vm.count("help") || !vm.count("study")) {
    std::cout << options << "\n";
    return vm.count("help") ? 0 : 2;
  }
  if (Status s = init_crypto(); !s.ok()) die("libsodium", s);
  if (Status s = use_deterministic_cpu_training(); !s.ok()) die("deterministic training", s);
  const std::string study = vm["study"].as<std::string>();
  if (study == "detection") return detection(vm);
  if (study == "cost") return cost(vm);
  std::cerr << "pol_experiment: unknown study '" << study << "' (detection or cost)\n";
  return 2;
}
