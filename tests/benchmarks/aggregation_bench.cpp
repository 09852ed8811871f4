// Every registered aggregation rule and pre-aggregator on a random [n, d]
// float32 stack, next to a memory-bandwidth reference measured in the same
// run: one streaming pass (a sum) over the same array.
//
// Counters: bytes_per_second = n*d*4 / time; "x_stream" = time / time of the
// streaming pass over the same array (1.0 = as fast as reading the input
// once). Diagnostics are off, as a caller that only wants the aggregate
// would run it. Rules that refuse a size (MDA beyond its subset limit,
// Bulyan when n < 4f+3) are reported as skipped with their error.
//
// Sizes: n in {10, 50, 100}, d in {1e5, 1e6} by default; add d = 1e7 with
// COHORT_BENCH_LARGE=1 (needs 4 GB per stack at n = 100).
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "cohort/aggregation.h"

namespace {

// One stack per size, built once and shared by every rule of that size.
const at::Tensor& stack_of(int64_t n, int64_t d) {
  static std::map<std::pair<int64_t, int64_t>, at::Tensor> cache;
  auto key = std::make_pair(n, d);
  auto it = cache.find(key);
  if (it == cache.end()) {
    cache.clear();  // keep one stack in memory at a time
    at::manual_seed(1);
    it = cache.emplace(key, at::randn({n, d}, at::kFloat)).first;
  }
  return it->second;
}

// Seconds of one streaming pass over the stack (best of 3).
double stream_seconds(const at::Tensor& rows) {
  double best = 1e30;
  for (int i = 0; i < 3; ++i) {
    auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(rows.sum().item<float>());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

int f_for(int64_t n) { return static_cast<int>(std::max<int64_t>(1, (n - 3) / 4)); }

void run_pipeline(benchmark::State& state, const std::vector<std::string>& pre,
                  const std::string& rule) {
  const int64_t n = state.range(0), d = state.range(1);
  cohort::RuleRegistry registry;
  cohort::register_builtin_rules(registry);
  auto pipeline = registry.create_pipeline(pre, rule, cohort::RuleParams(f_for(n), {}));
  if (!pipeline.ok()) {
    state.SkipWithError(pipeline.status().message().c_str());
    return;
  }
  const at::Tensor& rows = stack_of(n, d);
  cohort::AggregationContext context;
  context.diagnostics = false;
  context.previous = at::zeros({d});
  context.root_update = rows.mean(0);
  double elapsed = 0.0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto result = pipeline->run(rows, {}, context);
    elapsed += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!result.ok()) {
      state.SkipWithError(result.status().message().c_str());
      return;
    }
    benchmark::DoNotOptimize(result->aggregate.data_ptr());
  }
  const double seconds_per_run = stream_seconds(rows);
  state.SetBytesProcessed(state.iterations() * n * d * 4);
  state.counters["stream_GBps"] = static_cast<double>(n * d * 4) / seconds_per_run / 1e9;
  state.counters["x_stream"] = elapsed / static_cast<double>(state.iterations()) / seconds_per_run;
}

void register_all() {
  cohort::RuleRegistry registry;
  cohort::register_builtin_rules(registry);
  std::vector<int64_t> dims = {100'000, 1'000'000};
  if (std::getenv("COHORT_BENCH_LARGE") != nullptr) dims.push_back(10'000'000);
  auto add = [&](const std::string& label, std::vector<std::string> pre, std::string rule) {
    auto* b = benchmark::RegisterBenchmark(label.c_str(), [pre, rule](benchmark::State& s) {
      run_pipeline(s, pre, rule);
    });
    for (int64_t d : dims) {
      for (int64_t n : {10, 50, 100}) b->Args({n, d});
    }
    b->Unit(benchmark::kMillisecond)->MinTime(0.2)->UseRealTime();
  };
  for (const std::string& rule : registry.names()) add("rule/" + rule, {}, rule);
  for (const std::string& pre : registry.pre_names()) add("pre/" + pre + "+mean", {pre}, "mean");
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
