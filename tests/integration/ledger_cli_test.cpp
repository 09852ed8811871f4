// `cohort ledger`: deposit, show, verify, and tampering found, through the
// built binary.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace cohort::testing {
namespace {

std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::string text;
  std::getline(in, text);
  return text;
}

class LedgerCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(run({"keygen", "--out", key("coordinator.key")}).code, 0);
    ASSERT_EQ(run({"keygen", "--out", key("worker.key")}).code, 0);
    worker_hex_ = read_text(dir_.path() / "worker.pub");
    ASSERT_EQ(worker_hex_.size(), 64u);
  }

  CommandRun run(const std::vector<std::string>& args) { return run_cohort(args, dir_); }
  std::string key(const std::string& name) const { return (dir_.path() / name).string(); }
  std::string db() const { return (dir_.path() / "ledger.db").string(); }

  CommandRun deposit(const std::string& amount, const std::string& secret = "coordinator.key") {
    return run({"ledger", "deposit", db(), "--key", key(secret), "--worker", key("worker.pub"), "--amount", amount,
                "--memo", "volunteer stake"});
  }

  ScratchDir dir_;
  std::string worker_hex_;
};

TEST_F(LedgerCli, DepositShowAndVerify) {
  CommandRun first = deposit("12.5");
  ASSERT_EQ(first.code, 0) << first.err;
  EXPECT_NE(first.out.find("stake 12.5"), std::string::npos) << first.out;
  ASSERT_EQ(deposit("400").code, 0);

  CommandRun text = run({"ledger", "show", db()});
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_NE(text.out.find("worker " + worker_hex_), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("stake 412.5"), std::string::npos) << text.out;

  CommandRun json = run({"ledger", "show", db(), "--worker", worker_hex_, "--json"});
  ASSERT_EQ(json.code, 0) << json.err;
  auto parsed = nlohmann::json::parse(json.out);
  EXPECT_EQ(parsed["entries"], 3);
  ASSERT_EQ(parsed["workers"].size(), 1u);
  const auto& worker = parsed["workers"][0];
  EXPECT_EQ(worker["key"], worker_hex_);
  EXPECT_EQ(worker["stake"], 412'500'000);
  EXPECT_EQ(worker["balance"], 0);
  ASSERT_EQ(worker["deposits"].size(), 2u);
  EXPECT_EQ(worker["deposits"][0]["amount"], 12'500'000);
  EXPECT_EQ(worker["deposits"][0]["memo"], "volunteer stake");

  CommandRun verify = run({"ledger", "verify", db(), "--coordinator-key", key("coordinator.pub")});
  EXPECT_EQ(verify.code, 0) << verify.err;
  EXPECT_NE(verify.out.find("is intact: 3 entries"), std::string::npos) << verify.out;
  EXPECT_EQ(std::count(verify.out.begin(), verify.out.end(), '\n'), 1);

  CommandRun other = run({"ledger", "verify", db(), "--coordinator-key", key("worker.pub")});
  EXPECT_EQ(other.code, 1);
  EXPECT_NE(other.err.find("created by coordinator"), std::string::npos) << other.err;
}

TEST_F(LedgerCli, BadInputIsAUsageError) {
  CommandRun precise = deposit("1.0000001");
  EXPECT_EQ(precise.code, 2);
  EXPECT_NE(precise.err.find("at most 6 decimals"), std::string::npos) << precise.err;
  EXPECT_EQ(deposit("-3").code, 2);
  EXPECT_EQ(deposit("0").code, 2);
  EXPECT_FALSE(std::filesystem::exists(db())) << "a refused deposit creates no ledger";

  ASSERT_EQ(deposit("1").code, 0);
  CommandRun wrong_key = deposit("1", "worker.key");
  EXPECT_EQ(wrong_key.code, 2);
  EXPECT_NE(wrong_key.err.find("was created by coordinator"), std::string::npos) << wrong_key.err;

  EXPECT_EQ(run({"ledger"}).code, 2);
  EXPECT_EQ(run({"ledger", "audit", db()}).code, 2);
  EXPECT_EQ(run({"ledger", "verify"}).code, 2);
  EXPECT_EQ(run({"ledger", "verify", key("absent.db")}).code, 2);
  EXPECT_EQ(run({"ledger", "show", db(), "--worker", std::string(64, 'a')}).code, 2);
}

// A file that is not a ledger is named as such; SQLite's statements are not
// shown to the user.
TEST_F(LedgerCli, AFileThatIsNotALedgerIsSaidSoWithoutSql) {
  const std::string garbage = key("garbage.db");
  std::ofstream(garbage) << std::string(4096, 'x');
  for (const std::string subcommand : {"verify", "show"}) {
    CommandRun run = this->run({"ledger", subcommand, garbage});
    EXPECT_NE(run.code, 0) << run.err;
    EXPECT_NE(run.err.find(garbage + ": not a ledger"), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find("SELECT"), std::string::npos) << run.err;
  }
}

TEST_F(LedgerCli, TamperingMakesVerifyFail) {
  ASSERT_EQ(deposit("400").code, 0);
  ASSERT_EQ(run({"ledger", "verify", db()}).code, 0);

  sqlite3* handle = nullptr;
  ASSERT_EQ(sqlite3_open(db().c_str(), &handle), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(handle, "UPDATE accounts SET stake = stake + 1000000", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(handle);

  CommandRun verify = run({"ledger", "verify", db()});
  EXPECT_EQ(verify.code, 1);
  EXPECT_NE(verify.err.find("table accounts, row " + worker_hex_ + ": stake is 401000000, the chain gives 400000000"),
            std::string::npos)
      << verify.err;
  EXPECT_EQ(deposit("1").code, 1) << "the coordinator's key does not write to a tampered ledger";
}

}  // namespace
}  // namespace cohort::testing
