#include "cohort/npy.h"

#include <gtest/gtest.h>

#include <cstring>

namespace cohort {
namespace {

// The bytes numpy 2.x writes for np.save(np.array([[1,2,3],[4,5,6]], float32)):
// a 118-byte header padded so that the data starts at offset 128.
std::vector<uint8_t> numpy_float32_2x3() {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header.append(117 - header.size(), ' ');
  header.push_back('\n');
  const float values[] = {1, 2, 3, 4, 5, 6};
  std::string file = std::string("\x93NUMPY\x01\x00\x76\x00", 10) + header +
                     std::string(reinterpret_cast<const char*>(values), sizeof(values));
  return std::vector<uint8_t>(file.begin(), file.end());
}

NpyArray float64_vector(std::vector<double> values) {
  NpyArray array;
  array.dtype = DType::kFloat64;
  array.shape = {static_cast<int64_t>(values.size())};
  array.data.resize(values.size() * 8);
  std::memcpy(array.data.data(), values.data(), array.data.size());
  return array;
}

Status parse_error(std::vector<uint8_t> bytes) {
  return parse_npy(bytes, "x.npy").status();
}

TEST(NpyTest, ReadsWhatNumpyWrites) {
  auto array = parse_npy(numpy_float32_2x3(), "x.npy");
  ASSERT_TRUE(array.ok()) << array.status().to_string();
  EXPECT_EQ(array->dtype, DType::kFloat32);
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 3}));
  float values[6];
  std::memcpy(values, array->data.data(), sizeof(values));
  EXPECT_EQ(values[5], 6.0f);
}

TEST(NpyTest, SerializesExactlyAsNumpyDoes) {
  NpyArray array = *parse_npy(numpy_float32_2x3(), "x.npy");
  EXPECT_EQ(serialize_npy(array), numpy_float32_2x3());
}

TEST(NpyTest, RoundTripsFloat64VectorsAndScalars) {
  NpyArray vector = float64_vector({1.5, -2.0});
  auto parsed = parse_npy(serialize_npy(vector), "v.npy");
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(parsed->data, vector.data);
  EXPECT_EQ(serialize_npy(vector).size() % 64, 16u);  // 128-byte prefix + 16 data bytes

  NpyArray scalar = float64_vector({7.0});
  scalar.shape = {};
  auto parsed_scalar = parse_npy(serialize_npy(scalar), "s.npy");
  ASSERT_TRUE(parsed_scalar.ok());
  EXPECT_TRUE(parsed_scalar->shape.empty());
  EXPECT_EQ(parsed_scalar->numel(), 1);
}

TEST(NpyTest, RejectsBadMagic) {
  auto bytes = numpy_float32_2x3();
  bytes[1] = 'X';
  Status s = parse_error(bytes);
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_NE(s.message().find("x.npy"), std::string::npos);
  EXPECT_NE(s.message().find("magic"), std::string::npos);
}

TEST(NpyTest, RejectsUnsupportedVersion) {
  auto bytes = numpy_float32_2x3();
  bytes[6] = 9;
  EXPECT_NE(parse_error(bytes).message().find("version 9"), std::string::npos);
}

TEST(NpyTest, RejectsOtherDtypesNamingThem) {
  for (const char* descr : {"<i4", ">f4", "<f2"}) {
    auto bytes = numpy_float32_2x3();
    std::memcpy(bytes.data() + 21, descr, 3);
    Status s = parse_error(bytes);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << descr;
    EXPECT_NE(s.message().find(descr), std::string::npos) << s.message();
  }
}

TEST(NpyTest, RejectsFortranOrder) {
  auto bytes = numpy_float32_2x3();
  const std::string from = "False", to = "True ";
  auto it = std::search(bytes.begin(), bytes.end(), from.begin(), from.end());
  std::copy(to.begin(), to.end(), it);
  Status s = parse_error(bytes);
  EXPECT_NE(s.message().find("Fortran"), std::string::npos) << s.message();
}

TEST(NpyTest, RejectsTruncatedAndTrailingData) {
  auto truncated = numpy_float32_2x3();
  truncated.pop_back();
  EXPECT_NE(parse_error(truncated).message().find("truncated data: expected 24 bytes, got 23"),
            std::string::npos);
  auto trailing = numpy_float32_2x3();
  trailing.push_back(0);
  EXPECT_NE(parse_error(trailing).message().find("1 trailing bytes"), std::string::npos);
  auto header_cut = numpy_float32_2x3();
  header_cut.resize(40);
  EXPECT_NE(parse_error(header_cut).message().find("truncated header"), std::string::npos);
}

