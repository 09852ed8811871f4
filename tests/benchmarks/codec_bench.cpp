// Tensor codec throughput: encode_payload + EncodedPayload::chunks() +
// decode_payload, in one thread, with no socket in between (the chunks go
// straight from the encoder to the decoder, as if the transport were free).
//
// Bytes processed are the model's float32 bytes (4 per parameter) for every
// case, float16 wire included, so GB/s compare the same amount of model.
// Arguments: parameters, verify_digest (0/1), wire dtype (cohort::DType
// value: 0 float32, 2 float16). Chunks are 16 MiB, the default
// network.chunk_bytes.
//
// BM_Encode and BM_Decode split the round trip for the 10M float32 case.
#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <benchmark/benchmark.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "cohort/tensor_codec.h"

namespace {

constexpr size_t kChunkBytes = size_t{16} << 20;

// A layout of a few named tensors totalling `numel` values, in canonical
// (name-sorted) order, shaped roughly like a network's layers.
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

at::Tensor make_flat(int64_t numel) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(42);
  return at::randn({numel}, generator, at::TensorOptions().dtype(at::kFloat));
}

template <class T>
T take(cohort::Result<T> result) {
  if (!result.ok()) throw std::runtime_error(result.status().to_string());
  return std::move(result).value();
}

cohort::PayloadLimits limits_for(bool verify) {
  cohort::PayloadLimits limits;
  limits.max_bytes = uint64_t{4} << 30;
  limits.verify_digest = verify;
  return limits;
}

void set_counters(benchmark::State& state, int64_t numel, const cohort::EncodedPayload& sample) {
  state.SetBytesProcessed(state.iterations() * numel * 4);
  state.counters["wire_MB"] = static_cast<double>(sample.header().total_bytes) / 1e6;
  state.counters["chunks"] = sample.header().chunk_count;
}

void BM_RoundTrip(benchmark::State& state) {
  const int64_t numel = state.range(0);
  const bool verify = state.range(1) != 0;
  const auto wire = static_cast<cohort::DType>(state.range(2));
  const cohort::Layout layout = make_layout(numel);
  const at::Tensor flat = make_flat(numel);
  const cohort::PayloadLimits limits = limits_for(verify);

  for (auto _ : state) {
    cohort::EncodedPayload encoded = take(cohort::encode_payload(layout, flat, kChunkBytes, wire));
    cohort::DecodedPayload decoded =
        take(cohort::decode_payload(encoded.header(), encoded.chunks(), limits, &layout));
    benchmark::DoNotOptimize(decoded.flat.data_ptr());
  }
  set_counters(state, numel, take(cohort::encode_payload(layout, flat, kChunkBytes, wire)));
}

void BM_Encode(benchmark::State& state) {
  const int64_t numel = state.range(0);
  const cohort::Layout layout = make_layout(numel);
  const at::Tensor flat = make_flat(numel);
  for (auto _ : state) {
    cohort::EncodedPayload encoded = take(cohort::encode_payload(layout, flat, kChunkBytes));
    cohort::Frames chunks = encoded.chunks();
    benchmark::DoNotOptimize(chunks.data());
  }
  set_counters(state, numel, take(cohort::encode_payload(layout, flat, kChunkBytes)));
}

void BM_Decode(benchmark::State& state) {
  const int64_t numel = state.range(0);
  const bool verify = state.range(1) != 0;
  const cohort::Layout layout = make_layout(numel);
  const at::Tensor flat = make_flat(numel);
  const cohort::PayloadLimits limits = limits_for(verify);
  const cohort::EncodedPayload encoded = take(cohort::encode_payload(layout, flat, kChunkBytes));
  for (auto _ : state) {
    state.PauseTiming();
    cohort::Frames chunks = encoded.chunks();
    state.ResumeTiming();
    cohort::DecodedPayload decoded =
        take(cohort::decode_payload(encoded.header(), std::move(chunks), limits, &layout));
    benchmark::DoNotOptimize(decoded.flat.data_ptr());
  }
  set_counters(state, numel, encoded);
}

constexpr int64_t kHalfMillion = 500'000;
constexpr int64_t kTenMillion = 10'000'000;
constexpr int64_t kHundredMillion = 100'000'000;
constexpr int64_t kF32 = static_cast<int64_t>(cohort::DType::kFloat32);
constexpr int64_t kF16 = static_cast<int64_t>(cohort::DType::kFloat16);

BENCHMARK(BM_RoundTrip)
    ->ArgNames({"params", "verify", "dtype"})
    ->Args({kHalfMillion, 1, kF32})
    ->Args({kHalfMillion, 0, kF32})
    ->Args({kTenMillion, 1, kF32})
    ->Args({kTenMillion, 0, kF32})
    ->Args({kTenMillion, 1, kF16})
    ->Args({kTenMillion, 0, kF16})
    ->MinTime(0.5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_RoundTrip)
    ->ArgNames({"params", "verify", "dtype"})
    ->Args({kHundredMillion, 1, kF32})
    ->Args({kHundredMillion, 0, kF32})
    ->Iterations(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Encode)->ArgName("params")->Arg(kTenMillion)->MinTime(0.5)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_Decode)
    ->ArgNames({"params", "verify"})
    ->Args({kTenMillion, 1})
    ->Args({kTenMillion, 0})
    ->MinTime(0.5)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
