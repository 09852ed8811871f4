// The TorchScript archives a worker may train (docs/THREAT_MODEL.md, "Model
// archives"). Loading an archive runs the researcher's code in this
// process, so a volunteer decides which archives: the files it was given
// (`cohort worker --models-from FILE|DIR`, by BLAKE2b-256 of their bytes),
// or, with `--accept-models`, any archive its pinned coordinator names in
// a signed task. Archives received over the wire are checked against the
// task's digest and cached in <state dir>/models/<digest>.pt, so they are
// fetched once per worker, across rounds and restarts. Resource type; one
// thread.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "cohort/model_source.h"
#include "cohort/status.h"

namespace cohort {

class ModelArchives {
 public:
  // Hashes every file in `models_from` (a directory: its *.pt files).
  // Errors: a path that does not exist or an archive that cannot be read
  // (naming it).
  static Result<ModelArchives> open(const std::vector<std::filesystem::path>& models_from, bool accept_any,
                                    std::filesystem::path cache_dir);

  // OK when this worker may train the archive `digest`; otherwise
  // FailedPrecondition naming the digest and what would allow it.
  Status permit(const Digest& digest) const;

  // Whether the archive is at hand (given, or a file in the cache), without
  // reading it: find() reads and checks it.
  bool holds(const Digest& digest) const;

  // The archive, from --models-from or the cache (a cached copy whose bytes
  // no longer hash to its name is deleted and reported as absent), or
  // nullopt when it must be fetched. Errors: an unreadable file.
  Result<std::optional<ModelSource>> find(const Digest& digest) const;

  // Caches a received archive (already checked against its digest).
  Status keep(const ModelSource& source) const;

 private:
  ModelArchives(std::map<Digest, std::filesystem::path> given, bool accept_any, std::filesystem::path cache_dir)
      : given_(std::move(given)), accept_any_(accept_any), cache_dir_(std::move(cache_dir)) {}
  std::filesystem::path cache_path(const Digest& digest) const;

  std::map<Digest, std::filesystem::path> given_;  // --models-from, by digest
  bool accept_any_;
  std::filesystem::path cache_dir_;
};

}  // namespace cohort
