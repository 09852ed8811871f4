#include "momentum_store.h"

#include <ATen/ATen.h>
#include <c10/util/accumulate.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "cohort/durable_file.h"
#include "cohort/proof_of_learning.h"

namespace cohort {
namespace {

constexpr char kSuffix[] = ".momentum";

// "<model>.<digest hex>.momentum"
std::string prefix_of(const std::string& model_name) { return model_name + "."; }

bool is_file_of(const std::string& file_name, const std::string& model_name) {
  constexpr size_t kHexDigits = 64;
  return file_name.starts_with(prefix_of(model_name)) && file_name.ends_with(kSuffix) &&
         file_name.size() == prefix_of(model_name).size() + kHexDigits + std::strlen(kSuffix);
}

}  // namespace

MomentumStore::MomentumStore(std::filesystem::path dir) : dir_(std::move(dir)) {}

std::filesystem::path MomentumStore::path_of(const std::string& model_name, const Digest& digest) const {
  return dir_ / (prefix_of(model_name) + to_hex(digest) + kSuffix);
}

Result<MomentumBuffers> MomentumStore::find(const std::string& model_name, const Layout& layout,
                                            const Digest& digest, const at::Device& device) const {
  if (digest == fresh_momentum_digest()) return MomentumBuffers{};
  const std::filesystem::path path = path_of(model_name, digest);
  COHORT_ASSIGN_OR_RETURN(const std::string bytes, read_whole_file(path));
  const int64_t count = layout.numel();
  if (bytes.size() != static_cast<size_t>(count) * sizeof(float)) {
    return Status::not_found(path.string() + " does not fit the model");
  }
  at::Tensor flat = at::empty({count}, at::kFloat);
  std::memcpy(flat.data_ptr(), bytes.data(), bytes.size());
  if (momentum_digest(layout, flat) != digest) return Status::not_found(path.string() + " does not hash to its name");
  MomentumBuffers buffers;
  int64_t offset = 0;
  for (const TensorSpec& spec : layout.tensors) {
    const int64_t n = c10::multiply_integers(spec.shape);
    buffers.push_back(flat.narrow(0, offset, n).view(spec.shape).to(device));
    offset += n;
  }
  return buffers;
}

Status MomentumStore::keep(const std::string& model_name, const Digest& digest, const MomentumBuffers& buffers) {
  if (buffers.empty() || digest == fresh_momentum_digest()) return Status();
  std::vector<at::Tensor> flat_parts;
  for (const at::Tensor& buffer : buffers) flat_parts.push_back(buffer.detach().reshape({-1}).to(at::kCPU, at::kFloat));
  const at::Tensor flat = at::cat(flat_parts).contiguous();
  std::error_code error;
  std::filesystem::create_directories(dir_, error);
  if (error) return Status::io_error("cannot create " + dir_.string() + ": " + error.message());
  const std::string_view parts[] = {{static_cast<const char*>(flat.data_ptr()), flat.nbytes()}};
  COHORT_RETURN_IF_ERROR(write_file_atomically(path_of(model_name, digest), parts));
  delete_oldest(model_name);
  return Status();
}

void MomentumStore::delete_oldest(const std::string& model_name) const {
  std::vector<std::filesystem::directory_entry> files;
  std::error_code ignored;  // a file left behind only costs disk space
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ignored)) {
    const std::string name = entry.path().filename().string();
    if (is_file_of(name, model_name)) files.push_back(entry);
  }
  if (files.size() <= kKeptPerModel) return;
  std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
    std::error_code e;
    return a.last_write_time(e) < b.last_write_time(e);
  });
  for (size_t i = 0; i + kKeptPerModel < files.size(); ++i) std::filesystem::remove(files[i].path(), ignored);
}

}  // namespace cohort
