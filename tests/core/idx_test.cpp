#include <gtest/gtest.h>
#include <zlib.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cohort/dataset.h"

namespace cohort {
namespace {

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

void append_be32(Bytes& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// A well-formed unsigned-byte IDX file with the given dims and data.
Bytes idx_bytes(const std::vector<uint32_t>& dims, const Bytes& data) {
  Bytes out{0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) append_be32(out, d);
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

Bytes ramp(size_t n) {
  Bytes out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 7);
  return out;
}

// Each test gets its own directory under the system temp dir, removed after.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    dir_ = fs::temp_directory_path() /
           ("cohort_idx_test_" + std::to_string(stamp) + "_" + std::to_string(std::random_device{}()));
    fs::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  fs::path write_raw(const std::string& name, const Bytes& bytes) {
    const fs::path path = dir_ / name;
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    return path;
  }

  fs::path write_gz(const std::string& name, const Bytes& bytes) {
    const fs::path path = dir_ / name;
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    if (!bytes.empty()) {
      EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
                static_cast<int>(bytes.size()));
    }
    gzclose(f);
    return path;
  }

  // Writes an image/label pair of `count` rows x cols images.
  void write_pair(const std::string& prefix, uint32_t count, uint32_t rows, uint32_t cols, bool gz) {
    const Bytes images = idx_bytes({count, rows, cols}, ramp(size_t{count} * rows * cols));
    Bytes label_data(count);
    for (uint32_t i = 0; i < count; ++i) label_data[i] = static_cast<uint8_t>(i % 10);
    const Bytes labels = idx_bytes({count}, label_data);
    const std::string suffix = gz ? ".gz" : "";
    if (gz) {
      write_gz(prefix + "-images-idx3-ubyte" + suffix, images);
      write_gz(prefix + "-labels-idx1-ubyte" + suffix, labels);
    } else {
      write_raw(prefix + "-images-idx3-ubyte", images);
      write_raw(prefix + "-labels-idx1-ubyte", labels);
    }
  }

  fs::path dir_;
};

// Asserts that reading `path` fails with `code` and a message naming the file
// and containing `problem`.
void expect_read_error(const fs::path& path, Status::Code code, const std::string& problem) {
  const Result<IdxBytes> r = read_idx_file(path);
  ASSERT_FALSE(r.ok()) << path;
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(path.filename().string()), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find(problem), std::string::npos) << r.status().to_string();
}

TEST_F(IdxTest, ReadsRawFile) {
  const fs::path path = write_raw("a.idx", idx_bytes({2, 3}, ramp(6)));
  const Result<IdxBytes> r = read_idx_file(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dims, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(r->data, ramp(6));
}

TEST_F(IdxTest, ReadsGzipFileRegardlessOfName) {
  const fs::path path = write_gz("compressed_without_suffix", idx_bytes({4, 2, 2, 1}, ramp(16)));
  const Result<IdxBytes> r = read_idx_file(path);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dims, (std::vector<int64_t>{4, 2, 2, 1}));
  EXPECT_EQ(r->data, ramp(16));
}

TEST_F(IdxTest, ReadsEmptyArray) {
  const Result<IdxBytes> r = read_idx_file(write_raw("empty.idx", idx_bytes({0, 28, 28}, {})));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->dims, (std::vector<int64_t>{0, 28, 28}));
  EXPECT_TRUE(r->data.empty());
}

TEST_F(IdxTest, MissingFileCannotBeOpened) {
  expect_read_error(dir_ / "does-not-exist.idx", Status::Code::kNotFound, "cannot open");
}

TEST_F(IdxTest, WrongMagicShowsTheBytes) {
  expect_read_error(write_raw("magic.idx", {0x01, 0x02, 0x08, 0x01, 0, 0, 0, 0}), Status::Code::kCorruption,
                    "wrong magic bytes 01 02 08 01");
}

TEST_F(IdxTest, UnsupportedTypeNamesTheCodeInHex) {
  Bytes bytes = idx_bytes({1}, {0, 0, 0, 0});
  bytes[2] = 0x0D;  // float
  expect_read_error(write_raw("float.idx", bytes), Status::Code::kInvalidArgument, "type 0x0d");
}

