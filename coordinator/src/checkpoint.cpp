// Checkpoint file format (little-endian):
//   8 bytes  magic "COHORTCK"
//   4 bytes  format version (1)
//   4 bytes  header length H
//   H bytes  JSON header: {"round", "model", "digest" (hex), "tensors":
//            [{"name", "shape"}], "previous_aggregate_digest" (hex; only
//            when the aggregator state follows), and, each optional:
//            "job": {"name", "seed"}, "workers": [key hex by index],
//            "settlement": [{"task", "verdict"}], "metrics": {...},
//            "momentum": [{"worker", "digest"} (hex)],
//            "server_optimizer": {"name", "steps", "buffers": [{"name",
//            "digest" (hex)}]}, "model_archive" (hex; a TorchScript model)}
//   N * 4    float32 parameters in canonical order
//   N * 4    float32 previous round's aggregate (only with its digest)
//   N * 4    float32 for each server optimizer buffer, in the header's order
#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "cohort/coordinator.h"
#include "cohort/durable_file.h"
#include "cohort/ledger.h"

namespace cohort {
namespace {

constexpr char kMagic[8] = {'C', 'O', 'H', 'O', 'R', 'T', 'C', 'K'};
constexpr uint32_t kFormatVersion = 1;

std::string header_json(const Checkpoint& checkpoint) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const TensorSpec& spec : checkpoint.layout.tensors) {
    tensors.push_back({{"name", spec.name}, {"shape", spec.shape}});
  }
  nlohmann::json header = {{"round", checkpoint.round},
                           {"model", checkpoint.model_name},
                           {"digest", to_hex(checkpoint.digest)},
                           {"tensors", tensors}};
  if (checkpoint.model_archive != Digest{}) header["model_archive"] = to_hex(checkpoint.model_archive);
  if (checkpoint.previous_aggregate.defined()) {
    header["previous_aggregate_digest"] = to_hex(digest_of(checkpoint.layout, checkpoint.previous_aggregate));
  }
  header["job"] = {{"name", checkpoint.job_name}, {"seed", checkpoint.job_seed}};
  nlohmann::json workers = nlohmann::json::array();
  for (const PublicKey& key : checkpoint.workers) workers.push_back(to_hex(key));
  header["workers"] = workers;
  nlohmann::json settlement = nlohmann::json::array();
  for (const auto& [task_id, verdict] : checkpoint.settlement) {
    settlement.push_back({{"task", task_id}, {"verdict", verdict_name(verdict)}});
  }
  header["settlement"] = settlement;
  if (!checkpoint.metrics_json.empty()) header["metrics"] = nlohmann::json::parse(checkpoint.metrics_json);
  nlohmann::json momentum = nlohmann::json::array();
  for (const auto& [worker, digest] : checkpoint.carried_momentum) {
    momentum.push_back({{"worker", to_hex(worker)}, {"digest", to_hex(digest)}});
  }
  if (!checkpoint.server_optimizer.empty()) {
    nlohmann::json buffers = nlohmann::json::array();
    for (const auto& [name, tensor] : checkpoint.server_state.buffers) {
      buffers.push_back({{"name", name}, {"digest", to_hex(digest_of(checkpoint.layout, tensor))}});
    }
    header["server_optimizer"] = {
        {"name", checkpoint.server_optimizer}, {"steps", checkpoint.server_state.steps}, {"buffers", buffers}};
  }
  header["momentum"] = momentum;
  return header.dump();
}

// The round's metrics line: an object whose accuracy and loss, where present,
// are numbers, or null in a round that was not evaluated (a resumed
// coordinator reports them and rewrites the line).
Status read_metrics(const nlohmann::json& metrics, Checkpoint& checkpoint) {
  if (!metrics.is_object()) return Status::corruption("\"metrics\" is not an object");
  for (auto [field, value] : {std::pair{"test_accuracy", &checkpoint.test_accuracy},
                              std::pair{"test_loss", &checkpoint.test_loss}}) {
    if (!metrics.contains(field)) continue;
    if (metrics.at(field).is_null()) {
      *value = std::numeric_limits<double>::quiet_NaN();
      continue;
    }
    if (!metrics.at(field).is_number()) return Status::corruption(std::string("metrics.") + field + " is not a number");
    *value = metrics.at(field).get<double>();
  }
  checkpoint.metrics_json = metrics.dump();
  return Status();
}

