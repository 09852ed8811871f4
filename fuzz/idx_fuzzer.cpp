// Fuzzes read_idx_file, the reader of a data holder's IDX files (raw or
// gzip-compressed). The reader takes a path, so the input is put in an
// in-memory file (memfd) and read through /proc/self/fd.
//
// Invariants: a file that reads has rank 1 to 4 and exactly product(dims)
// bytes of data. An image file (rank 3), labelled with the first pixel of
// each image, passes check_fits against the built-in models exactly when it
// has images, they are 28x28 and every label is below 10: data that parses
// but does not fit is refused when it is loaded, never deep inside LibTorch.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include <algorithm>

#include "cohort/dataset.h"
#include "cohort/models.h"
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

void check_fit_decision(const cohort::IdxBytes& idx) {
  cohort::LabeledImages images;
  images.count = idx.dims[0];
  images.rows = idx.dims[1];
  images.cols = idx.dims[2];
  images.pixels = idx.data;
  // With at least one image, rows * cols is at most the 4 GiB of data; with
  // none (or images of 0 pixels) there are no pixels to take labels from,
  // and check_fits must refuse the shape before it looks at labels.
  if (images.count > 0 && !images.pixels.empty()) {
    const auto image_bytes = static_cast<size_t>(images.rows * images.cols);
    for (int64_t i = 0; i < images.count; ++i) images.labels.push_back(images.pixels[static_cast<size_t>(i) * image_bytes]);
  }
  const cohort::ModelInput input = cohort::kBuiltinModelInput;
  const bool fits = images.count > 0 && images.rows == input.rows && images.cols == input.cols &&
                    std::all_of(images.labels.begin(), images.labels.end(),
                                [&](uint8_t label) { return label < input.classes; });
  const cohort::Status checked = cohort::check_fits(images, input, "the models", {"images", "labels"});
  cohort::fuzz::check(checked.ok() == fits, "check_fits accepts exactly the data that fits");
  cohort::fuzz::check(checked.ok() || checked.code() == cohort::Status::Code::kInvalidArgument,
                      "data that does not fit is InvalidArgument");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  MemoryFile file(data, size);
  cohort::Result<cohort::IdxBytes> idx = cohort::read_idx_file(file.path());
  if (!idx.ok()) return 0;
  cohort::fuzz::check(!idx->dims.empty() && idx->dims.size() <= 4, "the rank is 1 to 4");
  uint64_t elements = 1;
  for (int64_t dim : idx->dims) elements *= static_cast<uint64_t>(dim);
  cohort::fuzz::check(elements == idx->data.size(), "the data holds product(dims) bytes");
  if (idx->dims.size() == 3) check_fit_decision(*idx);
  return 0;
}
