// The ledger's chain and verify_ledger: bodies are type-checked, and every
// edit of a row behind the library's back is found, and named (the fixture
// is in ledger_testing.h).
#include "cohort/ledger.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "chain.h"  // private: entry_hash, to forge a chain in the tamper tests
#include "ledger_testing.h"

namespace cohort::ledger_testing {
namespace {

using ::testing::HasSubstr;

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
}  // namespace cohort::ledger_testing
