#include "cohort/durable_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

namespace cohort {
namespace {

Status errno_error(std::string_view what, const std::filesystem::path& path) {
  return Status::io_error(std::string(what) + " " + path.string() + ": " + std::strerror(errno));
}

Status write_all(int fd, std::string_view bytes, const std::filesystem::path& path) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_error("cannot write to", path);
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return Status();
}

// Opens `path` with `flags`, runs `body` on the descriptor, fsyncs and closes it.
template <typename Body>
Status with_synced_fd(const std::filesystem::path& path, int flags, Body body) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0644);
  if (fd < 0) return errno_error("cannot open", path);
  Status status = body(fd);
  if (status.ok() && ::fsync(fd) != 0) status = errno_error("cannot fsync", path);
  ::close(fd);
  return status;
}

Status fsync_directory_of(const std::filesystem::path& path) {
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : ".";
  return with_synced_fd(dir, O_RDONLY | O_DIRECTORY, [](int) { return Status(); });
}

}  // namespace

Status write_file_atomically(const std::filesystem::path& path, std::span<const std::string_view> parts) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  COHORT_RETURN_IF_ERROR(with_synced_fd(tmp, O_WRONLY | O_CREAT | O_TRUNC, [&](int fd) {
    for (std::string_view part : parts) COHORT_RETURN_IF_ERROR(write_all(fd, part, tmp));
    return Status();
  }));
  if (::rename(tmp.c_str(), path.c_str()) != 0) return errno_error("cannot rename " + tmp.string() + " to", path);
  return fsync_directory_of(path);
}

Status append_line_durably(const std::filesystem::path& path, std::string_view line) {
  std::string bytes(line);
  bytes.push_back('\n');
  // One write(2) with O_APPEND: the line is never interleaved with another.
  return with_synced_fd(path, O_WRONLY | O_CREAT | O_APPEND, [&](int fd) { return write_all(fd, bytes, path); });
}

Result<std::string> read_whole_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return Status::not_found("no file " + path.string());
    return errno_error("cannot read", path);
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return errno_error("cannot read", path);
  return bytes;
}

Result<std::string> read_regular_file(const std::filesystem::path& path, uint64_t max_bytes, std::string_view what) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    if (errno == ENOENT) return Status::not_found("no file " + path.string());
    return errno_error("cannot open", path);
  }
  struct stat info {};
  Status status;
  std::string bytes;
  if (::fstat(fd, &info) != 0) {
    status = errno_error("cannot stat", path);
  } else if (!S_ISREG(info.st_mode)) {
    status = Status::io_error(path.string() + " is not a regular file");
  } else if (static_cast<uint64_t>(info.st_size) > max_bytes) {
    status = Status::resource_exhausted(path.string() + " is " + std::to_string(info.st_size) +
                                        " bytes, more than the limit of " + std::to_string(max_bytes) + " for " +
                                        std::string(what));
  } else {
    // One byte more than fstat said tells a file that grew meanwhile.
    bytes.resize(static_cast<size_t>(info.st_size) + 1);
    size_t done = 0;
    while (status.ok() && done < bytes.size()) {
      const ssize_t n = ::read(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) status = errno_error("cannot read", path);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    if (status.ok() && done == bytes.size()) status = Status::io_error(path.string() + " grew while it was read");
    bytes.resize(done);
  }
  ::close(fd);
  if (!status.ok()) return status;
  return bytes;
}

Result<std::vector<std::string>> read_complete_lines(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (!std::filesystem::exists(path)) return std::vector<std::string>{};
    return errno_error("cannot read", path);
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t complete = text.empty() || text.back() == '\n' ? text.size() : text.rfind('\n') + 1;
  if (complete < text.size()) {
    COHORT_RETURN_IF_ERROR(with_synced_fd(path, O_WRONLY, [&](int fd) {
      return ::ftruncate(fd, static_cast<off_t>(complete)) == 0 ? Status() : errno_error("cannot truncate", path);
    }));
  }
  std::vector<std::string> lines;
  for (size_t start = 0; start < complete;) {
    const size_t end = text.find('\n', start);
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

}  // namespace cohort
