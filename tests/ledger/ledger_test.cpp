// The ledger: amounts, deposits, submissions and verdicts, the split of a
// round's reward, slashing, receipts, and reopening. The chain's bodies and
// verify_ledger against tampering are in ledger_verify_test.cpp; the fixture
// is in ledger_testing.h.
#include "cohort/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "ledger_testing.h"

namespace cohort::ledger_testing {
namespace {

using ::testing::HasSubstr;

// The first column of the first row of `sql`, as text.
std::string query(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_stmt* stmt = nullptr;
  std::string value;
  if (sqlite3_open(path.c_str(), &db) == SQLITE_OK &&
      sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) == SQLITE_OK && sqlite3_step(stmt) == SQLITE_ROW) {
    value = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return value;
}

TEST(Amount, ParsesTokensExactly) {
  EXPECT_EQ(parse_amount("12.5").value(), 12'500'000);
  EXPECT_EQ(parse_amount("0").value(), 0);
  EXPECT_EQ(parse_amount("0.000001").value(), 1);
  EXPECT_EQ(parse_amount("400").value(), 400'000'000);
  EXPECT_EQ(parse_amount("007.250").value(), 7'250'000);
  EXPECT_EQ(parse_amount("9223372036854.775807").value(), std::numeric_limits<Amount>::max());
}

TEST(Amount, RejectsMalformedNegativeTooPreciseAndOverflowing) {
  for (const char* bad : {"", ".", "1.", ".5", "-1", "-0.5", "+1", "1e3", " 1", "1 ", "1.2.3", "0x10", "1,5",
                          "1.0000001", "9223372036854.775808", "99999999999999999999"}) {
    Result<Amount> amount = parse_amount(bad);
    EXPECT_FALSE(amount.ok()) << "'" << bad << "' parsed as " << (amount.ok() ? *amount : 0);
    EXPECT_EQ(amount.status().code(), Status::Code::kInvalidArgument) << bad;
  }
  EXPECT_THAT(parse_amount("1.0000001").status().message(), HasSubstr("at most 6 decimals"));
  EXPECT_THAT(parse_amount("-3").status().message(), HasSubstr("negative"));
  EXPECT_THAT(parse_amount("9223372036855").status().message(), HasSubstr("too large"));
}

TEST(Amount, FormatsAndRoundTrips) {
  EXPECT_EQ(format_amount(12'500'000), "12.5");
  EXPECT_EQ(format_amount(3), "0.000003");
  EXPECT_EQ(format_amount(400'000'000), "400");
  EXPECT_EQ(format_amount(-2'000'001), "-2.000001");
  EXPECT_EQ(format_amount(std::numeric_limits<Amount>::min()), "-9223372036854.775808");
  for (Amount a : {Amount{0}, Amount{1}, Amount{999'999}, Amount{1'000'000}, Amount{123'456'789},
                   std::numeric_limits<Amount>::max()}) {
    EXPECT_EQ(parse_amount(format_amount(a)).value(), a);
  }
}

TEST(Amount, VerdictNamesRoundTrip) {
  for (Verdict v : {Verdict::kPending, Verdict::kPassed, Verdict::kUnaudited, Verdict::kFailed, Verdict::kRejected,
                    Verdict::kVoided}) {
    EXPECT_EQ(parse_verdict(verdict_name(v)).value(), v);
  }
  EXPECT_FALSE(parse_verdict("accepted").ok());
}

TEST_F(LedgerTest, NewLedgerHasASignedGenesisAndVerifies) {
  ASSERT_TRUE(open());
  Result<LedgerReport> report = verify_ledger(path(), coordinator_.public_key());
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->entries, 1u);
  EXPECT_EQ(report->coordinator, coordinator_.public_key());
  EXPECT_EQ(report->accounts, 0u);
  EXPECT_EQ(query(path(), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query(path(), "SELECT kind FROM chain WHERE seq = 1"), "genesis");
  EXPECT_EQ(query(path(), "SELECT body FROM chain WHERE seq = 1"),
            "{\"coordinator\":\"" + to_hex(coordinator_.public_key()) + "\"}");
}

TEST_F(LedgerTest, DepositCreatesTheAccountAndAddsStake) {
  auto ledger = open();
  EXPECT_EQ(ledger->account(worker_key(1)).status().code(), Status::Code::kNotFound);
  ASSERT_TRUE(ledger->deposit(worker_key(1), 400 * kToken, "first").ok());
  ASSERT_TRUE(ledger->deposit(worker_key(1), 12'500'000, "second").ok());
  Account account = ledger->account(worker_key(1)).value();
  EXPECT_EQ(account.stake, 412'500'000);
  EXPECT_EQ(account.balance, 0);
  EXPECT_EQ(account.reputation, 0);
  EXPECT_FALSE(account.banned);
  EXPECT_EQ(ledger->head_seq(), 3u);

  EXPECT_EQ(ledger->deposit(worker_key(1), 0, "").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ledger->deposit(worker_key(1), -5, "").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ledger->deposit(worker_key(1), std::numeric_limits<Amount>::max(), "").code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(ledger->head_seq(), 3u) << "a refused call appends nothing";
  EXPECT_EQ(ledger->account(worker_key(1))->stake, 412'500'000);
}

TEST_F(LedgerTest, EnsureAccountAppendsOnlyWhenItCreates) {
  auto ledger = open();
  ASSERT_TRUE(ledger->ensure_account(worker_key(2)).ok());
  const uint64_t seq = ledger->head_seq();
  ASSERT_TRUE(ledger->ensure_account(worker_key(2)).ok());
  EXPECT_EQ(ledger->head_seq(), seq);
  EXPECT_EQ(ledger->account(worker_key(2))->stake, 0);
  EXPECT_EQ(ledger->accounts().size(), 1u);
}

TEST_F(LedgerTest, SubmissionsAreRecordedOncePerTask) {
  auto ledger = open();
  ASSERT_TRUE(ledger->record_submission(submission(1, 7, 1, 100)).ok());
  EXPECT_TRUE(ledger->account(worker_key(1)).ok()) << "a submission creates its worker's account";
  const uint64_t seq = ledger->head_seq();
  ASSERT_TRUE(ledger->record_submission(submission(1, 7, 1, 100)).ok());
  EXPECT_EQ(ledger->head_seq(), seq) << "recording the same submission again is a no-op";
  Submission other = submission(1, 7, 1, 100);
  other.update_hash = digest_of("another update");
  Status duplicate = ledger->record_submission(other);
  EXPECT_EQ(duplicate.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(duplicate.message(), HasSubstr("task 7 already has a submission"));
  EXPECT_EQ(ledger->head_seq(), seq);
}

TEST_F(LedgerTest, VerdictsMoveOnlyFromPending) {
  auto ledger = open();
  ASSERT_TRUE(ledger->record_submission(submission(1, 7, 1, 100)).ok());
  EXPECT_EQ(ledger->set_verdict(7, Verdict::kPending, "").code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ledger->set_verdict(8, Verdict::kPassed, "").code(), Status::Code::kFailedPrecondition);
  ASSERT_TRUE(ledger->set_verdict(7, Verdict::kPassed, "matched").ok());
  Status again = ledger->set_verdict(7, Verdict::kFailed, "changed my mind");
  EXPECT_EQ(again.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr("already has verdict passed"));
}

TEST_F(LedgerTest, RewardIsSplitBySamplesInIntegersAndTheRemainderIsKept) {
  auto ledger = open();
  // Paid: 300 + 200 samples of 500. Not paid: failed, rejected, voided.
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, 300)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 2, 2, 200)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 3, 3, 1000)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 4, 4, 1000)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 5, 5, 1000)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(2, 6, 1, 1000)).ok());  // another round
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kPassed, "").ok());
  ASSERT_TRUE(ledger->set_verdict(2, Verdict::kUnaudited, "").ok());
  ASSERT_TRUE(ledger->set_verdict(3, Verdict::kFailed, "diverged").ok());
  ASSERT_TRUE(ledger->set_verdict(4, Verdict::kRejected, "non-finite update").ok());
  ASSERT_TRUE(ledger->set_verdict(5, Verdict::kVoided, "verifier timed out").ok());

  // 1'000'001 * 300 / 500 = 600'000.6 -> 600'000; * 200 / 500 = 400'000.4 -> 400'000; 1 left.
  Result<std::vector<Receipt>> receipts = ledger->close_round(1, 1'000'001);
  ASSERT_TRUE(receipts.ok()) << receipts.status().to_string();
  ASSERT_EQ(receipts->size(), 5u);
  const std::vector<Amount> rewards = {600'000, 400'000, 0, 0, 0};
  const std::vector<Verdict> verdicts = {Verdict::kPassed, Verdict::kUnaudited, Verdict::kFailed,
                                         Verdict::kRejected, Verdict::kVoided};
  for (size_t i = 0; i < 5; ++i) {
    const Receipt& r = (*receipts)[i];
    EXPECT_EQ(r.task_id, i + 1);
    EXPECT_EQ(r.round, 1u);
    EXPECT_EQ(r.reward, rewards[i]) << "task " << r.task_id;
    EXPECT_EQ(r.verdict, verdicts[i]);
    EXPECT_EQ(r.slashed, 0);
    EXPECT_EQ(r.chain_seq, ledger->head_seq());
    EXPECT_EQ(r.chain_hash, ledger->head());
    EXPECT_EQ(r.coordinator, coordinator_.public_key());
    EXPECT_TRUE(verify_receipt(r)) << "task " << r.task_id;
  }
  EXPECT_EQ((*receipts)[3].reason, "non-finite update");
  EXPECT_EQ(ledger->account(worker_key(1))->balance, 600'000);
  EXPECT_EQ(ledger->account(worker_key(1))->reputation, 1);
  EXPECT_EQ(ledger->account(worker_key(2))->balance, 400'000);
  EXPECT_EQ(ledger->account(worker_key(3))->balance, 0);
  EXPECT_EQ(ledger->account(worker_key(3))->reputation, 0);
  EXPECT_EQ(ledger->account(worker_key(3))->stake, 0) << "a failed verdict alone slashes nothing";
  EXPECT_EQ(ledger->receipts(worker_key(1)).size(), 1u) << "round 2 is not settled";
  ledger.reset();

  Result<LedgerContents> contents = read_ledger(path());
  ASSERT_TRUE(contents.ok()) << contents.status().to_string();
  EXPECT_EQ(contents->rounds.at(1).paid, 1'000'000);
  EXPECT_EQ(contents->rounds.at(1).unassigned, 1);
  EXPECT_EQ(contents->rewards.size(), 2u);
  ASSERT_TRUE(verify_ledger(path()).ok());
}

TEST_F(LedgerTest, SplitIsExactAtTheLimitsOfInt64) {
  auto ledger = open();
  const uint64_t x = uint64_t{1} << 63;
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, x)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 2, 2, x - 1)).ok());
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kPassed, "").ok());
  ASSERT_TRUE(ledger->set_verdict(2, Verdict::kPassed, "").ok());
  // B = x - 1, T = 2x - 1: floor((x-1)x / T) = floor((x-1)^2 / T) = x/2 - 1, one micro-token left.
  Result<std::vector<Receipt>> receipts = ledger->close_round(1, std::numeric_limits<Amount>::max());
  ASSERT_TRUE(receipts.ok()) << receipts.status().to_string();
  EXPECT_EQ(receipts->at(0).reward, static_cast<Amount>(x / 2 - 1));
  EXPECT_EQ(receipts->at(1).reward, static_cast<Amount>(x / 2 - 1));
  ledger.reset();
  EXPECT_EQ(read_ledger(path())->rounds.at(1).unassigned, 1);
  EXPECT_TRUE(verify_ledger(path()).ok());
}

