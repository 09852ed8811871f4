// Worker training throughput: cohort::train_locally against the loop a user
// would write by hand with LibTorch, same model ("cnn"), same batch size
// (32), same data (the first 6400 Fashion-MNIST training images), same
// optimizer (SGD, momentum 0.9), same process.
//
// One iteration is one epoch over the 6400 samples (200 steps). Rates are
// samples per second of wall-clock time. The thread count (torch intra-op
// threads) is the benchmark argument.
//
// BM_Paired runs the two loops alternately, epoch by epoch, and reports both
// rates and their ratio: on a shared machine this is the fairer comparison,
// because both loops see the same background load. BM_TorchScriptPaired
// does the same for train_locally on the built-in "cnn" and on a TorchScript
// archive of the same architecture, which tests/benchmarks/python_cnn.py
// exports (COHORT_BENCH_CNN_ARCHIVE names it; the benchmark skips with an
// error without it); the same script times the plain PyTorch loop.
//
// Needs the Fashion-MNIST files in cohort::kDefaultFashionMnistDir (Debian
// package dataset-fashion-mnist); the benchmarks skip with an error if they
// are missing.
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "cohort/dataset.h"
#include "cohort/models.h"
#include "cohort/training.h"

namespace {

constexpr int64_t kSamples = 6400;
constexpr uint32_t kBatchSize = 32;
constexpr double kLearningRate = 0.01;
constexpr double kMomentum = 0.9;
constexpr uint64_t kModelSeed = 7;
constexpr int kWarmupSteps = 20;

// The dataset is loaded once per process; `error` is set when it cannot be.
struct Data {
  cohort::TensorDataset shard;
  std::string error;
};

const Data& data() {
  static const Data loaded = [] {
    Data out;
    auto all = cohort::load_mnist_format_dir(cohort::kDefaultFashionMnistDir,
                                             cohort::Split::kTrain);
    if (!all.ok()) {
      out.error = all.status().to_string();
      return out;
    }
    std::vector<int64_t> first(static_cast<size_t>(std::min<int64_t>(kSamples, all->count)));
    for (size_t i = 0; i < first.size(); ++i) first[i] = static_cast<int64_t>(i);
    out.shard = cohort::to_tensors(cohort::select_samples(*all, first));
    return out;
  }();
  return loaded;
}

std::unique_ptr<cohort::Model> make_model() {
  auto model = cohort::Model::create("cnn", kModelSeed);
  if (!model.ok()) throw std::runtime_error(model.status().to_string());
  return std::move(model).value();
}

cohort::Hyperparameters epoch_hyper() {
  cohort::Hyperparameters hyper;
  hyper.local_epochs = 1.0;
  hyper.batch_size = kBatchSize;
  hyper.learning_rate = kLearningRate;
  hyper.momentum = kMomentum;
  return hyper;
}

// One epoch through Cohort's trainer. Returns the samples trained on.
int64_t cohort_epoch(cohort::Model& model, const cohort::TensorDataset& shard,
                     const cohort::Hyperparameters& hyper, uint64_t seed) {
  auto trained = cohort::train_locally(model, shard, hyper, seed);
  if (!trained.ok()) throw std::runtime_error(trained.status().to_string());
  benchmark::DoNotOptimize(trained->delta.data_ptr());
  return static_cast<int64_t>(trained->samples_seen);
}

// The hand-written baseline: what a LibTorch user writes for one epoch.
class BareLoop {
 public:
  explicit BareLoop(cohort::Model& model)
      : model_(model),
        optimizer_(model.parameters(), torch::optim::SGDOptions(kLearningRate).momentum(kMomentum)),
        generator_(at::make_generator<at::CPUGeneratorImpl>(kModelSeed)) {
    model_.set_training(true);
  }

  // Runs `steps` steps (0: one full epoch). Returns the samples trained on.
  int64_t run(const cohort::TensorDataset& shard, int64_t steps = 0) {
    const int64_t n = shard.size();
    torch::Tensor order = torch::randperm(n, generator_, torch::kLong);
    int64_t seen = 0;
    int64_t step = 0;
    for (int64_t begin = 0; begin < n; begin += kBatchSize) {
      if (steps > 0 && step++ == steps) break;
      torch::Tensor index = order.slice(0, begin, std::min<int64_t>(begin + kBatchSize, n));
      torch::Tensor images = shard.images.index_select(0, index);
      torch::Tensor labels = shard.labels.index_select(0, index);
      optimizer_.zero_grad();
      torch::Tensor loss = torch::nn::functional::cross_entropy(model_.forward(images), labels);
      loss.backward();
      optimizer_.step();
      seen += index.size(0);
    }
    return seen;
  }

