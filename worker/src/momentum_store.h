// The SGD momentum a worker carries from task to task (training.keep_momentum),
// kept on disk by digest. With proof of learning a task names the momentum
// its leaf 0 must hash to (ProofSpec.start_momentum): the one the worker's
// previous commitment ended with, as the coordinator last checkpointed it.
// That need not be the newest the worker holds (the coordinator may have
// restarted and run the round again), and a restarted worker has none in
// memory, so the last few are kept under "<state_dir>/momentum/".
// Resource type; one thread.
#pragma once

#include <filesystem>
#include <string>

#include "cohort/tensor_codec.h"
#include "cohort/training.h"

namespace cohort {

class MomentumStore {
 public:
  // Buffers kept per model; older ones are deleted.
  static constexpr size_t kKeptPerModel = 4;

  explicit MomentumStore(std::filesystem::path dir);

  // The buffers of `model_name` (whose parameters have `layout`) that hash
  // to `digest`, on `device`: empty for fresh_momentum_digest(). NotFound
  // when none are kept (or the file no longer hashes to its name).
  Result<MomentumBuffers> find(const std::string& model_name, const Layout& layout, const Digest& digest,
                               const at::Device& device) const;

  // Keeps `buffers` (which hash to `digest`) as the newest of `model_name`,
  // durably, and deletes the oldest beyond kKeptPerModel. Fresh (empty)
  // buffers need no file. IoError.
  Status keep(const std::string& model_name, const Digest& digest, const MomentumBuffers& buffers);

 private:
  std::filesystem::path path_of(const std::string& model_name, const Digest& digest) const;
  void delete_oldest(const std::string& model_name) const;

  std::filesystem::path dir_;
};

}  // namespace cohort