TEST_F(LedgerTest, ARoundWithNothingPaidKeepsItsWholeBudget) {
  auto ledger = open();
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, 10)).ok());
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kRejected, "bad").ok());
  Result<std::vector<Receipt>> receipts = ledger->close_round(1, 50 * kToken);
  ASSERT_TRUE(receipts.ok());
  EXPECT_EQ(receipts->at(0).reward, 0);
  ASSERT_TRUE(ledger->close_round(2, 50 * kToken).ok()) << "a round without submissions closes too";
  ledger.reset();
  EXPECT_EQ(read_ledger(path())->rounds.at(1).unassigned, 50 * kToken);
}

TEST_F(LedgerTest, ClosingAClosedRoundPaysNothingAgain) {
  auto ledger = open();
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, 10)).ok());
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kUnaudited, "").ok());
  Result<std::vector<Receipt>> first = ledger->close_round(1, 7 * kToken);
  ASSERT_TRUE(first.ok());
  const uint64_t seq = ledger->head_seq();
  Result<std::vector<Receipt>> second = ledger->close_round(1, 9 * kToken);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, *first);
  EXPECT_EQ(ledger->head_seq(), seq);
  EXPECT_EQ(ledger->account(worker_key(1))->balance, 7 * kToken);
  EXPECT_EQ(ledger->account(worker_key(1))->reputation, 1);

  // And after reopening, from the stored receipts.
  ledger.reset();
  ledger = open();
  Result<std::vector<Receipt>> third = ledger->close_round(1, 7 * kToken);
  ASSERT_TRUE(third.ok());
  EXPECT_EQ(*third, *first);
  EXPECT_EQ(ledger->account(worker_key(1))->balance, 7 * kToken);
  EXPECT_EQ(ledger->head_seq(), seq);
  Status late = ledger->record_submission(submission(1, 2, 2, 10));
  EXPECT_EQ(late.code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(late.message(), HasSubstr("round 1 is closed"));
}