// The optional fields ("job", "workers", "settlement", "metrics", "momentum").
Status read_round_record(const nlohmann::json& header, Checkpoint& checkpoint) {
  if (header.contains("job")) {
    checkpoint.job_name = header.at("job").at("name").get<std::string>();
    checkpoint.job_seed = header.at("job").at("seed").get<uint64_t>();
  }
  for (const auto& hex : header.value("workers", nlohmann::json::array())) {
    Result<PublicKey> key = parse_public_key(hex.get<std::string>());
    if (!key.ok()) return Status::corruption("a worker key: " + key.status().message());
    checkpoint.workers.push_back(*key);
  }
  for (const auto& entry : header.value("settlement", nlohmann::json::array())) {
    Result<Verdict> verdict = parse_verdict(entry.at("verdict").get<std::string>());
    if (!verdict.ok()) return Status::corruption("a settlement verdict: " + verdict.status().message());
    checkpoint.settlement.emplace_back(entry.at("task").get<uint64_t>(), *verdict);
  }
  if (header.contains("metrics")) COHORT_RETURN_IF_ERROR(read_metrics(header.at("metrics"), checkpoint));
  for (const auto& entry : header.value("momentum", nlohmann::json::array())) {
    Result<PublicKey> worker = parse_public_key(entry.at("worker").get<std::string>());
    Result<Digest> digest = parse_digest(entry.at("digest").get<std::string>());
    if (!worker.ok() || !digest.ok()) return Status::corruption("a carried momentum entry is not two 32-byte hex keys");
    checkpoint.carried_momentum.emplace_back(*worker, *digest);
  }
  return Status();
}

void append_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

uint32_t read_u32(const char* bytes) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return value;
}

Result<Layout> layout_from_json(const nlohmann::json& tensors) {
  Layout layout;
  for (const auto& t : tensors) {
    layout.tensors.push_back(TensorSpec{t.at("name").get<std::string>(), DType::kFloat32,
                                        t.at("shape").get<std::vector<int64_t>>()});
  }
  // A bad layout in a stored file is corruption, not a caller's mistake.
  if (Status s = validate_layout(layout); !s.ok()) return Status::corruption(s.message());
  return layout;
}

}  // namespace

Status write_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint) {
  std::string prefix(kMagic, sizeof(kMagic));
  append_u32(prefix, kFormatVersion);
  const std::string header = header_json(checkpoint);
  append_u32(prefix, static_cast<uint32_t>(header.size()));
  prefix += header;
  std::vector<at::Tensor> stored = {checkpoint.flat};
  if (checkpoint.previous_aggregate.defined()) stored.push_back(checkpoint.previous_aggregate);
  if (!checkpoint.server_optimizer.empty()) {
    for (const auto& [name, tensor] : checkpoint.server_state.buffers) stored.push_back(tensor);
  }
  for (at::Tensor& tensor : stored) tensor = tensor.to(at::kCPU, at::kFloat).reshape({-1});
  const at::Tensor values = at::cat(stored);

  const std::string_view parts[] = {prefix, {static_cast<const char*>(values.data_ptr()), values.nbytes()}};
  return write_file_atomically(path, parts);
}

Result<Checkpoint> read_checkpoint(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot open checkpoint " + path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_checkpoint(bytes, "checkpoint " + path.string());
}

