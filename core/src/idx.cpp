// IDX reader (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
//
// Files are read through zlib's gz* API, which inflates a file that starts
// with the gzip magic (1f 8b) and passes any other file through unchanged, so
// one code path serves raw and compressed files alike.
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>

#include "cohort/dataset.h"

namespace cohort {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr int kMaxRank = 4;
// Far above any image dataset Cohort trains on, and small enough that a
// corrupt header cannot make us allocate without bound.
constexpr uint64_t kMaxDataBytes = uint64_t{4} << 30;  // 4 GiB
// gzread takes an unsigned int length; read in slices well below that.
constexpr size_t kReadSliceBytes = size_t{16} << 20;

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFilePtr = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%02x", b);
  return buf;
}

std::string hex_bytes(std::span<const uint8_t> bytes) {
  std::string out;
  for (uint8_t b : bytes) {
    if (!out.empty()) out += ' ';
    out += hex_byte(b);
  }
  return out;
}

// "<path>: <problem>", the shape of every error this file returns.
std::string describe(const std::filesystem::path& path, std::string_view problem) {
  return path.string() + ": " + std::string(problem);
}

Result<GzFilePtr> open_file(const std::filesystem::path& path) {
  // A directory reads as an error only later, and a FIFO would block.
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (!ec && status.type() != std::filesystem::file_type::regular) {
    return Status::io_error(describe(path, "not a regular file"));
  }
  errno = 0;
  gzFile f = gzopen(path.c_str(), "rb");
  if (f != nullptr) return GzFilePtr(f);
  const int err = errno;
  std::string problem = "cannot open";
  if (err != 0) problem += std::string(": ") + std::strerror(err);
  if (err == ENOENT) return Status::not_found(describe(path, problem));
  return Status::io_error(describe(path, problem));
}

// The error behind a failed gzread: the OS, or a damaged gzip stream.
Status read_error(gzFile f, const std::filesystem::path& path) {
  const int saved_errno = errno;
  int code = 0;
  std::string_view msg = gzerror(f, &code);
  if (code == Z_ERRNO) {
    return Status::io_error(describe(path, std::string("read failed: ") + std::strerror(saved_errno)));
  }
  // zlib prefixes its message with the path it was given; we add our own.
  const std::string zlib_prefix = path.string() + ": ";
  if (msg.starts_with(zlib_prefix)) msg.remove_prefix(zlib_prefix.size());
  return Status::corruption(describe(path, "damaged gzip stream: " + std::string(msg)));
}

// Reads up to out.size() bytes and returns how many arrived; fewer means end
// of input. A damaged gzip stream or an OS error is an error, not a short read.
Result<size_t> read_fully(gzFile f, const std::filesystem::path& path, std::span<uint8_t> out) {
  size_t done = 0;
  while (done < out.size()) {
    const size_t want = std::min(out.size() - done, kReadSliceBytes);
    const int got = gzread(f, out.data() + done, static_cast<unsigned>(want));
    if (got < 0) return read_error(f, path);
    if (got == 0) break;
    done += static_cast<size_t>(got);
  }
  return done;
}

uint32_t big_endian_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// Checks the 4-byte magic and returns the rank it announces.
Result<int> parse_magic(const std::filesystem::path& path, const std::array<uint8_t, 4>& magic) {
  if (magic[0] != 0 || magic[1] != 0) {
    return Status::corruption(
        describe(path, "wrong magic bytes " + hex_bytes(magic) + " (expected 00 00 <type> <rank>)"));
  }
  if (magic[2] != kUnsignedByteType) {
    return Status::invalid_argument(describe(path, "unsupported element type 0x" + hex_byte(magic[2]) +
                                                       " (only 0x08, unsigned byte, is supported)"));
  }
  const int rank = magic[3];
  if (rank == 0 || rank > kMaxRank) {
    return Status::corruption(describe(
        path, "rank " + std::to_string(rank) + " is out of range (1.." + std::to_string(kMaxRank) + ")"));
  }
  return rank;
}