TEST_F(IdxTest, RankZeroAndRankFiveAreRejected) {
  expect_read_error(write_raw("rank0.idx", {0, 0, 0x08, 0}), Status::Code::kCorruption, "rank 0");
  expect_read_error(write_raw("rank5.idx", idx_bytes({1, 1, 1, 1, 1}, {7})), Status::Code::kCorruption,
                    "rank 5");
}

TEST_F(IdxTest, TruncatedHeader) {
  expect_read_error(write_raw("short_magic.idx", {0, 0}), Status::Code::kCorruption, "truncated header");
  Bytes bytes = idx_bytes({2, 3, 4}, {});
  bytes.erase(bytes.end() - 2, bytes.end());  // cut into the last dimension
  expect_read_error(write_raw("short_dims.idx", bytes), Status::Code::kCorruption,
                    "truncated header (expected 16 bytes, got 14)");
}

TEST_F(IdxTest, TruncatedDataGivesExpectedAndActualSize) {
  Bytes bytes = idx_bytes({3, 4}, ramp(12));
  bytes.pop_back();
  expect_read_error(write_raw("short.idx", bytes), Status::Code::kCorruption,
                    "truncated data (expected 12 bytes, got 11)");
  expect_read_error(write_gz("short.idx.gz", bytes), Status::Code::kCorruption,
                    "truncated data (expected 12 bytes, got 11)");
}

TEST_F(IdxTest, CutGzipStreamIsAnError) {
  const Bytes bytes = idx_bytes({1000}, Bytes(1000, 5));
  const fs::path path = write_gz("cut.idx.gz", bytes);
  fs::resize_file(path, fs::file_size(path) - 12);  // drop the gzip trailer and some deflate data
  const Result<IdxBytes> r = read_idx_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cut.idx.gz"), std::string::npos) << r.status().to_string();
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption) << r.status().to_string();
}

TEST_F(IdxTest, DamagedGzipStreamIsAnError) {
  const fs::path path = write_gz("bad_crc.idx.gz", idx_bytes({10}, ramp(10)));
  const auto size = static_cast<std::streamoff>(fs::file_size(path));
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(size - 8);  // first byte of the gzip trailer's CRC-32
  file.put('\x5a');
  file.close();
  expect_read_error(path, Status::Code::kCorruption, "damaged gzip stream");
}

TEST_F(IdxTest, TrailingBytesAreRejected) {
  Bytes bytes = idx_bytes({2, 2}, ramp(4));
  bytes.push_back(0);
  expect_read_error(write_raw("long.idx", bytes), Status::Code::kCorruption, "trailing bytes");
  expect_read_error(write_gz("long.idx.gz", bytes), Status::Code::kCorruption, "trailing bytes");
}

TEST_F(IdxTest, OversizedDimensionsHitTheSizeLimit) {
  expect_read_error(write_raw("huge.idx", idx_bytes({65536, 65536, 2}, {})), Status::Code::kResourceExhausted,
                    "4 GiB");
  // 2^128 bytes would overflow a 64-bit product.
  expect_read_error(
      write_raw("overflow.idx", idx_bytes({0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}, {})),
      Status::Code::kResourceExhausted, "limit");
}

TEST_F(IdxTest, LoadsImageLabelPair) {
  const fs::path images = write_raw("img", idx_bytes({3, 2, 2}, ramp(12)));
  const fs::path labels = write_gz("lbl", idx_bytes({3}, {4, 5, 6}));
  const Result<LabeledImages> r = load_idx_pair(images, labels);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->count, 3);
  EXPECT_EQ(r->rows, 2);
  EXPECT_EQ(r->cols, 2);
  EXPECT_EQ(r->image_bytes(), 4);
  EXPECT_EQ(r->pixels, ramp(12));
  EXPECT_EQ(r->labels, (Bytes{4, 5, 6}));
}

TEST_F(IdxTest, PairChecksRanks) {
  const fs::path images = write_raw("img", idx_bytes({3, 2, 2}, ramp(12)));
  const fs::path labels = write_raw("lbl", idx_bytes({3}, {4, 5, 6}));
  const fs::path flat_images = write_raw("flat_img", idx_bytes({3, 4}, ramp(12)));
  const fs::path square_labels = write_raw("square_lbl", idx_bytes({3, 1}, {4, 5, 6}));

  Result<LabeledImages> r = load_idx_pair(flat_images, labels);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("flat_img"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("rank 2, expected 3"), std::string::npos) << r.status().to_string();

  r = load_idx_pair(images, square_labels);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("square_lbl"), std::string::npos) << r.status().to_string();
  EXPECT_NE(r.status().message().find("rank 2, expected 1"), std::string::npos) << r.status().to_string();
}