Result<Checkpoint> parse_checkpoint(std::string_view bytes, const std::string& where) {
  if (bytes.size() < 16 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return Status::corruption(where + ": not a Cohort checkpoint (bad magic)");
  }
  if (read_u32(bytes.data() + 8) != kFormatVersion) {
    return Status::corruption(where + ": unsupported format version " +
                              std::to_string(read_u32(bytes.data() + 8)));
  }
  const uint32_t header_size = read_u32(bytes.data() + 12);
  if (bytes.size() < 16 + static_cast<size_t>(header_size)) {
    return Status::corruption(where + ": truncated header");
  }
  Checkpoint checkpoint;
  std::string stored_digest;
  // What follows the parameters, in order: (what, its recorded digest). The
  // buffers' entries are added once their vector has stopped growing, so
  // that the pointers stay valid.
  std::vector<std::pair<at::Tensor*, std::string>> trailing;
  std::vector<std::string> buffer_digests;
  try {
    auto header = nlohmann::json::parse(bytes.begin() + 16, bytes.begin() + 16 + header_size);
    checkpoint.round = header.at("round").get<uint32_t>();
    checkpoint.model_name = header.at("model").get<std::string>();
    if (header.contains("model_archive")) {
      COHORT_ASSIGN_OR_RETURN(checkpoint.model_archive, parse_digest(header.at("model_archive").get<std::string>()));
    }
    stored_digest = header.at("digest").get<std::string>();
    COHORT_ASSIGN_OR_RETURN(checkpoint.layout, layout_from_json(header.at("tensors")));
    if (header.contains("previous_aggregate_digest")) {
      trailing.emplace_back(&checkpoint.previous_aggregate, header.at("previous_aggregate_digest").get<std::string>());
    }
    if (header.contains("server_optimizer")) {
      const nlohmann::json& server = header.at("server_optimizer");
      checkpoint.server_optimizer = server.at("name").get<std::string>();
      checkpoint.server_state.steps = server.at("steps").get<uint64_t>();
      for (const auto& buffer : server.at("buffers")) {
        checkpoint.server_state.buffers.emplace_back(buffer.at("name").get<std::string>(), at::Tensor());
        buffer_digests.push_back(buffer.at("digest").get<std::string>());
      }
      if (checkpoint.server_optimizer.empty()) return Status::corruption(where + ": a server optimizer without a name");
    }
    if (Status s = read_round_record(header, checkpoint); !s.ok()) return s.with_context(where);
  } catch (const nlohmann::json::exception& e) {
    return Status::corruption(where + ": bad header: " + e.what());
  }
  for (size_t i = 0; i < buffer_digests.size(); ++i) {
    trailing.emplace_back(&checkpoint.server_state.buffers[i].second, buffer_digests[i]);
  }
  const size_t tensor_bytes = static_cast<size_t>(checkpoint.layout.numel()) * sizeof(float);
  const size_t tensors = 1 + trailing.size();
  const size_t data_size = bytes.size() - 16 - header_size;
  if (data_size != tensors * tensor_bytes) {
    return Status::corruption(where + ": holds " + std::to_string(data_size) + " data bytes, layout needs " +
                              std::to_string(tensors * tensor_bytes));
  }
  const char* data = bytes.data() + 16 + header_size;
  checkpoint.flat = at::empty({checkpoint.layout.numel()}, at::kFloat);
  std::memcpy(checkpoint.flat.data_ptr(), data, tensor_bytes);
  checkpoint.digest = digest_of(checkpoint.layout, checkpoint.flat);
  if (to_hex(checkpoint.digest) != stored_digest) {
    return Status::corruption(where + ": the parameters do not match the recorded digest");
  }
  for (size_t i = 0; i < trailing.size(); ++i) {
    auto& [tensor, digest] = trailing[i];
    *tensor = at::empty({checkpoint.layout.numel()}, at::kFloat);
    std::memcpy(tensor->data_ptr(), data + (i + 1) * tensor_bytes, tensor_bytes);
    if (to_hex(digest_of(checkpoint.layout, *tensor)) != digest) {
      const bool aggregate = tensor == &checkpoint.previous_aggregate;
      return Status::corruption(where + (aggregate ? ": the previous aggregate" : ": a server optimizer buffer") +
                                " does not match its recorded digest");
    }
  }
  return checkpoint;
}

}  // namespace cohort
