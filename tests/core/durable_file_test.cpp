#include "cohort/durable_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

namespace cohort {
namespace {

namespace fs = std::filesystem;

class DurableFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("cohort-durable-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    ASSERT_TRUE(fs::create_directory(dir_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string contents(const fs::path& path) const {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  }

  fs::path dir_;
};

TEST_F(DurableFileTest, AtomicWriteReplacesTheFileAndLeavesNoTemporary) {
  const fs::path path = dir_ / "state";
  const std::string_view first[] = {"old"};
  ASSERT_TRUE(write_file_atomically(path, first).ok());
  const std::string_view second[] = {"new ", "parts"};
  ASSERT_TRUE(write_file_atomically(path, second).ok());
  EXPECT_EQ(contents(path), "new parts");
  EXPECT_FALSE(fs::exists(dir_ / "state.tmp"));
  EXPECT_EQ(write_file_atomically(dir_ / "missing" / "state", second).code(), Status::Code::kIoError);
}

TEST_F(DurableFileTest, AppendedLinesAreReadBack) {
  const fs::path path = dir_ / "log.jsonl";
  ASSERT_TRUE(append_line_durably(path, R"({"round":1})").ok());
  ASSERT_TRUE(append_line_durably(path, R"({"round":2})").ok());
  Result<std::vector<std::string>> lines = read_complete_lines(path);
  ASSERT_TRUE(lines.ok()) << lines.status().to_string();
  EXPECT_EQ(*lines, (std::vector<std::string>{R"({"round":1})", R"({"round":2})"}));
}

// A crash in the middle of an append leaves a line without its newline: it
// is cut off, and the next append starts a line of its own.
TEST_F(DurableFileTest, ATornLastLineIsCutOffSoTheNextAppendStartsCleanly) {
  const fs::path path = dir_ / "log.jsonl";
  std::ofstream(path, std::ios::binary) << "{\"round\":1}\n{\"rou";
  Result<std::vector<std::string>> lines = read_complete_lines(path);
  ASSERT_TRUE(lines.ok()) << lines.status().to_string();
  EXPECT_EQ(*lines, std::vector<std::string>{"{\"round\":1}"});
  EXPECT_EQ(contents(path), "{\"round\":1}\n");
  ASSERT_TRUE(append_line_durably(path, "{\"round\":2}").ok());
  EXPECT_EQ(contents(path), "{\"round\":1}\n{\"round\":2}\n");
}

TEST_F(DurableFileTest, AMissingFileHasNoLinesAndAFileWithOnlyATornLineBecomesEmpty) {
  Result<std::vector<std::string>> none = read_complete_lines(dir_ / "absent");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  const fs::path path = dir_ / "torn";
  std::ofstream(path, std::ios::binary) << "{\"ro";
  Result<std::vector<std::string>> lines = read_complete_lines(path);
  ASSERT_TRUE(lines.ok());
  EXPECT_TRUE(lines->empty());
  EXPECT_EQ(fs::file_size(path), 0u);
}

}  // namespace
}  // namespace cohort