TEST_F(LedgerTest, ClosingWithAPendingSubmissionIsRefused) {
  auto ledger = open();
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, 10)).ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 2, 2, 10)).ok());
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kPassed, "").ok());
  const uint64_t seq = ledger->head_seq();
  Result<std::vector<Receipt>> closed = ledger->close_round(1, 10 * kToken);
  EXPECT_EQ(closed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(closed.status().message(), HasSubstr("task 2 is still pending"));
  EXPECT_EQ(ledger->head_seq(), seq);
  EXPECT_EQ(ledger->account(worker_key(1))->balance, 0) << "nothing is paid before settlement";
  EXPECT_EQ(ledger->close_round(1, -1).status().code(), Status::Code::kInvalidArgument);
}

// What a restarted coordinator reads to finish or void an interrupted round.
TEST_F(LedgerTest, ListsARoundsSubmissionsAndTheRoundsStillOpen) {
  build_sample_ledger();
  auto ledger = open();
  ASSERT_TRUE(ledger->record_submission(submission(4, 40, 2, 10)).ok());
  EXPECT_EQ(ledger->open_rounds(), (std::vector<uint32_t>{2, 4}));
  std::vector<SubmissionRecord> round1 = ledger->submissions(1);
  ASSERT_EQ(round1.size(), 3u);
  EXPECT_EQ(round1[0].submission, submission(1, 10, 1, 300));
  EXPECT_EQ(round1[2].verdict, Verdict::kFailed);
  ASSERT_EQ(ledger->submissions(2).size(), 1u);
  EXPECT_EQ(ledger->submissions(2)[0].verdict, Verdict::kPending);
  EXPECT_TRUE(ledger->submissions(3).empty());
  ASSERT_TRUE(ledger->set_verdict(20, Verdict::kVoided, "interrupted").ok());
  ASSERT_TRUE(ledger->close_round(2, 10 * kToken).ok());
  EXPECT_EQ(ledger->open_rounds(), (std::vector<uint32_t>{4}));
}

