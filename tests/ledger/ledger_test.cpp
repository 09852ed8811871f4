#include "cohort/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <limits>

#include "chain.h"  // private: entry_hash, to forge a chain in the tamper tests

namespace cohort {
namespace {

using ::testing::HasSubstr;

constexpr Amount kToken = kMicrosPerToken;

Identity identity(uint8_t n) {
  EXPECT_TRUE(init_crypto().ok());
  std::array<uint8_t, 32> seed{};
  seed[0] = n;
  return Identity::from_seed(seed);
}

PublicKey worker_key(uint8_t n) {
  PublicKey key{};
  key.fill(n);
  return key;
}

Digest digest_of(std::string_view text) {
  return blake2b_256({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

Submission submission(uint32_t round, uint64_t task_id, uint8_t worker, uint64_t samples) {
  return {round, task_id, worker_key(worker), digest_of("root " + std::to_string(task_id)),
          digest_of("update " + std::to_string(task_id)), samples};
}

// Runs SQL on the ledger file behind the library's back.
void tamper(const std::filesystem::path& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* error = nullptr;
  const int code = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  const std::string message = error ? error : "";
  sqlite3_free(error);
  sqlite3_close(db);
  ASSERT_EQ(code, SQLITE_OK) << message << "\n" << sql;
}

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

// Found by fuzz/ledger_entry_fuzzer: a stored body with a float out of a
// field's range ("round": 1e300) reached nlohmann's get<uint32_t>(), a cast
// that is undefined behaviour. Every integer field is now type-checked.
TEST(LedgerChain, IntegersOfTheWrongTypeOrRangeAreCorruptionNamingTheField) {
  const std::string worker(64, 'a');
  auto incident = [&](const std::string& round) {
    return "{\"detail\":\"d\",\"kind\":\"k\",\"round\":" + round + ",\"task\":7,\"worker\":\"" + worker + "\"}";
  };
  ASSERT_TRUE(ledger::decode("incident", incident("4294967295")).ok());
  for (const std::string round : {"1e300", "-1", "4294967296", "4.0", "\"4\""}) {
    Status status = ledger::decode("incident", incident(round)).status();
    EXPECT_EQ(status.code(), Status::Code::kCorruption) << round;
    EXPECT_THAT(status.message(), HasSubstr("bad incident body: round: ")) << round;
    EXPECT_THAT(status.message(), HasSubstr(" is not a valid integer")) << round;
  }
  const std::string deposit = "{\"amount\":9223372036854775808,\"memo\":\"m\",\"worker\":\"" + worker + "\"}";
  EXPECT_THAT(ledger::decode("deposit", deposit).status().message(),
              HasSubstr("bad deposit body: amount: 9223372036854775808 is not a valid integer"));
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

TEST_F(LedgerTest, MissingFileAndNonLedgerFilesAreReported) {
  EXPECT_EQ(verify_ledger(dir_ / "absent.db").status().code(), Status::Code::kNotFound);
  tamper(dir_ / "other.db", "CREATE TABLE t(x)");
  Result<LedgerReport> other = verify_ledger(dir_ / "other.db");
  EXPECT_EQ(other.status().code(), Status::Code::kCorruption);
  EXPECT_THAT(other.status().message(), HasSubstr("table chain is missing"));
}

// Tampering: every edit of a row is found, and named.

TEST_F(LedgerTest, IntactLedgerVerifies) {
  build_sample_ledger();
  Result<LedgerReport> report = verify_ledger(path());
  ASSERT_TRUE(report.ok()) << report.status().to_string();
  EXPECT_EQ(report->entries, 13u);
}

TEST_F(LedgerTest, EditedBalanceIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE accounts SET balance = balance + 1000000 WHERE key = x'" + to_hex(worker_key(2)) + "'");
  const std::string error = verify_error();
  EXPECT_THAT(error, HasSubstr("table accounts, row " + to_hex(worker_key(2))));
  EXPECT_THAT(error, HasSubstr("balance is 41000000, the chain gives 40000000"));
}

TEST_F(LedgerTest, EditedVerdictIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE submissions SET verdict = 1 WHERE task_id = 12");
  EXPECT_THAT(verify_error(), HasSubstr("table submissions, row task 12: verdict is passed, the chain gives failed"));
}

TEST_F(LedgerTest, EditedRewardIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE rewards SET amount = 70000000 WHERE task_id = 10");
  EXPECT_THAT(verify_error(), HasSubstr("table rewards, row task 10: amount is 70000000, the chain gives 60000000"));
}

TEST_F(LedgerTest, ValueOfTheWrongTypeIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE accounts SET stake = 200000000.5 WHERE key = x'" + to_hex(worker_key(3)) + "'");
  EXPECT_THAT(verify_error(), HasSubstr("stake is not an integer"));
}

TEST_F(LedgerTest, DeletedRowIsFound) {
  build_sample_ledger();
  tamper(path(), "DELETE FROM slashes");
  EXPECT_THAT(verify_error(), HasSubstr("table slashes, row entry 11: missing"));
}

TEST_F(LedgerTest, AddedRowIsFound) {
  build_sample_ledger();
  tamper(path(), "INSERT INTO deposits VALUES(99, x'" + to_hex(worker_key(1)) + "', 5, 'gift')");
  EXPECT_THAT(verify_error(), HasSubstr("table deposits, row entry 99: not in the chain"));
}

TEST_F(LedgerTest, EditedReceiptIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE receipts SET reward = 0 WHERE task_id = 11");
  EXPECT_THAT(verify_error(), HasSubstr("table receipts, row task 11: reward is 0, the chain gives 40000000"));
}

TEST_F(LedgerTest, ForgedReceiptSignatureIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE receipts SET signature = (SELECT signature FROM receipts WHERE task_id = 10) "
                 "WHERE task_id = 11");
  EXPECT_THAT(verify_error(), HasSubstr("table receipts, row task 11: the coordinator's signature does not verify"));
}

TEST_F(LedgerTest, EditedChainBodyIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE chain SET body = replace(body, '400000000', '900000000') WHERE seq = 2");
  EXPECT_THAT(verify_error(), HasSubstr("entry 2: hash does not match its contents"));
}

TEST_F(LedgerTest, DeletedChainEntryIsFound) {
  build_sample_ledger();
  tamper(path(), "DELETE FROM chain WHERE seq = 5");
  EXPECT_THAT(verify_error(), HasSubstr("entry 5: missing"));
}

TEST_F(LedgerTest, TruncatedChainIsFound) {
  build_sample_ledger();
  tamper(path(), "DELETE FROM chain WHERE seq = 13");
  EXPECT_THAT(verify_error(), HasSubstr("head at entry 13: the chain has no such entry"));
}

TEST_F(LedgerTest, DeletedHeadIsFound) {
  build_sample_ledger();
  tamper(path(), "DELETE FROM heads WHERE seq = 6");
  EXPECT_THAT(verify_error(), HasSubstr("head at entry 7: it follows the head at entry 6"));
}

TEST_F(LedgerTest, UnmarkedRoundHeadIsFound) {
  build_sample_ledger();
  tamper(path(), "UPDATE heads SET round = NULL WHERE round = 1");
  EXPECT_THAT(verify_error(), HasSubstr("head at entry 12: the coordinator's signature does not verify"));
}

// Without the coordinator's key, a consistent rewrite (body, every later
// hash and prev, the heads' hashes, the tables) still fails at the heads.
TEST_F(LedgerTest, RecomputedChainAfterAnEditFailsTheHeadSignatures) {
  build_sample_ledger();
  tamper(path(), "UPDATE chain SET body = replace(body, '\"amount\":400000000', '\"amount\":900000000') "
                 "WHERE seq = 2;"
                 "UPDATE accounts SET stake = 900000000 WHERE key = x'" + to_hex(worker_key(1)) + "';"
                 "UPDATE deposits SET amount = 900000000 WHERE seq = 2;");
  // Recompute every hash from entry 2 on, as a forger without the key would.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* select = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT seq, kind, body FROM chain ORDER BY seq", -1, &select, nullptr),
            SQLITE_OK);
  Digest prev{};
  std::vector<std::pair<int64_t, Digest>> rows;
  while (sqlite3_step(select) == SQLITE_ROW) {
    const int64_t seq = sqlite3_column_int64(select, 0);
    const std::string kind(reinterpret_cast<const char*>(sqlite3_column_text(select, 1)));
    const std::string body(reinterpret_cast<const char*>(sqlite3_column_text(select, 2)));
    const Digest hash = ledger::entry_hash(static_cast<uint64_t>(seq), prev, kind, body);
    rows.push_back({seq, hash});
    prev = hash;
  }
  sqlite3_finalize(select);
  sqlite3_close(db);
  std::string sql;
  Digest previous{};
  for (const auto& [seq, hash] : rows) {
    const std::string s = std::to_string(seq);
    sql += "UPDATE chain SET prev = x'" + to_hex(previous) + "', hash = x'" + to_hex(hash) + "' WHERE seq = " + s +
           ";UPDATE heads SET hash = x'" + to_hex(hash) + "' WHERE seq = " + s + ";";
    previous = hash;
  }
  tamper(path(), sql);
  EXPECT_THAT(verify_error(), HasSubstr("head at entry 2: the coordinator's signature does not verify"));
  EXPECT_FALSE(Ledger::open(path(), coordinator_).ok()) << "the coordinator refuses a tampered ledger too";
}

}  // namespace
}  // namespace cohort
