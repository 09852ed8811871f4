// The settlement seam: no_settlement() records and pays nothing; the
// ledger-backed one records as work happens, pays a round once, refuses
// keys by stake and ban, and refuses to recover from a checkpoint the
// ledger disagrees with.
#include "settlement.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "task_id.h"

namespace cohort {
namespace {

namespace fs = std::filesystem;

TEST(SettlementTest, WithoutALedgerNothingIsRecordedRefusedOrPaid) {
  std::unique_ptr<Settlement> none = no_settlement();
  PublicKey worker;
  worker.fill(1);
  EXPECT_FALSE(none->pays());
  EXPECT_FALSE(none->refusal(worker).has_value());
  EXPECT_EQ(none->next_attempt(3).value(), 0u);
  none->submitted(Submission{3, task_id_of(3, 0, 0), worker, {}, {}, 10});
  EXPECT_FALSE(none->recorded(task_id_of(3, 0, 0)));
  none->slash(worker, task_id_of(3, 0, 0), "no");
  EXPECT_TRUE(none->settle(3, {{task_id_of(3, 0, 0), Verdict::kPassed}}).value().empty());
  EXPECT_TRUE(none->recover(3, {}).value().empty());
  EXPECT_TRUE(none->latest_receipts(worker).empty());
  EXPECT_TRUE(none->fatal().ok());
}

class LedgerSettlementTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(init_crypto().ok());
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("cohort-settlement-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
    fs::create_directories(dir_);
    worker_.fill(7);
  }
  void TearDown() override { fs::remove_all(dir_); }

  LedgerSettlementOptions options() const {
    LedgerSettlementOptions o;
    o.path = dir_ / "ledger.db";
    o.checkpoint = dir_ / "model.ckpt";
    o.reward_per_round = 10 * kMicrosPerToken;
    o.min_stake = 5 * kMicrosPerToken;
    o.registration_grant = 5 * kMicrosPerToken;
    return o;
  }

  // The ledger at o.path, as main opens it, and the settlement over it.
  Result<std::unique_ptr<Settlement>> settle_in(const LedgerSettlementOptions& o) {
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Ledger> ledger, Ledger::open(o.path, identity_));
    return ledger_settlement(o, std::move(ledger), identity_, log_);
  }

  std::unique_ptr<Settlement> open(LedgerSettlementOptions o) {
    Result<std::unique_ptr<Settlement>> settlement = settle_in(o);
    EXPECT_TRUE(settlement.ok()) << settlement.status().to_string();
    return settlement.ok() ? std::move(settlement).value() : no_settlement();
  }

  Submission submission(uint32_t round, uint32_t attempt = 0) const {
    return Submission{round, task_id_of(round, attempt, 0), worker_, {}, {}, 32};
  }

  fs::path dir_;
  Identity identity_ = Identity::generate();
  std::ostringstream log_text_;
  Logger log_{log_text_, LogLevel::kInfo, "test"};
  PublicKey worker_{};
};

TEST_F(LedgerSettlementTest, ANewKeyGetsTheGrantAndTooLittleStakeIsRefused) {
  std::unique_ptr<Settlement> settlement = open(options());
  EXPECT_TRUE(settlement->pays());
  EXPECT_FALSE(settlement->refusal(worker_).has_value()) << "the grant of 5 meets the minimum of 5";
  LedgerSettlementOptions stricter = options();
  stricter.min_stake = 6 * kMicrosPerToken;
  settlement.reset();
  std::unique_ptr<Settlement> strict = open(stricter);
  const std::optional<std::string> refusal = strict->refusal(worker_);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("stake 5 is below the job's minimum of 6 tokens"), std::string::npos) << *refusal;
}