std::string truncated(std::string_view what, uint64_t expected, uint64_t got) {
  return "truncated " + std::string(what) + " (expected " + std::to_string(expected) + " bytes, got " +
         std::to_string(got) + ")";
}

// Reads the magic and the dimensions.
Result<std::vector<int64_t>> read_header(gzFile f, const std::filesystem::path& path) {
  std::array<uint8_t, 4> magic{};
  COHORT_ASSIGN_OR_RETURN(size_t got, read_fully(f, path, magic));
  if (got < magic.size()) return Status::corruption(describe(path, truncated("header", magic.size(), got)));
  COHORT_ASSIGN_OR_RETURN(int rank, parse_magic(path, magic));

  std::vector<uint8_t> raw(4 * static_cast<size_t>(rank));
  COHORT_ASSIGN_OR_RETURN(size_t dims_got, read_fully(f, path, raw));
  if (dims_got < raw.size()) {
    return Status::corruption(
        describe(path, truncated("header", magic.size() + raw.size(), magic.size() + dims_got)));
  }
  std::vector<int64_t> dims;
  for (int i = 0; i < rank; ++i) dims.push_back(big_endian_u32(&raw[4 * static_cast<size_t>(i)]));
  return dims;
}

std::string dims_text(const std::vector<int64_t>& dims) {
  std::string out;
  for (int64_t d : dims) {
    if (!out.empty()) out += 'x';
    out += std::to_string(d);
  }
  return out;
}

// product(dims), refusing anything over kMaxDataBytes (which also rules out
// 64-bit overflow: four uint32 dims can reach 2^128).
Result<uint64_t> data_size(const std::filesystem::path& path, const std::vector<int64_t>& dims) {
  uint64_t total = 1;
  for (int64_t d : dims) {
    const auto dim = static_cast<uint64_t>(d);
    if (dim != 0 && total > kMaxDataBytes / dim) {
      return Status::resource_exhausted(
          describe(path, "dimensions " + dims_text(dims) + " exceed the 4 GiB size limit"));
    }
    total *= dim;
  }
  return total;
}

// Reads exactly `size` data bytes and checks that nothing follows them. The
// buffer grows as bytes arrive, so a lying header costs no big allocation.
Result<std::vector<uint8_t>> read_data(gzFile f, const std::filesystem::path& path, uint64_t size) {
  std::vector<uint8_t> data;
  while (data.size() < size) {
    const size_t start = data.size();
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size - start, kReadSliceBytes));
    if (data.capacity() < start + want) {
      data.reserve(static_cast<size_t>(std::min<uint64_t>(size, 2 * (start + want))));
    }
    data.resize(start + want);
    COHORT_ASSIGN_OR_RETURN(size_t got, read_fully(f, path, std::span(data).subspan(start)));
    if (got < want) return Status::corruption(describe(path, truncated("data", size, start + got)));
  }
  uint8_t extra = 0;
  COHORT_ASSIGN_OR_RETURN(size_t extra_got, read_fully(f, path, std::span(&extra, 1)));
  if (extra_got != 0) {
    return Status::corruption(
        describe(path, "trailing bytes after the " + std::to_string(size) + " data bytes"));
  }
  return data;
}

Status check_rank(const std::filesystem::path& path, const IdxBytes& idx, size_t rank,
                  std::string_view layout) {
  if (idx.dims.size() == rank) return Status();
  return Status::corruption(describe(path, "rank " + std::to_string(idx.dims.size()) + ", expected " +
                                               std::to_string(rank) + " (" + std::string(layout) + ")"));
}

// `dir/name.gz` if present, else `dir/name`; NotFound names both.
Result<std::filesystem::path> find_idx_file(const std::filesystem::path& dir, const std::string& name) {
  std::error_code ec;
  const std::filesystem::path gz = dir / (name + ".gz");
  if (std::filesystem::exists(gz, ec)) return gz;
  const std::filesystem::path raw = dir / name;
  if (std::filesystem::exists(raw, ec)) return raw;
  return Status::not_found(gz.string() + " not found (nor " + raw.string() + ")");
}

}  // namespace