 private:
  cohort::Model& model_;
  torch::optim::SGD optimizer_;
  at::Generator generator_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs `first` and `second` (each: one epoch with the given seed, returning
// the samples trained on) once per iteration, swapping which goes first so
// that neither always runs on a warm cache, and reports both rates
// (samples/s) as `first_name` and `second_name` and their ratio.
template <typename First, typename Second>
void alternate_epochs(benchmark::State& state, const char* first_name, First first, const char* second_name,
                      Second second) {
  double seconds[2] = {0.0, 0.0};
  int64_t samples[2] = {0, 0};
  uint64_t seed = 1;
  for (auto _ : state) {
    const bool first_leads = (seed % 2) == 1;
    for (int turn = 0; turn < 2; ++turn) {
      const int which = (turn == 0) == first_leads ? 0 : 1;
      const auto start = std::chrono::steady_clock::now();
      samples[which] += which == 0 ? first(seed) : second(seed);
      seconds[which] += seconds_since(start);
    }
    ++seed;
  }
  const double first_rate = static_cast<double>(samples[0]) / seconds[0];
  const double second_rate = static_cast<double>(samples[1]) / seconds[1];
  state.counters[first_name] = first_rate;
  state.counters[second_name] = second_rate;
  state.counters["ratio"] = first_rate / second_rate;
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

// Sets the torch thread count from the benchmark argument; false (and the
// benchmark skipped) when the data set is missing.
bool prepare(benchmark::State& state) {
  if (!data().error.empty()) {
    state.SkipWithError(("Fashion-MNIST not available: " + data().error).c_str());
    return false;
  }
  at::set_num_threads(static_cast<int>(state.range(0)));
  return true;
}

void BM_TrainLocally(benchmark::State& state) {
  if (!prepare(state)) return;
  const cohort::TensorDataset& shard = data().shard;
  auto model = make_model();
  cohort::Hyperparameters warmup = epoch_hyper();
  warmup.local_steps = kWarmupSteps;
  cohort_epoch(*model, shard, warmup, 0);

  const cohort::Hyperparameters hyper = epoch_hyper();
  int64_t samples = 0;
  uint64_t seed = 1;
  for (auto _ : state) samples += cohort_epoch(*model, shard, hyper, seed++);
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

void BM_BareLibTorch(benchmark::State& state) {
  if (!prepare(state)) return;
  const cohort::TensorDataset& shard = data().shard;
  auto model = make_model();
  BareLoop loop(*model);
  loop.run(shard, kWarmupSteps);

  int64_t samples = 0;
  for (auto _ : state) samples += loop.run(shard);
  state.counters["samples_per_s"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
  state.counters["threads"] = static_cast<double>(at::get_num_threads());
}

// Alternates one Cohort epoch and one bare epoch per iteration (each on its
// own model), timing each separately.
void BM_Paired(benchmark::State& state) {
  if (!prepare(state)) return;
  const cohort::TensorDataset& shard = data().shard;
  auto cohort_model = make_model();
  auto bare_model = make_model();
  BareLoop loop(*bare_model);
  cohort::Hyperparameters warmup = epoch_hyper();
  warmup.local_steps = kWarmupSteps;
  cohort_epoch(*cohort_model, shard, warmup, 0);
  loop.run(shard, kWarmupSteps);

  const cohort::Hyperparameters hyper = epoch_hyper();
  alternate_epochs(
      state, "cohort_samples_per_s", [&](uint64_t seed) { return cohort_epoch(*cohort_model, shard, hyper, seed); },
      "bare_samples_per_s", [&](uint64_t) { return loop.run(shard); });
}

// One train_locally epoch on each model in turn: the archive's and the
// built-in's, same architecture, batch size, optimizer and data.
void BM_TorchScriptPaired(benchmark::State& state) {
  if (!prepare(state)) return;
  const char* archive_path = std::getenv("COHORT_BENCH_CNN_ARCHIVE");
  if (archive_path == nullptr) {
    state.SkipWithError("set COHORT_BENCH_CNN_ARCHIVE (tests/benchmarks/python_cnn.py export writes it)");
    return;
  }
  auto source = cohort::read_model_archive(archive_path);
  auto archive = source.ok() ? cohort::make_model(*source, 0) : source.status();
  if (!archive.ok()) {
    state.SkipWithError(archive.status().to_string().c_str());
    return;
  }
  const cohort::TensorDataset& shard = data().shard;
  auto native = make_model();
  cohort::Hyperparameters warmup = epoch_hyper();
  warmup.local_steps = kWarmupSteps;
  cohort_epoch(**archive, shard, warmup, 0);
  cohort_epoch(*native, shard, warmup, 0);

  const cohort::Hyperparameters hyper = epoch_hyper();
  alternate_epochs(
      state, "torchscript_samples_per_s", [&](uint64_t seed) { return cohort_epoch(**archive, shard, hyper, seed); },
      "native_samples_per_s", [&](uint64_t seed) { return cohort_epoch(*native, shard, hyper, seed); });
}

BENCHMARK(BM_TrainLocally)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BareLibTorch)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Paired)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_TorchScriptPaired)->ArgName("threads")->Arg(1)->Arg(2)->Iterations(3)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