TEST_F(LedgerTest, SlashTakesAFractionOfTheStakeAndBans) {
  auto ledger = open();
  ASSERT_TRUE(ledger->deposit(worker_key(1), 401 * kToken + 1, "").ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, 10)).ok());
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kFailed, "segment 3 diverged").ok());
  EXPECT_EQ(ledger->slash(worker_key(1), 1, 1.5, true, "").status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(ledger->slash(worker_key(1), 1, std::nan(""), true, "").status().code(),
            Status::Code::kInvalidArgument);
  Result<Amount> slashed = ledger->slash(worker_key(1), 1, 0.5, true, "failed audit");
  ASSERT_TRUE(slashed.ok()) << slashed.status().to_string();
  EXPECT_EQ(*slashed, 200'500'000);  // floor(401'000'001 / 2)
  Account account = ledger->account(worker_key(1)).value();
  EXPECT_EQ(account.stake, 200'500'001);
  EXPECT_TRUE(account.banned);
  EXPECT_EQ(account.ban_reason, "failed audit");

  Result<std::vector<Receipt>> receipts = ledger->close_round(1, 10 * kToken);
  ASSERT_TRUE(receipts.ok());
  EXPECT_EQ(receipts->at(0).reward, 0);
  EXPECT_EQ(receipts->at(0).slashed, 200'500'000);
  EXPECT_TRUE(verify_receipt(receipts->at(0)));
  EXPECT_EQ(ledger->slash(worker_key(9), 1, 1.0, true, "").status().code(), Status::Code::kNotFound);
}

