// Fuzzes read_idx_file, the reader of a data holder's IDX files (raw or
// gzip-compressed). The reader takes a path, so the input is put in an
// in-memory file (memfd) and read through /proc/self/fd.
//
// Invariant: a file that reads has rank 1 to 4 and exactly product(dims)
// bytes of data.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "cohort/dataset.h"
#include "fuzz_check.h"

namespace {

// An in-memory file holding the input; closed on destruction.
class MemoryFile {
 public:
  MemoryFile(const uint8_t* data, size_t size) : fd_(memfd_create("idx_fuzzer", 0)) {
    cohort::fuzz::check(fd_ >= 0, "memfd_create works");
    size_t done = 0;
    while (done < size) {
      const ssize_t wrote = write(fd_, data + done, size - done);
      cohort::fuzz::check(wrote > 0, "the input is written to the memfd");
      done += static_cast<size_t>(wrote);
    }
  }
  ~MemoryFile() { close(fd_); }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryFile file(data, size);
  cohort::Result<cohort::IdxBytes> idx = cohort::read_idx_file(file.path());
  if (!idx.ok()) return 0;
  cohort::fuzz::check(!idx->dims.empty() && idx->dims.size() <= 4, "the rank is 1 to 4");
  uint64_t elements = 1;
  for (int64_t dim : idx->dims) elements *= static_cast<uint64_t>(dim);
  cohort::fuzz::check(elements == idx->data.size(), "the data holds product(dims) bytes");
  return 0;
}
