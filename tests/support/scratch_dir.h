// ScratchDir, shared by the in-process and the integration tests.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>

namespace cohort::testing {

// A scratch directory removed at the end of the test.
class ScratchDir {
 public:
  ScratchDir() {
    std::random_device rd;
    path_ = std::filesystem::temp_directory_path() /
            ("cohort-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    std::filesystem::create_directories(path_);
  }
  // COHORT_KEEP_SCRATCH=1 keeps the directory (and says where) for a look
  // at a failed test's logs, job files and ledgers.
  ~ScratchDir() {
    if (const char* keep = std::getenv("COHORT_KEEP_SCRATCH"); keep != nullptr && std::string(keep) == "1") {
      std::cerr << "kept " << path_ << "\n";
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace cohort::testing
