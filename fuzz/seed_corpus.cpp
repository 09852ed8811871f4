// Writes the fuzzers' seed corpus: small valid inputs made by the real
// encoders, one directory per harness. Usage:
//   fuzz_seed_corpus <corpus dir>      (the committed one is fuzz/corpus)
// Existing files of the same names are overwritten; nothing else is removed.
#include <zlib.h>

#include <ATen/ATen.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "chain.h"
#include "cohort/config.h"
#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "cohort/npy.h"
#include "cohort/protocol.h"
#include "cohort/reveal_payload.h"
#include "cohort/tensor_codec.h"

namespace {

using namespace cohort;
namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

class CorpusWriter {
 public:
  explicit CorpusWriter(fs::path root) : root_(std::move(root)) {}

  // Writes <root>/<target>/<name>.
  void write(std::string_view target, std::string_view name, std::span<const uint8_t> bytes) {
    const fs::path dir = root_ / target;
    fs::create_directories(dir);
    std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write " + (dir / name).string());
    ++files_;
  }
  void write(std::string_view target, std::string_view name, std::string_view text) {
    write(target, name, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  }
  int files() const { return files_; }
  const fs::path& root() const { return root_; }

 private:
  fs::path root_;
  int files_ = 0;
};

std::array<uint8_t, 32> bytes32(uint8_t first) {
  std::array<uint8_t, 32> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

// ------------------------------------------------------------ messages

LeafOpening leaf_opening(uint32_t index) {
  return LeafOpening{LeafData{index, uint64_t{index} * 50, bytes32(0x30), bytes32(0x31), bytes32(0x32)},
                     {bytes32(0x33), bytes32(0x34)}};
}

// A model of two tensors (a 2x3 weight and a 3-element bias), 9 values.
Layout small_layout() {
  return Layout{{TensorSpec{"bias", DType::kFloat32, {3}}, TensorSpec{"weight", DType::kFloat32, {2, 3}}}};
}

at::Tensor small_values() { return at::linspace(-1.5, 2.5, 9, at::kFloat); }

Task sample_task(const PayloadHeader& model) {
  Task m;
  m.round = 7;
  m.task_id = 0x1122334455667788ull;
  m.model_name = "cnn";
  m.hyper = Hyperparameters{25, 1.5, 64, 0.125, 0.9, 0.0005, true};
  m.data = DataSelection{PartitionScheme::kDirichlet, 8, 3, 0.3, 0.75, 99};
  m.seed = 123456789;
  m.deadline_unix_ms = 1700000000123;
  m.model = model;
  m.proof.params = ProofParams{50, DeterminismProfile::kTolerant, 0.004};
  m.proof.total_steps = 470;
  m.proof.secret_commitment = bytes32(0x11);
  m.proof.reveal_seconds = 30.5;
  m.proof.min_stake = 300'000'000;
  m.proof.dataset_digest = bytes32(0x22);
  m.proof.start_momentum = bytes32(0x33);
  m.proof.challenge = ChallengeParams{0.375, 4};
  m.signature.fill(0x5a);
  return m;
}

Update sample_update(const PayloadHeader& delta, bool with_commitment) {
  Update m;
  m.round = 9;
  m.task_id = 42;
  m.num_samples = 7500;
  m.metrics = TrainMetrics{0.4375, 0.8125, 25, 3.25};
  m.base_model_hash = bytes32(0x40);
  m.delta = delta;
  if (with_commitment) m.commitment = UpdateCommitment{bytes32(0x50), 470, 50, leaf_opening(0), leaf_opening(9)};
  m.signature.fill(0x6b);
  return m;
}

Reveal sample_reveal(const std::vector<uint32_t>& segments, const PayloadHeader& states) {
  Reveal m;
  m.round = 3;
  m.task_id = 99;
  for (uint32_t segment : segments) {
    m.segments.push_back(SegmentProof{segment, leaf_opening(segment - 1), leaf_opening(segment)});
  }
  m.states = states;
  m.signature.fill(0x8d);
  return m;
}

RoundResult sample_round_result(bool with_receipt) {
  RoundResult m{12, true, "late by 3 s", 0.8867, 0.3125, 5, bytes32(0x90), std::nullopt};
  if (!with_receipt) return m;
  const Identity coordinator = Identity::from_seed(bytes32(0x04));
  Receipt r;
  r.round = 12;
  r.task_id = 99;
  r.worker = bytes32(0x01);
  r.update_hash = bytes32(0x02);
  r.verdict = Verdict::kPassed;
  r.reason = "audited: 3 segments matched";
  r.reward = 25'000'000;
  r.chain_seq = 41;
  r.chain_hash = bytes32(0x03);
  r.coordinator = coordinator.public_key();
  r.signature = coordinator.sign(r.signed_bytes());
  m.receipt = r;
  return m;
}

EncodedPayload encode_or_die(const Layout& layout, const at::Tensor& flat, size_t chunk_bytes, DType dtype) {
  Result<EncodedPayload> encoded = encode_payload(layout, flat, chunk_bytes, dtype);
  if (!encoded.ok()) throw std::runtime_error("encode_payload: " + encoded.status().message());
  return std::move(encoded).value();
}

void write_messages(CorpusWriter& out) {
  const PayloadHeader model = encode_or_die(small_layout(), small_values(), 16, DType::kFloat32).header();
  Hello hello{bytes32(1), DeviceInfo{DeviceKind::kCuda, "NVIDIA H100", 16, uint64_t{80} << 30},
              DatasetInfo{"fashion-mnist", 60000, 10}, "cohort 0.1.0"};
  ChallengeMessage challenge{3, 99, bytes32(0x77), Challenge{true, {2, 7, 10}}, {}};
  challenge.signature.fill(0x7c);
  Task torchscript = sample_task(model);
  torchscript.model_name = "torchscript";
  torchscript.model_archive = bytes32(0x44);
  const std::vector<std::pair<std::string, Message>> messages = {
      {"hello", hello},
      {"task-torchscript", torchscript},
      {"model-request", ModelRequest{bytes32(0x44)}},
      {"model-archive", ModelArchiveMessage{bytes32(0x44), 61383, 4}},
      {"welcome", Welcome{3, "fashion-fedavg", 50, bytes32(0x21), {}}},
      {"task", sample_task(model)},
      {"update", sample_update(model, true)},
      {"update-no-commitment", sample_update(model, false)},
      {"round-result", sample_round_result(false)},
      {"round-result-receipt", sample_round_result(true)},
      {"error", ErrorReply{ErrorCode::kTooLarge, "payload too large", 4, 77}},
      {"bye", Bye{"job done"}},
      {"challenge", challenge},
      {"reveal", sample_reveal({2, 7}, model)},
  };
  for (const auto& [name, message] : messages) out.write("message", name, encode_message(message));
}

// ------------------------------------------------------------ tensor codec

// The tensor_codec_fuzzer input: flags, the envelope, then the chunks, each
// behind a u16 LE length.
Bytes codec_input(uint8_t flags, const Message& message, const EncodedPayload& payload) {
  Bytes out{flags};
  auto append_prefixed = [&out](std::span<const uint8_t> bytes) {
    out.push_back(static_cast<uint8_t>(bytes.size() & 0xff));
    out.push_back(static_cast<uint8_t>(bytes.size() >> 8));
    out.insert(out.end(), bytes.begin(), bytes.end());
  };
  append_prefixed(encode_message(message));
  for (const Frame& chunk : payload.chunks()) {
    append_prefixed(chunk.bytes());
  }
  return out;
}

SegmentOpening opening_with_states(uint32_t segment, bool with_momentum) {
  SegmentOpening opening;
  opening.segment = segment;
  opening.before_state.parameters = at::full({4}, static_cast<float>(segment), at::kFloat);
  opening.after_state.parameters = at::full({4}, static_cast<float>(segment) + 0.5f, at::kFloat);
  if (with_momentum) {
    opening.before_state.momentum = at::full({4}, -0.25f, at::kFloat);
    opening.after_state.momentum = at::full({4}, 0.75f, at::kFloat);
  }
  return opening;
}

void write_tensor_codec(CorpusWriter& out) {
  constexpr uint8_t kVerifyDigest = 1;
  constexpr uint8_t kWithMomentum = 2;
  struct Variant {
    const char* name;
    DType dtype;
    size_t chunk_bytes;
  };
  for (const Variant& v : {Variant{"task-float32-one-chunk", DType::kFloat32, 1024},
                           Variant{"task-float32-chunks", DType::kFloat32, 8},
                           Variant{"task-float16", DType::kFloat16, 6},
                           Variant{"task-bfloat16", DType::kBFloat16, 1024},
                           Variant{"task-float64", DType::kFloat64, 16}}) {
    const EncodedPayload payload = encode_or_die(small_layout(), small_values(), v.chunk_bytes, v.dtype);
    out.write("tensor_codec", v.name, codec_input(kVerifyDigest, sample_task(payload.header()), payload));
  }
  const EncodedPayload delta = encode_or_die(small_layout(), small_values() * 0.01, 12, DType::kFloat32);
  out.write("tensor_codec", "update", codec_input(kVerifyDigest, sample_update(delta.header(), true), delta));

  for (bool with_momentum : {false, true}) {
    const std::vector<uint32_t> segments = {2, 5};
    std::vector<SegmentOpening> openings;
    for (uint32_t segment : segments) openings.push_back(opening_with_states(segment, with_momentum));
    const PackedStates packed = pack_reveal_states(openings);
    const EncodedPayload states = encode_or_die(packed.layout, packed.flat, 32, DType::kFloat32);
    const uint8_t flags = kVerifyDigest | (with_momentum ? kWithMomentum : 0);
    out.write("tensor_codec", with_momentum ? "reveal-momentum" : "reveal",
              codec_input(flags, sample_reveal(segments, states.header()), states));
  }
}

// ------------------------------------------------------------ IDX

Bytes idx_file(const std::vector<uint32_t>& dims) {
  Bytes out = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  size_t count = 1;
  for (uint32_t dim : dims) {
    for (int shift : {24, 16, 8, 0}) out.push_back(static_cast<uint8_t>(dim >> shift));
    count *= dim;
  }
  for (size_t i = 0; i < count; ++i) out.push_back(static_cast<uint8_t>(i * 37));
  return out;
}

Bytes gzipped(const Bytes& raw) {
  z_stream stream{};
  if (deflateInit2(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  Bytes out(deflateBound(&stream, raw.size()) + 32);
  stream.next_in = const_cast<Bytef*>(raw.data());
  stream.avail_in = static_cast<uInt>(raw.size());
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = deflate(&stream, Z_FINISH);
  deflateEnd(&stream);
  if (result != Z_STREAM_END) throw std::runtime_error("deflate failed");
  out.resize(stream.total_out);
  return out;
}

void write_idx(CorpusWriter& out) {
  const Bytes images = idx_file({3, 4, 4});
  out.write("idx", "images-idx3", images);
  out.write("idx", "images-idx3.gz", gzipped(images));
  out.write("idx", "labels-idx1", idx_file({3}));
  out.write("idx", "rank4-idx", idx_file({2, 1, 2, 3}));
  // The built-in models' 28x28: one image that fits (label 0), two whose
  // second label (its first pixel, 80) does not.
  out.write("idx", "fits-models-idx3", idx_file({1, 28, 28}));
  out.write("idx", "label-too-large-idx3", idx_file({2, 28, 28}));
}

// ------------------------------------------------------------ config

// Writes a config seed after checking that it parses.
void write_valid_config(CorpusWriter& out, std::string_view name, std::string_view text) {
  Result<JobConfig> config = parse_job_config(text, name);
  if (!config.ok()) throw std::runtime_error("seed config does not parse: " + config.status().message());
  out.write("config", name, text);
}

void write_config(CorpusWriter& out) {
  std::ifstream example(fs::path(COHORT_SOURCE_DIR) / "examples" / "fashion-mnist.toml", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(example)), std::istreambuf_iterator<char>());
  if (text.empty()) throw std::runtime_error("cannot read examples/fashion-mnist.toml");
  write_valid_config(out, "fashion-mnist.toml", text);
  write_valid_config(out, "empty.toml", "");
  write_valid_config(out, "robust-proof-ledger.toml",
            "[job]\nname = \"robust\"\nrounds = 3\n"
            "[data]\ndataset = \"idx\"\ntest_images = \"t/i\"\ntest_labels = \"t/l\"\n"
            "train_images = \"a/i\"\ntrain_labels = \"a/l\"\npartition = \"dirichlet\"\nalpha = 0.3\n"
            "[training]\nlocal_steps = 20\nmomentum = 0.5\n"
            "[aggregation]\npre = [\"clip\", \"nnm\"]\nrule = \"krum\"\nf = 1\n"
            "[aggregation.params]\nc = \"2.0\"\n"
            "[round]\nmin_workers = 4\nworkers_per_round = 4\nmin_updates = 3\n"
            "[attack]\nname = \"alie\"\nbyzantine = 1\n"
            "[proof]\nsegment_steps = 10\naudit_probability = 0.5\nprofile = \"tolerant\"\ntolerance = 0.01\n"
            "[ledger]\nreward_per_round = 50\nmin_stake = 400\nslash_fraction = 1.0\n");
}

// ------------------------------------------------------------ .npy

void write_npy(CorpusWriter& out) {
  auto array = [](DType dtype, std::vector<int64_t> shape) {
    NpyArray a{dtype, std::move(shape), {}};
    a.data.resize(static_cast<size_t>(a.numel()) * dtype_size(dtype));
    for (size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<uint8_t>(i * 13);
    return a;
  };
  out.write("npy", "float32-vector.npy", serialize_npy(array(DType::kFloat32, {5})));
  out.write("npy", "float64-matrix.npy", serialize_npy(array(DType::kFloat64, {2, 3})));
  out.write("npy", "float32-scalar.npy", serialize_npy(array(DType::kFloat32, {})));
  out.write("npy", "float32-empty.npy", serialize_npy(array(DType::kFloat32, {0, 4})));
}

// ------------------------------------------------------------ checkpoints

// write_checkpoint writes a file, so the seeds are written in place.
void write_checkpoints(CorpusWriter& out) {
  if (!init_crypto().ok()) throw std::runtime_error("libsodium does not initialise");
  const fs::path dir = out.root() / "checkpoint";
  fs::create_directories(dir);
  auto write_seed = [&](const std::string& name, const Checkpoint& checkpoint) {
    Status written = write_checkpoint(dir / name, checkpoint);
    if (!written.ok()) throw std::runtime_error("checkpoint seed " + name + ": " + written.to_string());
  };

  Checkpoint bare;
  bare.round = 4;
  bare.model_name = "mlp";
  bare.layout = small_layout();
  bare.flat = small_values();
  bare.digest = digest_of(bare.layout, bare.flat);
  write_seed("bare.ck", bare);

  Checkpoint full = bare;
  full.previous_aggregate = small_values() * 0.01;
  full.job_name = "demo";
  full.job_seed = 7;
  full.workers = {bytes32(0x20), bytes32(0x40)};
  full.settlement = {{17, Verdict::kPassed}, {18, Verdict::kUnaudited}};
  full.metrics_json = R"({"round":4,"test_accuracy":0.84,"paid":2})";
  full.carried_momentum = {{bytes32(0x20), bytes32(0x60)}};
  write_seed("full.ck", full);

  // A server optimizer's buffers follow the aggregate.
  Checkpoint adam = full;
  adam.server_optimizer = "adam";
  adam.server_state = {3, {{"m", small_values() * 0.1}, {"v", small_values() * small_values()}}};
  write_seed("server-optimizer.ck", adam);

  // Trained from a TorchScript archive.
  Checkpoint torchscript = full;
  torchscript.model_name = "torchscript";
  torchscript.model_archive = bytes32(0x44);
  write_seed("torchscript.ck", torchscript);

  // Used to pass the parse and abort a resuming coordinator.
  Checkpoint metrics_not_an_object = bare;
  metrics_not_an_object.metrics_json = "[4, 0.84]";
  write_seed("metrics-not-an-object.ck", metrics_not_an_object);
}

// ------------------------------------------------------------ ledger entries

void write_ledger_entries(CorpusWriter& out) {
  // The first byte picks the kind in ledger_entry_fuzzer.cpp's kKinds order.
  const std::vector<ledger::EntryBody> entries = {
      ledger::GenesisEntry{bytes32(0x10)},
      ledger::AccountEntry{bytes32(0x11)},
      ledger::DepositEntry{bytes32(0x12), 1'000'000'000, "faucet"},
      ledger::SubmissionEntry{Submission{4, 17, bytes32(0x13), bytes32(0x14), bytes32(0x15), 15000}},
      ledger::IncidentEntry{bytes32(0x16), 4, 17, "equivocation", "two updates for one task"},
      ledger::VerdictEntry{17, Verdict::kFailed, "segment 3 differs"},
      ledger::SlashEntry{bytes32(0x16), 17, 400'000'000, true, "failed audit"},
      ledger::RoundEntry{4, 100'000'000, {{17, bytes32(0x13), 60'000'000}, {18, bytes32(0x17), 40'000'000}}, 0},
  };
  for (size_t i = 0; i < entries.size(); ++i) {
    const std::string body = ledger::encode(entries[i]);
    Bytes input{static_cast<uint8_t>(i)};
    input.insert(input.end(), body.begin(), body.end());
    out.write("ledger_entry", ledger::kind_of(entries[i]), input);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: fuzz_seed_corpus <corpus dir>   (fuzz/corpus in the source tree)\n";
    return 2;
  }
  try {
    CorpusWriter out(argv[1]);
    write_messages(out);
    write_tensor_codec(out);
    write_idx(out);
    write_config(out);
    write_npy(out);
    write_ledger_entries(out);
    write_checkpoints(out);
    std::cout << "wrote " << out.files() << " seed files under " << out.root().string() << "\n";
  } catch (const std::exception& e) {
    std::cerr << "fuzz_seed_corpus: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
