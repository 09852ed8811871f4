#include "cohort/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

namespace cohort {
namespace {

Status errno_error(std::string_view what, const std::filesystem::path& path) {
  return Status::io_error(std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

// The pid the holder wrote, or "an unknown process" when it is not there yet
// (the holder takes the lock before it writes).
std::string holder_of(int fd) {
  char text[32] = {};
  const ssize_t n = ::pread(fd, text, sizeof text - 1, 0);
  std::string pid(text, n > 0 ? static_cast<size_t>(n) : 0);
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  const bool digits = !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos;
  return digits ? "process " + pid : "an unknown process";
}

Status write_pid(int fd, const std::filesystem::path& path) {
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0) return errno_error("cannot truncate", path);
  if (::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    return errno_error("cannot write", path);
  }
  return Status();
}

}  // namespace

Result<FileLock> FileLock::acquire(const std::filesystem::path& path, std::string_view what) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("cannot open the lock file", path);
  while (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    if (errno == EINTR) continue;
    const bool held = errno == EWOULDBLOCK;
    Status error = held ? Status::failed_precondition(std::string(what) + " is in use by " + holder_of(fd) +
                                                      " (it holds " + path.string() + ")")
                        : errno_error("cannot lock", path);
    ::close(fd);
    return error;
  }
  if (Status written = write_pid(fd, path); !written.ok()) {
    ::close(fd);
    return written;
  }
  return FileLock(fd, path);
}

FileLock::FileLock(FileLock&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

FileLock& FileLock::operator=(FileLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace cohort
