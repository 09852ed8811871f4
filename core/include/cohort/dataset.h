// Labelled image datasets in the IDX format (MNIST, Fashion-MNIST, or a data
// holder's own files), read into plain byte buffers.
//
// Nothing here depends on LibTorch: training code turns a LabeledImages into
// tensors. Readers accept raw files and gzip-compressed ones (detected by the
// gzip magic, not by the file name). Every error names the file and the
// problem: wrong magic, unsupported element type, truncated data, trailing
// bytes, or an image/label count mismatch.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "cohort/crypto.h"
#include "cohort/status.h"

namespace cohort {

// `count` images of rows x cols unsigned bytes, each with a label byte.
struct LabeledImages {
  int64_t count = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<uint8_t> pixels;  // count * rows * cols, row-major, image-major
  std::vector<uint8_t> labels;  // count

  int64_t image_bytes() const { return rows * cols; }
};

// A decoded IDX array of unsigned bytes (element type 0x08) of any rank.
struct IdxBytes {
  std::vector<int64_t> dims;
  std::vector<uint8_t> data;  // product(dims) bytes
};

// Reads one IDX file of unsigned bytes. Other element types are rejected
// with an error naming the type code. Errors: NotFound (no such file),
// IoError (cannot read, or not a regular file), InvalidArgument (element type), ResourceExhausted
// (over 4 GiB of data), Corruption (anything else malformed).
Result<IdxBytes> read_idx_file(const std::filesystem::path& path);

// Reads an image file (rank 3: count, rows, cols) and a label file (rank 1)
// and checks that the counts agree.
Result<LabeledImages> load_idx_pair(const std::filesystem::path& images,
                                    const std::filesystem::path& labels);

enum class Split { kTrain, kTest };

// The two files of a labelled image set.
struct IdxFiles {
  std::filesystem::path images;
  std::filesystem::path labels;
};

// The standard file names ("train-images-idx3-ubyte[.gz]", ...,
// "t10k-labels-idx1-ubyte[.gz]") in `dir`, preferring the .gz files;
// NotFound naming both names of the first one missing.
Result<IdxFiles> find_mnist_format_files(const std::filesystem::path& dir, Split split);

// Loads the files find_mnist_format_files names.
Result<LabeledImages> load_mnist_format_dir(const std::filesystem::path& dir, Split split);

// Debian's dataset-fashion-mnist package installs here.
inline constexpr const char* kDefaultFashionMnistDir = "/usr/share/datasets/fashion-mnist";

// Returns the samples at `indices` (in that order); indices must be in range.
// An index outside [0, all.count) is a caller bug and throws
// std::out_of_range.
LabeledImages select_samples(const LabeledImages& all, const std::vector<int64_t>& indices);

// BLAKE2b over the shape, pixels and labels: a task names the training split
// it refers to by this digest, so a worker can tell that it holds the same
// data the coordinator will verify against.
Digest digest_of(const LabeledImages& data);

}  // namespace cohort
