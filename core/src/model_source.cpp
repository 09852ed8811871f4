#include "cohort/model_source.h"

#include <algorithm>
#include <fstream>

namespace cohort {

ModelSource builtin_model_source(std::string name) { return ModelSource{std::move(name), nullptr, Digest{}}; }

ModelSource archive_model_source(std::vector<uint8_t> archive) {
  ModelSource source;
  source.name = std::string(kTorchScriptModelName);
  source.archive_digest = blake2b_256(archive);
  source.archive = std::make_shared<const std::vector<uint8_t>>(std::move(archive));
  return source;
}

Result<ModelSource> read_model_archive(const std::filesystem::path& path, uint64_t max_bytes) {
  std::error_code error;
  const uintmax_t size = std::filesystem::file_size(path, error);
  if (error) return Status::io_error(path.string() + ": cannot read the model archive: " + error.message());
  if (size == 0) return Status::invalid_argument(path.string() + ": the model archive is empty");
  if (size > max_bytes) {
    return Status::invalid_argument(path.string() + ": the model archive is " + std::to_string(size) +
                                    " bytes, over the limit of " + std::to_string(max_bytes));
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  std::ifstream in(path, std::ios::binary);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size))) {
    return Status::io_error(path.string() + ": cannot read the model archive");
  }
  return archive_model_source(std::move(bytes));
}

ArchiveTransfer archive_transfer(const ModelSource& source, size_t chunk_bytes) {
  ArchiveTransfer out;
  const std::vector<uint8_t>& bytes = *source.archive;
  const size_t chunk = std::max<size_t>(chunk_bytes, 1);
  for (size_t offset = 0; offset < bytes.size(); offset += chunk) {
    const size_t size = std::min(chunk, bytes.size() - offset);
    out.frames.push_back(Frame::shared(source.archive, std::span<const uint8_t>(bytes).subspan(offset, size)));
  }
  out.message = ModelArchiveMessage{source.archive_digest, bytes.size(), static_cast<uint32_t>(out.frames.size())};
  return out;
}

Result<ModelSource> received_archive(const ModelArchiveMessage& message, const Frames& frames, const Digest& expected,
                                     uint64_t max_bytes) {
  const std::string named = "model archive " + to_hex(message.archive).substr(0, 16);
  if (message.archive != expected) {
    return Status::failed_precondition("received " + named + ", but the task names " +
                                       to_hex(expected).substr(0, 16));
  }
  if (message.total_bytes > max_bytes) {
    return Status::resource_exhausted(named + " is " + std::to_string(message.total_bytes) +
                                      " bytes, over the limit of " + std::to_string(max_bytes));
  }
  if (frames.size() != message.chunk_count || size_of(frames) != message.total_bytes) {
    return Status::corruption(named + ": announced " + std::to_string(message.chunk_count) + " chunk(s) of " +
                              std::to_string(message.total_bytes) + " bytes, received " +
                              std::to_string(frames.size()) + " of " + std::to_string(size_of(frames)));
  }
  std::vector<uint8_t> bytes;
  bytes.reserve(static_cast<size_t>(message.total_bytes));
  for (const Frame& frame : frames) bytes.insert(bytes.end(), frame.bytes().begin(), frame.bytes().end());
  ModelSource source = archive_model_source(std::move(bytes));
  if (source.archive_digest != message.archive) {
    return Status::corruption(named + ": the bytes received hash to " + to_hex(source.archive_digest).substr(0, 16) +
                              " (truncated or altered in transit)");
  }
  return source;
}

}  // namespace cohort
