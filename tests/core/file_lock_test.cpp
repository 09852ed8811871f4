#include "cohort/file_lock.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

namespace cohort {
namespace {

namespace fs = std::filesystem;

class FileLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("cohort-lock-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    ASSERT_TRUE(fs::create_directory(dir_));
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
};

TEST_F(FileLockTest, ASecondHolderIsRefusedNamingThePidOfTheFirst) {
  const fs::path path = dir_ / "job.lock";
  Result<FileLock> first = FileLock::acquire(path, "the output directory");
  ASSERT_TRUE(first.ok()) << first.status().to_string();
  Result<FileLock> second = FileLock::acquire(path, "the output directory");
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(second.status().message(), "the output directory is in use by process " + std::to_string(::getpid()) +
                                           " (it holds " + path.string() + ")");
}

TEST_F(FileLockTest, TheLockIsFreeAgainOnceItsHolderIsGone) {
  const fs::path path = dir_ / "job.lock";
  {
    Result<FileLock> first = FileLock::acquire(path, "it");
    ASSERT_TRUE(first.ok());
    FileLock moved = std::move(first).value();  // moving keeps it held
    EXPECT_FALSE(FileLock::acquire(path, "it").ok());
  }
  EXPECT_TRUE(FileLock::acquire(path, "it").ok());
}

// A holder killed with SIGKILL leaves its lock file behind, with its pid in
// it; the kernel released the lock with the process, so a restart proceeds.
TEST_F(FileLockTest, AKilledHoldersStaleFileDoesNotBlock) {
  const fs::path path = dir_ / "job.lock";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Result<FileLock> lock = FileLock::acquire(path, "it");
    if (!lock.ok()) ::_exit(1);
    ::pause();  // until killed
    ::_exit(0);
  }
  for (int i = 0; i < 500 && (!fs::exists(path) || fs::file_size(path) == 0); ++i) ::usleep(10'000);
  Result<FileLock> while_alive = FileLock::acquire(path, "it");
  ASSERT_FALSE(while_alive.ok());
  EXPECT_NE(while_alive.status().message().find("process " + std::to_string(child)), std::string::npos)
      << while_alive.status().message();
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(fs::exists(path));
  EXPECT_TRUE(FileLock::acquire(path, "it").ok());
}

TEST_F(FileLockTest, AnUnwritableDirectoryIsAnIoError) {
  Result<FileLock> lock = FileLock::acquire(dir_ / "missing" / "job.lock", "it");
  ASSERT_FALSE(lock.ok());
  EXPECT_EQ(lock.status().code(), Status::Code::kIoError);
}

}  // namespace
}  // namespace cohort