TEST_F(LedgerSettlementTest, ARoundIsPaidOnceOverItsAggregatedWork) {
  std::unique_ptr<Settlement> settlement = open(options());
  ASSERT_FALSE(settlement->refusal(worker_).has_value());
  settlement->submitted(submission(1));
  EXPECT_TRUE(settlement->recorded(task_id_of(1, 0, 0)));
  Result<std::vector<Receipt>> receipts = settlement->settle(1, {{task_id_of(1, 0, 0), Verdict::kUnaudited}});
  ASSERT_TRUE(receipts.ok()) << receipts.status().to_string();
  ASSERT_EQ(receipts->size(), 1u);
  EXPECT_EQ(receipts->front().reward, 10 * kMicrosPerToken);
  Result<std::vector<Receipt>> again = settlement->settle(1, {{task_id_of(1, 0, 0), Verdict::kUnaudited}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *receipts) << "settling twice changes nothing";
  EXPECT_EQ(settlement->next_attempt(1).value(), 1u);
  EXPECT_EQ(settlement->latest_receipts(worker_).size(), 1u);
  EXPECT_TRUE(settlement->fatal().ok());
}

TEST_F(LedgerSettlementTest, AFailedTaskIsSlashedAndItsKeyBanned) {
  std::unique_ptr<Settlement> settlement = open(options());
  ASSERT_FALSE(settlement->refusal(worker_).has_value());
  settlement->submitted(submission(1));
  settlement->closed(task_id_of(1, 0, 0), Verdict::kFailed, "audit failed: segment 2");
  settlement->slash(worker_, task_id_of(1, 0, 0), "segment 2");
  ASSERT_TRUE(settlement->fatal().ok()) << settlement->fatal().to_string();
  const std::optional<std::string> refusal = settlement->refusal(worker_);
  ASSERT_TRUE(refusal.has_value());
  EXPECT_NE(refusal->find("banned"), std::string::npos) << *refusal;
}

// What a second coordinator instance once left behind (issue 21).
TEST_F(LedgerSettlementTest, RecoveryRefusesALedgerThatDisagreesWithTheCheckpoint) {
  {
    std::unique_ptr<Settlement> settlement = open(options());
    ASSERT_FALSE(settlement->refusal(worker_).has_value());
    settlement->submitted(submission(1));
    settlement->closed(task_id_of(1, 0, 0), Verdict::kVoided, "voided by another instance");
  }
  std::unique_ptr<Settlement> restarted = open(options());
  Result<std::vector<Receipt>> recovered = restarted->recover(1, {{task_id_of(1, 0, 0), Verdict::kPassed}});
  ASSERT_FALSE(recovered.ok());
  EXPECT_EQ(recovered.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(recovered.status().message().find("task " + std::to_string(task_id_of(1, 0, 0)) +
                                             " was aggregated, but is voided in the ledger (voided by another instance)"),
            std::string::npos)
      << recovered.status().message();

  Result<std::vector<Receipt>> missing = restarted->recover(1, {{task_id_of(1, 0, 1), Verdict::kPassed}});
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("is not in the ledger"), std::string::npos) << missing.status().message();
}

TEST_F(LedgerSettlementTest, RecoveryRefusesALedgerAheadOfTheCheckpoint) {
  {
    std::unique_ptr<Settlement> settlement = open(options());
    ASSERT_FALSE(settlement->refusal(worker_).has_value());
    settlement->submitted(submission(2));
    ASSERT_TRUE(settlement->settle(2, {{task_id_of(2, 0, 0), Verdict::kPassed}}).ok());
  }
  Result<std::vector<Receipt>> recovered = open(options())->recover(1, {});
  ASSERT_FALSE(recovered.ok());
  EXPECT_NE(recovered.status().message().find("the ledger already closed round 2"), std::string::npos)
      << recovered.status().message();
}

// A restart voids what later rounds left pending (their round runs again)
// and settles the checkpoint's round from the checkpoint.
TEST_F(LedgerSettlementTest, RecoveryVoidsLaterRoundsAndSettlesTheCheckpointsRound) {
  {
    std::unique_ptr<Settlement> settlement = open(options());
    ASSERT_FALSE(settlement->refusal(worker_).has_value());
    settlement->submitted(submission(1));
    settlement->submitted(submission(2));
  }
  std::unique_ptr<Settlement> restarted = open(options());
  Result<std::vector<Receipt>> receipts = restarted->recover(1, {{task_id_of(1, 0, 0), Verdict::kPassed}});
  ASSERT_TRUE(receipts.ok()) << receipts.status().to_string();
  ASSERT_EQ(receipts->size(), 1u);
  EXPECT_EQ(receipts->front().verdict, Verdict::kPassed);
  EXPECT_EQ(restarted->next_attempt(2).value(), 1u) << "round 2 runs again as its next attempt";
  Result<LedgerContents> ledger = read_ledger(dir_ / "ledger.db");
  ASSERT_TRUE(ledger.ok());
  EXPECT_EQ(ledger->submissions.at(task_id_of(2, 0, 0)).verdict, Verdict::kVoided);
  EXPECT_EQ(ledger->submissions.at(task_id_of(2, 0, 0)).reason, interrupted_reason(2, "restarted"));
}

// A fresh job keeps the earlier run's own ledger whole under a new name and
// begins a new one; a ledger configured elsewhere is refused.
TEST_F(LedgerSettlementTest, AFreshJobSetsItsOwnEarlierLedgerAsideAndRefusesAnother) {
  {
    std::unique_ptr<Settlement> settlement = open(options());
    ASSERT_FALSE(settlement->refusal(worker_).has_value());
    settlement->submitted(submission(1));
    ASSERT_TRUE(settlement->settle(1, {{task_id_of(1, 0, 0), Verdict::kUnaudited}}).ok());
  }
  LedgerSettlementOptions elsewhere = options();
  elsewhere.fresh = true;
  elsewhere.own_ledger = false;
  Result<std::unique_ptr<Settlement>> refused = settle_in(elsewhere);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("already closed round 1 of an earlier job"), std::string::npos)
      << refused.status().message();

  LedgerSettlementOptions own = options();
  own.fresh = true;
  std::unique_ptr<Settlement> fresh = open(own);
  EXPECT_EQ(fresh->next_attempt(1).value(), 0u) << "a new ledger";
  int kept = 0;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (entry.path().filename().string().starts_with("ledger-until-")) ++kept;
  }
  EXPECT_EQ(kept, 1);
}

}  // namespace
}  // namespace cohort
