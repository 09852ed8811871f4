// What a job trains, as the coordinator and the workers hand it around
// before any model is built: a built-in's name, or a TorchScript archive's
// bytes and digest (docs/MODELS.md). Archives travel content-addressed: a
// signed Task names the digest, a worker without the bytes sends a
// ModelRequest, and the coordinator answers with a ModelArchive message
// whose payload frames carry the bytes (docs/PROTOCOL.md). No LibTorch
// here; Model (models.h) builds a model from a source.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "cohort/crypto.h"
#include "cohort/frame.h"
#include "cohort/model_names.h"
#include "cohort/protocol.h"
#include "cohort/status.h"

namespace cohort {

// Largest TorchScript archive read from a file or accepted over the wire.
inline constexpr uint64_t kMaxModelArchiveBytes = uint64_t{1} << 30;

// A built-in by name, or (name kTorchScriptModelName) an archive's bytes
// and their BLAKE2b-256 digest. A value type; copies share the bytes.
struct ModelSource {
  std::string name;
  std::shared_ptr<const std::vector<uint8_t>> archive;  // null for a built-in
  Digest archive_digest{};                              // zero for a built-in
  bool is_archive() const { return archive != nullptr; }
};

ModelSource builtin_model_source(std::string name);
// A source for archive bytes at hand (read, received, cached).
ModelSource archive_model_source(std::vector<uint8_t> archive);
// The archive at `path`. Errors: unreadable (IoError), empty or over
// `max_bytes` (InvalidArgument), each naming the path.
Result<ModelSource> read_model_archive(const std::filesystem::path& path,
                                       uint64_t max_bytes = kMaxModelArchiveBytes);

// The ModelArchive message for `source` (an archive) and its payload: the
// bytes in frames of at most `chunk_bytes` that share the source's buffer.
struct ArchiveTransfer {
  ModelArchiveMessage message;
  Frames frames;
};
ArchiveTransfer archive_transfer(const ModelSource& source, size_t chunk_bytes);

// The archive a ModelArchive message and its frames carry, checked against
// the digest the task named. Errors: another archive than `expected`
// (FailedPrecondition); over `max_bytes` (ResourceExhausted); frames that
// do not add up to the announced count and size, or bytes whose digest is
// not the announced one (Corruption: truncated or tampered in transit).
Result<ModelSource> received_archive(const ModelArchiveMessage& message, const Frames& frames,
                                     const Digest& expected, uint64_t max_bytes = kMaxModelArchiveBytes);

}  // namespace cohort