Result<IdxBytes> read_idx_file(const std::filesystem::path& path) {
  COHORT_ASSIGN_OR_RETURN(GzFilePtr file, open_file(path));
  IdxBytes out;
  COHORT_ASSIGN_OR_RETURN(out.dims, read_header(file.get(), path));
  COHORT_ASSIGN_OR_RETURN(uint64_t size, data_size(path, out.dims));
  COHORT_ASSIGN_OR_RETURN(out.data, read_data(file.get(), path, size));
  return out;
}

Result<LabeledImages> load_idx_pair(const std::filesystem::path& images,
                                    const std::filesystem::path& labels) {
  COHORT_ASSIGN_OR_RETURN(IdxBytes image_idx, read_idx_file(images));
  COHORT_RETURN_IF_ERROR(check_rank(images, image_idx, 3, "images: count, rows, cols"));
  COHORT_ASSIGN_OR_RETURN(IdxBytes label_idx, read_idx_file(labels));
  COHORT_RETURN_IF_ERROR(check_rank(labels, label_idx, 1, "labels: count"));
  if (image_idx.dims[0] != label_idx.dims[0]) {
    return Status::corruption("image/label count mismatch: " + images.string() + " has " +
                              std::to_string(image_idx.dims[0]) + " images, " + labels.string() + " has " +
                              std::to_string(label_idx.dims[0]) + " labels");
  }
  LabeledImages out;
  out.count = image_idx.dims[0];
  out.rows = image_idx.dims[1];
  out.cols = image_idx.dims[2];
  out.pixels = std::move(image_idx.data);
  out.labels = std::move(label_idx.data);
  return out;
}

Result<IdxFiles> find_mnist_format_files(const std::filesystem::path& dir, Split split) {
  const std::string prefix = split == Split::kTrain ? "train" : "t10k";
  COHORT_ASSIGN_OR_RETURN(auto images, find_idx_file(dir, prefix + "-images-idx3-ubyte"));
  COHORT_ASSIGN_OR_RETURN(auto labels, find_idx_file(dir, prefix + "-labels-idx1-ubyte"));
  return IdxFiles{images, labels};
}

Result<LabeledImages> load_mnist_format_dir(const std::filesystem::path& dir, Split split) {
  COHORT_ASSIGN_OR_RETURN(IdxFiles files, find_mnist_format_files(dir, split));
  return load_idx_pair(files.images, files.labels);
}

LabeledImages select_samples(const LabeledImages& all, const std::vector<int64_t>& indices) {
  LabeledImages out;
  out.count = static_cast<int64_t>(indices.size());
  out.rows = all.rows;
  out.cols = all.cols;
  const auto image_bytes = static_cast<size_t>(all.image_bytes());
  out.pixels.reserve(indices.size() * image_bytes);
  out.labels.reserve(indices.size());
  for (int64_t i : indices) {
    if (i < 0 || i >= all.count) {
      throw std::out_of_range("select_samples: index " + std::to_string(i) + " outside [0, " +
                              std::to_string(all.count) + ")");
    }
    const auto first = all.pixels.begin() + static_cast<ptrdiff_t>(static_cast<size_t>(i) * image_bytes);
    out.pixels.insert(out.pixels.end(), first, first + static_cast<ptrdiff_t>(image_bytes));
    out.labels.push_back(all.labels[static_cast<size_t>(i)]);
  }
  return out;
}

Digest digest_of(const LabeledImages& data) {
  Hasher hasher;
  hasher.update("cohort-dataset-v1");
  hasher.update_u64(static_cast<uint64_t>(data.count));
  hasher.update_u64(static_cast<uint64_t>(data.rows));
  hasher.update_u64(static_cast<uint64_t>(data.cols));
  hasher.update(data.pixels);
  hasher.update(data.labels);
  return hasher.finish();
}

}  // namespace cohort
