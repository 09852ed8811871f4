#include "model_archives.h"

#include <string_view>

#include "cohort/durable_file.h"

namespace cohort {
namespace {

// The archives a --models-from entry names: the file, or a directory's *.pt.
Result<std::vector<std::filesystem::path>> archives_in(const std::filesystem::path& entry) {
  std::error_code error;
  if (!std::filesystem::exists(entry, error)) {
    return Status::invalid_argument("--models-from " + entry.string() + ": no such file or directory");
  }
  if (!std::filesystem::is_directory(entry, error)) return std::vector<std::filesystem::path>{entry};
  std::vector<std::filesystem::path> out;
  for (const auto& file : std::filesystem::directory_iterator(entry, error)) {
    if (file.is_regular_file() && file.path().extension() == ".pt") out.push_back(file.path());
  }
  if (error) return Status::io_error("--models-from " + entry.string() + ": " + error.message());
  return out;
}

}  // namespace

Result<ModelArchives> ModelArchives::open(const std::vector<std::filesystem::path>& models_from, bool accept_any,
                                          std::filesystem::path cache_dir) {
  std::map<Digest, std::filesystem::path> given;
  for (const std::filesystem::path& entry : models_from) {
    COHORT_ASSIGN_OR_RETURN(std::vector<std::filesystem::path> files, archives_in(entry));
    for (const std::filesystem::path& file : files) {
      COHORT_ASSIGN_OR_RETURN(ModelSource source, read_model_archive(file));
      given.emplace(source.archive_digest, file);
    }
  }
  return ModelArchives(std::move(given), accept_any, std::move(cache_dir));
}

Status ModelArchives::permit(const Digest& digest) const {
  if (accept_any_ || given_.contains(digest)) return Status();
  return Status::failed_precondition("the task's model archive " + to_hex(digest) +
                                     " is not among --models-from (" + std::to_string(given_.size()) +
                                     " archive(s) given), and --accept-models is off: this worker runs only "
                                     "model code it was given");
}

std::filesystem::path ModelArchives::cache_path(const Digest& digest) const {
  return cache_dir_ / (to_hex(digest) + ".pt");
}

bool ModelArchives::holds(const Digest& digest) const {
  std::error_code error;
  return given_.contains(digest) || std::filesystem::exists(cache_path(digest), error);
}

Result<std::optional<ModelSource>> ModelArchives::find(const Digest& digest) const {
  if (auto it = given_.find(digest); it != given_.end()) {
    COHORT_ASSIGN_OR_RETURN(ModelSource source, read_model_archive(it->second));
    if (source.archive_digest != digest) {
      return Status::failed_precondition(it->second.string() + " changed since the worker started");
    }
    return std::optional<ModelSource>(std::move(source));
  }
  const std::filesystem::path cached = cache_path(digest);
  std::error_code error;
  if (!std::filesystem::exists(cached, error)) return std::optional<ModelSource>();
  COHORT_ASSIGN_OR_RETURN(ModelSource source, read_model_archive(cached));
  if (source.archive_digest != digest) {
    std::filesystem::remove(cached, error);  // damaged: fetch it again
    return std::optional<ModelSource>();
  }
  return std::optional<ModelSource>(std::move(source));
}

Status ModelArchives::keep(const ModelSource& source) const {
  std::error_code error;
  std::filesystem::create_directories(cache_dir_, error);
  if (error) return Status::io_error(cache_dir_.string() + ": " + error.message());
  const std::string_view bytes(reinterpret_cast<const char*>(source.archive->data()), source.archive->size());
  const std::string_view parts[] = {bytes};
  return write_file_atomically(cache_path(source.archive_digest), parts);
}

}  // namespace cohort
