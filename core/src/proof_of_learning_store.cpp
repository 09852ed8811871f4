// The worker's checkpoint files for proof of learning, and their cleanup.
//
// state-<j>.bin, little-endian:
//   magic    8 bytes  "CHPOLST1"
//   step     u64
//   count    u64      parameters (and momentum values, when present)
//   flags    u64      bit 0: momentum present
//   leaf     32 bytes leaf_hash(task_id, leaf j), naming the commitment
//   parameters        count float32
//   momentum          count float32, when present
//   checksum 32 bytes BLAKE2b-256 of everything before it
#include <torch/torch.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <fstream>

#include "cohort/proof_of_learning.h"

namespace cohort {
namespace {

static_assert(std::endian::native == std::endian::little, "checkpoint files are written in host order");

constexpr char kMagic[8] = {'C', 'H', 'P', 'O', 'L', 'S', 'T', '1'};
constexpr size_t kHeaderBytes = 8 + 8 + 8 + 8 + 32;
constexpr uint64_t kHasMomentum = 1;

std::span<const uint8_t> bytes_of(const at::Tensor& contiguous) {
  return {static_cast<const uint8_t*>(contiguous.data_ptr()), static_cast<size_t>(contiguous.nbytes())};
}

void put_u64(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

uint64_t get_u64(const uint8_t* in) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value |= uint64_t{in[i]} << (8 * i);
  return value;
}

}  // namespace

std::filesystem::path checkpoint_path(const std::filesystem::path& checkpoint_dir, uint32_t index) {
  return checkpoint_dir / ("state-" + std::to_string(index) + ".bin");
}

Status write_training_state(const std::filesystem::path& path, const TrainingState& state, const Digest& leaf) {
  const at::Tensor params = state.parameters.to(torch::kCPU, torch::kFloat).contiguous();
  at::Tensor momentum;
  if (state.momentum.defined()) momentum = state.momentum.to(torch::kCPU, torch::kFloat).contiguous();
  if (params.dim() != 1 || (momentum.defined() && momentum.numel() != params.numel())) {
    return Status::invalid_argument("a training state needs flat parameters and momentum of the same length");
  }
  std::vector<uint8_t> header(kMagic, kMagic + sizeof(kMagic));
  put_u64(header, state.step);
  put_u64(header, static_cast<uint64_t>(params.numel()));
  put_u64(header, momentum.defined() ? kHasMomentum : 0);
  header.insert(header.end(), leaf.begin(), leaf.end());

  Hasher checksum;
  checksum.update(header);
  checksum.update(bytes_of(params));
  if (momentum.defined()) checksum.update(bytes_of(momentum));
  const Digest sum = checksum.finish();

  std::filesystem::path temp = path;
  temp += ".tmp";
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    if (!out) return Status::io_error("cannot create " + temp.string());
    auto write = [&out](std::span<const uint8_t> bytes) {
      out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    };
    write(header);
    write(bytes_of(params));
    if (momentum.defined()) write(bytes_of(momentum));
    write(sum);
    if (!out.flush()) return Status::io_error("cannot write " + temp.string());
  }
  std::error_code error;
  std::filesystem::rename(temp, path, error);
  if (error) return Status::io_error("cannot rename " + temp.string() + ": " + error.message());
  return Status();
}

Result<StoredState> read_training_state(const std::filesystem::path& path) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return Status::not_found("no checkpoint " + path.string());
  if (size < kHeaderBytes + 32) return Status::corruption(path.string() + " is truncated");
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path.string());
  uint8_t header[kHeaderBytes];
  if (!in.read(reinterpret_cast<char*>(header), sizeof(header))) return Status::io_error("cannot read " + path.string());
  if (std::memcmp(header, kMagic, sizeof(kMagic)) != 0) {
    return Status::corruption(path.string() + " is not a proof-of-learning checkpoint (bad magic)");
  }
  StoredState out;
  out.state.step = get_u64(header + 8);
  const uint64_t count = get_u64(header + 16);
  const uint64_t flags = get_u64(header + 24);
  std::memcpy(out.leaf.data(), header + 32, out.leaf.size());
  const uint64_t tensors = (flags & kHasMomentum) ? 2 : 1;
  if ((flags & ~kHasMomentum) != 0 || count > (uint64_t{1} << 40) ||
      size != kHeaderBytes + tensors * count * sizeof(float) + 32) {
    return Status::corruption(path.string() + " has a size that does not match its header");
  }
  const auto read_tensor = [&](at::Tensor& t) {
    t = torch::empty({static_cast<int64_t>(count)}, torch::kFloat);
    return static_cast<bool>(in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes())));
  };
  if (!read_tensor(out.state.parameters)) return Status::io_error("cannot read " + path.string());
  if ((flags & kHasMomentum) && !read_tensor(out.state.momentum)) {
    return Status::io_error("cannot read " + path.string());
  }
  Digest stored{};
  if (!in.read(reinterpret_cast<char*>(stored.data()), stored.size())) return Status::io_error("cannot read " + path.string());
  Hasher checksum;
  checksum.update(std::span<const uint8_t>(header, sizeof(header)));
  checksum.update(bytes_of(out.state.parameters));
  if (out.state.momentum.defined()) checksum.update(bytes_of(out.state.momentum));
  if (checksum.finish() != stored) return Status::corruption(path.string() + " fails its checksum");
  return out;
}

std::filesystem::path task_checkpoint_dir(const std::filesystem::path& root, uint64_t task_id) {
  return root / ("task-" + std::to_string(task_id));
}

Status remove_task_checkpoints(const std::filesystem::path& checkpoint_dir) {
  std::error_code error;
  std::filesystem::remove_all(checkpoint_dir, error);
  if (error) return Status::io_error("cannot remove " + checkpoint_dir.string() + ": " + error.message());
  return Status();
}

Result<size_t> prune_task_checkpoints(const std::filesystem::path& root, size_t keep) {
  std::error_code error;
  if (!std::filesystem::exists(root, error)) return size_t{0};
  struct Entry {
    std::filesystem::file_time_type written;
    std::filesystem::path path;
  };
  std::vector<Entry> tasks;
  for (const auto& entry : std::filesystem::directory_iterator(root, error)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory() || name.rfind("task-", 0) != 0) continue;
    tasks.push_back({entry.last_write_time(), entry.path()});
  }
  if (error) return Status::io_error("cannot list " + root.string() + ": " + error.message());
  if (tasks.size() <= keep) return size_t{0};
  // Newest first; the name breaks ties so that the order is total.
  std::sort(tasks.begin(), tasks.end(), [](const Entry& a, const Entry& b) {
    return a.written != b.written ? a.written > b.written : a.path > b.path;
  });
  size_t removed = 0;
  for (size_t i = keep; i < tasks.size(); ++i) {
    COHORT_RETURN_IF_ERROR(remove_task_checkpoints(tasks[i].path));
    ++removed;
  }
  return removed;
}

}  // namespace cohort