TEST_F(LedgerTest, HonestWorkIsNeverSlashed) {
  auto ledger = open();
  ASSERT_TRUE(ledger->deposit(worker_key(1), 100 * kToken, "").ok());
  ASSERT_TRUE(ledger->deposit(worker_key(2), 100 * kToken, "").ok());
  ASSERT_TRUE(ledger->record_submission(submission(1, 1, 1, 10)).ok());
  Result<Amount> pending = ledger->slash(worker_key(1), 1, 1.0, true, "");
  EXPECT_EQ(pending.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(pending.status().message(), HasSubstr("its verdict is pending, not failed"));
  ASSERT_TRUE(ledger->set_verdict(1, Verdict::kPassed, "").ok());
  Result<Amount> passed = ledger->slash(worker_key(1), 1, 1.0, true, "");
  EXPECT_EQ(passed.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(passed.status().message(), HasSubstr("its verdict is passed, not failed"));
  for (Verdict v : {Verdict::kUnaudited, Verdict::kRejected, Verdict::kVoided}) {
    const uint64_t task = 10 + static_cast<uint64_t>(v);
    ASSERT_TRUE(ledger->record_submission(submission(1, task, 1, 10)).ok());
    ASSERT_TRUE(ledger->set_verdict(task, v, "").ok());
    EXPECT_EQ(ledger->slash(worker_key(1), task, 1.0, true, "").status().code(),
              Status::Code::kFailedPrecondition)
        << verdict_name(v);
  }
  // Someone else's failed task, and a task nobody submitted, slash nobody.
  ASSERT_TRUE(ledger->record_submission(submission(1, 2, 2, 10)).ok());
  ASSERT_TRUE(ledger->set_verdict(2, Verdict::kFailed, "").ok());
  EXPECT_EQ(ledger->slash(worker_key(1), 2, 1.0, true, "").status().code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(ledger->slash(worker_key(1), 99, 1.0, true, "").status().code(), Status::Code::kFailedPrecondition);
  Account account = ledger->account(worker_key(1)).value();
  EXPECT_EQ(account.stake, 100 * kToken);
  EXPECT_FALSE(account.banned);
}

TEST_F(LedgerTest, AProvenEquivocationCanBeSlashedThroughItsIncident) {
  auto ledger = open();
  ASSERT_TRUE(ledger->deposit(worker_key(1), 100 * kToken, "").ok());
  ASSERT_TRUE(ledger->record_incident(worker_key(1), 3, 30, "equivocation", "two updates signed for task 30").ok());
  Result<Amount> slashed = ledger->slash(worker_key(1), 30, 1.0, true, "equivocation on task 30");
  ASSERT_TRUE(slashed.ok()) << slashed.status().to_string();
  EXPECT_EQ(*slashed, 100 * kToken);
  EXPECT_EQ(ledger->account(worker_key(1))->stake, 0);
  EXPECT_TRUE(ledger->account(worker_key(1))->banned);
  EXPECT_EQ(ledger->record_incident(worker_key(1), 3, 30, "", "").code(), Status::Code::kInvalidArgument);
}

TEST_F(LedgerTest, ATamperedReceiptFailsVerification) {
  build_sample_ledger();
  auto ledger = open();
  std::vector<Receipt> receipts = ledger->receipts(worker_key(1));
  ASSERT_EQ(receipts.size(), 1u);
  Receipt receipt = receipts[0];
  EXPECT_TRUE(verify_receipt(receipt));
  EXPECT_EQ(receipt.reward, 60 * kToken);
  receipt.reward += 1;
  EXPECT_FALSE(verify_receipt(receipt));
  receipt = receipts[0];
  receipt.verdict = Verdict::kFailed;
  EXPECT_FALSE(verify_receipt(receipt));
  receipt = receipts[0];
  receipt.coordinator = identity(2).public_key();
  EXPECT_FALSE(verify_receipt(receipt));
}

TEST_F(LedgerTest, ReopeningKeepsEverythingAndAnotherKeyIsRefused) {
  build_sample_ledger();
  auto ledger = open();
  ASSERT_TRUE(ledger);
  EXPECT_EQ(ledger->account(worker_key(1))->balance, 60 * kToken);
  EXPECT_EQ(ledger->account(worker_key(2))->balance, 40 * kToken);
  EXPECT_EQ(ledger->account(worker_key(3))->stake, 200 * kToken);
  EXPECT_TRUE(ledger->account(worker_key(3))->banned);
  EXPECT_EQ(ledger->receipts(worker_key(3)).at(0).slashed, 200 * kToken);
  const uint64_t seq = ledger->head_seq();
  const Digest head = ledger->head();
  ledger.reset();

  Identity other = identity(2);
  Result<std::unique_ptr<Ledger>> refused = Ledger::open(path(), other);
  EXPECT_EQ(refused.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr(to_hex(coordinator_.public_key())));
  EXPECT_THAT(refused.status().message(), HasSubstr(to_hex(other.public_key())));

  Result<LedgerReport> report = verify_ledger(path(), coordinator_.public_key());
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->entries, seq);
  EXPECT_EQ(report->head, head);
  EXPECT_EQ(report->rounds_closed, 1u);
  EXPECT_EQ(report->receipts, 3u);
  EXPECT_EQ(report->accounts, 3u);
  Result<LedgerReport> wrong = verify_ledger(path(), other.public_key());
  EXPECT_EQ(wrong.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(wrong.status().message(), HasSubstr("created by coordinator"));
}

TEST_F(LedgerTest, TextThatIsNotUtf8IsStoredSoThatTheLedgerStillVerifies) {
  auto ledger = open();
  ASSERT_TRUE(ledger->deposit(worker_key(1), kToken, std::string("memo \xff\xfe end", 11)).ok());
  ASSERT_TRUE(ledger->record_incident(worker_key(2), 1, 1, "bad-signature", std::string("nul \0 byte", 10)).ok());
  ledger.reset();
  ASSERT_TRUE(verify_ledger(path()).ok()) << verify_ledger(path()).status().to_string();
  ASSERT_TRUE(open());
}

}  // namespace
}  // namespace cohort::ledger_testing