TEST_F(IdxTest, PairCountMismatchShowsBothCounts) {
  const fs::path images = write_raw("img", idx_bytes({3, 2, 2}, ramp(12)));
  const fs::path labels = write_raw("lbl", idx_bytes({2}, {4, 5}));
  const Result<LabeledImages> r = load_idx_pair(images, labels);
  ASSERT_FALSE(r.ok());
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("count mismatch"), std::string::npos) << msg;
  EXPECT_NE(msg.find("img has 3 images"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lbl has 2 labels"), std::string::npos) << msg;
}

TEST_F(IdxTest, MnistDirLoadsBothSplits) {
  write_pair("train", 5, 3, 2, /*gz=*/true);
  write_pair("t10k", 2, 3, 2, /*gz=*/false);
  const Result<LabeledImages> train = load_mnist_format_dir(dir_, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status().to_string();
  EXPECT_EQ(train->count, 5);
  const Result<LabeledImages> test = load_mnist_format_dir(dir_, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status().to_string();
  EXPECT_EQ(test->count, 2);
  EXPECT_EQ(test->labels, (Bytes{0, 1}));
}

TEST_F(IdxTest, MnistDirPrefersGzip) {
  write_pair("train", 4, 1, 1, /*gz=*/false);
  write_pair("train", 6, 1, 1, /*gz=*/true);
  const Result<LabeledImages> r = load_mnist_format_dir(dir_, Split::kTrain);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->count, 6);
}

TEST_F(IdxTest, MnistDirMissingFileIsNotFound) {
  write_raw("t10k-images-idx3-ubyte", idx_bytes({1, 1, 1}, {0}));
  const Result<LabeledImages> r = load_mnist_format_dir(dir_, Split::kTest);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  const std::string expected_path = (dir_ / "t10k-labels-idx1-ubyte.gz").string();
  EXPECT_NE(r.status().message().find(expected_path), std::string::npos) << r.status().to_string();
}

TEST(SelectSamplesTest, CopiesSelectedImagesInOrder) {
  LabeledImages all;
  all.count = 3;
  all.rows = 1;
  all.cols = 2;
  all.pixels = {10, 11, 20, 21, 30, 31};
  all.labels = {1, 2, 3};
  const LabeledImages picked = select_samples(all, {2, 0, 2});
  EXPECT_EQ(picked.count, 3);
  EXPECT_EQ(picked.rows, 1);
  EXPECT_EQ(picked.cols, 2);
  EXPECT_EQ(picked.pixels, (Bytes{30, 31, 10, 11, 30, 31}));
  EXPECT_EQ(picked.labels, (Bytes{3, 1, 3}));
  EXPECT_EQ(select_samples(all, {}).count, 0);
  EXPECT_THROW(select_samples(all, {3}), std::out_of_range);
  EXPECT_THROW(select_samples(all, {-1}), std::out_of_range);
}

TEST(FashionMnistTest, LoadsInstalledDataset) {
  const fs::path dir = kDefaultFashionMnistDir;
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " not installed (Debian package dataset-fashion-mnist)";

  const Result<LabeledImages> train = load_mnist_format_dir(dir, Split::kTrain);
  ASSERT_TRUE(train.ok()) << train.status().to_string();
  EXPECT_EQ(train->count, 60000);
  EXPECT_EQ(train->rows, 28);
  EXPECT_EQ(train->cols, 28);
  EXPECT_EQ(train->pixels.size(), size_t{60000} * 28 * 28);
  std::array<int, 10> per_class{};
  for (uint8_t label : train->labels) {
    ASSERT_LT(label, 10);
    ++per_class[label];
  }
  for (int n : per_class) EXPECT_EQ(n, 6000);

  const Result<LabeledImages> test = load_mnist_format_dir(dir, Split::kTest);
  ASSERT_TRUE(test.ok()) << test.status().to_string();
  EXPECT_EQ(test->count, 10000);
  EXPECT_EQ(test->rows, 28);
  EXPECT_EQ(test->cols, 28);
  for (uint8_t label : test->labels) ASSERT_LT(label, 10);
}

}  // namespace
}  // namespace cohort
