// An exclusive lock on a file, held while the object lives: how one process
// at a time runs a job in an output directory, or writes a ledger.
//
// The lock is flock(2) on `path` (created if missing), so the kernel drops
// it when its holder exits for any reason, kill -9 included: a stale lock
// file never blocks a restart. The file holds the holder's pid, so that a
// refused process can say who holds it. Locks conflict between two opens of
// the file even inside one process. The descriptor is close-on-exec: child
// processes do not inherit the lock.
#pragma once

#include <filesystem>
#include <string_view>

#include "cohort/status.h"

namespace cohort {

class FileLock {
 public:
  // Takes the lock without waiting. `what` names the locked thing in the
  // error: FailedPrecondition "<what> is in use by process <pid> (it holds
  // <path>)" when another holder has it; IoError when the file cannot be
  // opened or written.
  static Result<FileLock> acquire(const std::filesystem::path& path, std::string_view what);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();  // releases the lock (the file stays)

  const std::filesystem::path& path() const { return path_; }

 private:
  FileLock(int fd, std::filesystem::path path) : fd_(fd), path_(std::move(path)) {}

  int fd_ = -1;
  std::filesystem::path path_;
};

}  // namespace cohort