TEST(NpyTest, RejectsMalformedHeaderAndHugeShapes) {
  auto bytes = numpy_float32_2x3();
  std::memcpy(bytes.data() + 10, "[not a dict]", 12);
  EXPECT_NE(parse_error(bytes).message().find("malformed header"), std::string::npos);

  NpyArray huge;
  huge.shape = {1000000000, 1000000000};
  Status s = parse_npy(serialize_npy(huge), "h.npy").status();
  EXPECT_EQ(s.code(), Status::Code::kResourceExhausted);
}

// Found while writing fuzz/npy_fuzzer: the header was matched with std::regex,
// which recursed once per character and overflowed the stack (a segfault in
// `cohort aggregate`) on a header of 50,000 bytes.
TEST(NpyTest, MegabyteHeaderParsesWithoutExhaustingTheStack) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1" + std::string(1 << 20, ' ') +
                       "), }\n";
  const auto length = static_cast<uint32_t>(header.size());
  std::string file = std::string("\x93NUMPY\x02\x00", 8);
  for (int shift : {0, 8, 16, 24}) file.push_back(static_cast<char>((length >> shift) & 0xff));
  file += header + std::string(8, '\0');
  auto array = parse_npy(std::vector<uint8_t>(file.begin(), file.end()), "long.npy");
  ASSERT_TRUE(array.ok()) << array.status().to_string();
  EXPECT_EQ(array->shape, (std::vector<int64_t>{2, 1}));
}

// A file with this header: `shape` as given, float32, no data after it
// beyond `data_bytes` zeros.
std::vector<uint8_t> with_shape(const std::string& shape, size_t data_bytes) {
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
  header.push_back('\n');
  std::string file = std::string("\x93NUMPY\x01\x00", 8);
  file.push_back(static_cast<char>(header.size() & 0xff));
  file.push_back(static_cast<char>(header.size() >> 8));
  file += header + std::string(data_bytes, '\0');
  return std::vector<uint8_t>(file.begin(), file.end());
}

// numpy refuses these; the reader took "(-5, 10)" as 5 rows of 10.
TEST(NpyTest, ShapesThatAreNotTuplesOfNonNegativeIntegersAreRefused) {
  for (const std::string shape : {"(-5, 10)", "(2.5,)", "(3, x)", "(3,, 4)", "(,)", "(1e3,)"}) {
    const Status status = parse_error(with_shape(shape, 200));
    EXPECT_EQ(status.code(), Status::Code::kCorruption) << shape;
    EXPECT_NE(status.message().find("is not a tuple of non-negative integers"), std::string::npos)
        << shape << ": " << status.message();
  }
  for (const auto& [shape, dims] : std::vector<std::pair<std::string, std::vector<int64_t>>>{
           {"()", {}}, {"(5,)", {5}}, {"(5)", {5}}, {"( 5 , 10 , )", {5, 10}}, {"(0, 3)", {0, 3}}}) {
    int64_t count = 1;
    for (int64_t d : dims) count *= d;
    Result<NpyArray> array = parse_npy(with_shape(shape, static_cast<size_t>(count) * 4), "x.npy");
    ASSERT_TRUE(array.ok()) << shape << ": " << array.status().to_string();
    EXPECT_EQ(array->shape, dims) << shape;
  }
}

// Header bytes are not echoed as they are: they may be terminal escapes.
TEST(NpyTest, MessagesShowOnlyPrintableHeaderText) {
  const Status status = parse_error(with_shape("(\x1b[2J3,)", 12));
  EXPECT_EQ(status.message().find('\x1b'), std::string::npos) << status.message();
}

TEST(NpyTest, DirectoriesAndDevicesAreRefusedBeforeReading) {
  for (const char* path : {"/tmp", "/dev/zero"}) {
    const Status status = read_npy(path).status();
    EXPECT_EQ(status.code(), Status::Code::kIoError) << path;
    EXPECT_EQ(status.message(), std::string(path) + " is not a regular file");
  }
}

TEST(NpyTest, FilesRoundTripAndMissingFileIsNotFound) {
  const auto path = std::filesystem::temp_directory_path() / "cohort-npy-test.npy";
  ASSERT_TRUE(write_npy(path, float64_vector({3.0, 4.0})).ok());
  auto read = read_npy(path);
  ASSERT_TRUE(read.ok());
  EXPECT_EQ(read->numel(), 2);
  std::filesystem::remove(path);
  EXPECT_EQ(read_npy(path).status().code(), Status::Code::kNotFound);
}

}  // namespace
}  // namespace cohort
