// The fixture of the ledger tests (ledger_test.cpp: amounts, accounts,
// rounds and receipts; ledger_verify_test.cpp: the chain's bodies and
// verify_ledger against a tampered file): a ledger in a scratch directory,
// and a sample ledger with one closed round.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "cohort/ledger.h"

namespace cohort::ledger_testing {

inline constexpr Amount kToken = kMicrosPerToken;

inline Identity identity(uint8_t n) {
  EXPECT_TRUE(init_crypto().ok());
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  return Identity::from_seed(seed);
}

inline PublicKey worker_key(uint8_t n) {
  PublicKey key{};
  key.fill(n);
  return key;
}

inline Digest digest_of(std::string_view text) {
  return blake2b_256({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

inline Submission submission(uint32_t round, uint64_t task_id, uint8_t worker, uint64_t samples) {
  return {round, task_id, worker_key(worker), digest_of("root " + std::to_string(task_id)),
          digest_of("update " + std::to_string(task_id)), samples};
}

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("cohort-ledger-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::filesystem::path path() const { return dir_ / "ledger.db"; }

  std::unique_ptr<Ledger> open() {
    Result<std::unique_ptr<Ledger>> ledger = Ledger::open(path(), coordinator_);
    EXPECT_TRUE(ledger.ok()) << ledger.status().to_string();
    return ledger.ok() ? std::move(ledger).value() : nullptr;
  }

  // A ledger with one closed round: worker 1 passed (300 samples), worker 2
  // unaudited (200), worker 3 failed and slashed by half; an incident; round
  // 2 open with a pending task.
  void build_sample_ledger() {
    auto ledger = open();
    ASSERT_TRUE(ledger);
    ASSERT_TRUE(ledger->deposit(worker_key(1), 400 * kToken, "volunteer 1").ok());
    ASSERT_TRUE(ledger->deposit(worker_key(3), 400 * kToken, "volunteer 3").ok());
    ASSERT_TRUE(ledger->record_submission(submission(1, 10, 1, 300)).ok());
    ASSERT_TRUE(ledger->record_submission(submission(1, 11, 2, 200)).ok());
    ASSERT_TRUE(ledger->record_submission(submission(1, 12, 3, 500)).ok());
    ASSERT_TRUE(ledger->record_incident(worker_key(4), 1, 13, "bad-signature", "update signature invalid").ok());
    ASSERT_TRUE(ledger->set_verdict(10, Verdict::kPassed, "segments 2, 7 matched").ok());
    ASSERT_TRUE(ledger->set_verdict(11, Verdict::kUnaudited, "").ok());
    ASSERT_TRUE(ledger->set_verdict(12, Verdict::kFailed, "segment 4 diverged").ok());
    ASSERT_TRUE(ledger->slash(worker_key(3), 12, 0.5, true, "failed audit of task 12").ok());
    ASSERT_TRUE(ledger->close_round(1, 100 * kToken).ok());
    ASSERT_TRUE(ledger->record_submission(submission(2, 20, 1, 100)).ok());
  }

  // verify_ledger's error message; fails the test when the ledger verifies.
  std::string verify_error() {
    Result<LedgerReport> report = verify_ledger(path());
    EXPECT_FALSE(report.ok()) << "the ledger still verifies";
    if (report.ok()) return "";
    EXPECT_EQ(report.status().code(), Status::Code::kCorruption) << report.status().to_string();
    return report.status().message();
  }

  Identity coordinator_ = identity(1);
  std::filesystem::path dir_;
};

}  // namespace cohort::ledger_testing
