// Checkpoint file format (little-endian):
//   8 bytes  magic "COHORTCK"
//   4 bytes  format version (1)
//   4 bytes  header length H
//   H bytes  JSON header: {"round", "model", "digest" (hex), "tensors":
//            [{"name", "shape"}], "previous_aggregate_digest" (hex; only
//            when the aggregator state follows)}
//   N * 4    float32 parameters in canonical order
//   N * 4    float32 previous round's aggregate (only with its digest)
#include <fcntl.h>
#include <unistd.h>

#include <ATen/ATen.h>

#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cohort/coordinator.h"

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
  if (checkpoint.previous_aggregate.defined()) {
    header["previous_aggregate_digest"] = to_hex(digest_of(checkpoint.layout, checkpoint.previous_aggregate));
  }
  return header.dump();
}

void append_u32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
}

uint32_t read_u32(const char* bytes) {
  uint32_t value = 0;
  for (int i = 0; i < 4; ++i) value |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[i])) << (8 * i);
  return value;
}

Status write_all(int fd, const void* data, size_t size, const std::filesystem::path& path) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0) return Status::io_error("write to " + path.string() + " failed: " + std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
  return Status();
}

Status fsync_path(const std::filesystem::path& path, int flags) {
  int fd = ::open(path.c_str(), flags);
  if (fd < 0) return Status::io_error("cannot open " + path.string() + ": " + std::strerror(errno));
  int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Status::io_error("fsync of " + path.string() + " failed: " + std::strerror(errno));
  return Status();
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
  at::Tensor values = checkpoint.flat.to(at::kCPU, at::kFloat).contiguous();
  if (checkpoint.previous_aggregate.defined()) {
    values = at::cat({values, checkpoint.previous_aggregate.to(at::kCPU, at::kFloat).reshape({-1})});
  }

  const std::filesystem::path tmp = path.string() + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::io_error("cannot create " + tmp.string() + ": " + std::strerror(errno));
  Status status = write_all(fd, prefix.data(), prefix.size(), tmp);
  if (status.ok()) status = write_all(fd, values.data_ptr(), values.nbytes(), tmp);
  if (status.ok() && ::fsync(fd) != 0) status = Status::io_error("fsync of " + tmp.string() + " failed");
  ::close(fd);
  if (!status.ok()) return status;
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return Status::io_error("cannot rename " + tmp.string() + " to " + path.string() + ": " +
                            std::strerror(errno));
  }
  std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

Result<Checkpoint> read_checkpoint(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::not_found("cannot open checkpoint " + path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string where = "checkpoint " + path.string();
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
  std::string aggregate_digest;  // empty when no aggregator state is stored
  try {
    auto header = nlohmann::json::parse(bytes.substr(16, header_size));
    checkpoint.round = header.at("round").get<uint32_t>();
    checkpoint.model_name = header.at("model").get<std::string>();
    stored_digest = header.at("digest").get<std::string>();
    COHORT_ASSIGN_OR_RETURN(checkpoint.layout, layout_from_json(header.at("tensors")));
    if (header.contains("previous_aggregate_digest")) {
      aggregate_digest = header.at("previous_aggregate_digest").get<std::string>();
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::corruption(where + ": bad header: " + e.what());
  }
  const size_t tensor_bytes = static_cast<size_t>(checkpoint.layout.numel()) * sizeof(float);
  const size_t tensors = aggregate_digest.empty() ? 1 : 2;
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
  if (!aggregate_digest.empty()) {
    checkpoint.previous_aggregate = at::empty({checkpoint.layout.numel()}, at::kFloat);
    std::memcpy(checkpoint.previous_aggregate.data_ptr(), data + tensor_bytes, tensor_bytes);
    if (to_hex(digest_of(checkpoint.layout, checkpoint.previous_aggregate)) != aggregate_digest) {
      return Status::corruption(where + ": the previous aggregate does not match its recorded digest");
    }
  }
  return checkpoint;
}

}  // namespace cohort
