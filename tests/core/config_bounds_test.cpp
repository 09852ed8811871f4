// The config's edges (issue 21): durations bounded to a year, amounts
// parsed exactly like the ledger's, endpoints checked like the worker's,
// and the example file writing out every key with its default.
#include <gtest/gtest.h>
#include <toml++/toml.h>

#include <random>
#include <set>
#include <string>

#include "cohort/config.h"
#include "cohort/duration.h"
#include "cohort/endpoint.h"
#include "cohort/receipt.h"

namespace cohort {
namespace {

std::string parse_error(const std::string& text) {
  Result<JobConfig> config = parse_job_config(text, "job.toml");
  if (config.ok()) return "<parsed without error>";
  EXPECT_EQ(config.status().code(), Status::Code::kInvalidArgument);
  return config.status().message();
}

// 1e10 seconds passed the "> 0" check and overflowed every deadline: an
// honest worker lost its stake for a reveal it sent at once, a job
// "succeeded" with an untrained model.
TEST(ConfigBoundsTest, EveryDurationIsBoundedToAYear) {
  const std::string bound = "must be in (0, 31622400] seconds (at most a year), got ";
  for (const std::string key : {"round.deadline_seconds", "round.registration_timeout_seconds",
                                "proof.reveal_seconds"}) {
    const std::string table = key.substr(0, key.find('.'));
    const std::string name = key.substr(key.find('.') + 1);
    for (const std::string value : {"1e10", "0", "-5", "31622401"}) {
      SCOPED_TRACE(key + " = " + value);
      EXPECT_EQ(parse_error("[" + table + "]\n" + name + " = " + value + "\n"),
                "job.toml: " + key + ": " + bound + (value == "31622401" ? "31622401" : value == "1e10" ? "1e+10" : value));
    }
    Result<JobConfig> year = parse_job_config("[" + table + "]\n" + name + " = 31622400\n");
    EXPECT_TRUE(year.ok()) << year.status().to_string();
  }
}

// Amounts are micro-tokens read exactly: at most 6 decimals, no rounding,
// nothing that does not fit the ledger's int64.
TEST(ConfigBoundsTest, AmountsAreParsedExactlyLikeTheLedgers) {
  Result<JobConfig> exact = parse_job_config(
      "[ledger]\nreward_per_round = 1.999999\nmin_stake = \"1000.000001\"\nregistration_grant = 7\n");
  ASSERT_TRUE(exact.ok()) << exact.status().to_string();
  EXPECT_EQ(exact->ledger.reward_per_round, 1'999'999);
  EXPECT_EQ(exact->ledger.min_stake, 1'000'000'001);
  EXPECT_EQ(exact->ledger.registration_grant, 7 * kMicrosPerToken);

  EXPECT_EQ(parse_error("[ledger]\nreward_per_round = 1.9999999\n"),
            "job.toml: ledger.reward_per_round: amount '1.9999999': at most 6 decimals (1 micro-token)");
  EXPECT_EQ(parse_error("[ledger]\nmin_stake = 1e30\nregistration_grant = 1e30\n"),
            "job.toml: ledger.min_stake: amount 1e+30 is too large (at most 9223372036854.775807 tokens)");
  EXPECT_EQ(parse_error("[ledger]\nregistration_grant = -1\n"),
            "job.toml: ledger.registration_grant: amount '-1': must not be negative");
  EXPECT_EQ(parse_error("[ledger]\nreward_per_round = \"ten\"\n"),
            "job.toml: ledger.reward_per_round: amount 'ten': expected tokens as digits, e.g. 12 or 12.5");
  EXPECT_EQ(parse_error("[ledger]\nreward_per_round = nan\n"),
            "job.toml: ledger.reward_per_round: amount nan is not a number of tokens");
  EXPECT_EQ(parse_error("[ledger]\nreward_per_round = true\n"),
            "job.toml: ledger.reward_per_round: expected amount (integer, float or string of tokens), got boolean");
}

// Property: any amount of tokens written with up to 6 decimals, as a TOML
// string, a float or (when whole) an integer, reads back as exactly that
// many micro-tokens.
TEST(ConfigBoundsTest, AmountsRoundTripExactly) {
  std::mt19937_64 rng(21);
  for (int i = 0; i < 2000; ++i) {
    const Amount micros = static_cast<Amount>(rng() % 1'000'000'000'000'000ULL);  // up to 1e9 tokens
    const std::string text = format_amount(micros);
    Result<JobConfig> as_string = parse_job_config("[ledger]\nreward_per_round = \"" + text + "\"\nmin_stake = 0\n");
    ASSERT_TRUE(as_string.ok()) << text << ": " << as_string.status().to_string();
    ASSERT_EQ(as_string->ledger.reward_per_round, micros) << text;
    Result<JobConfig> as_number = parse_job_config("[ledger]\nreward_per_round = " + text + "\nmin_stake = 0\n");
    ASSERT_TRUE(as_number.ok()) << text << ": " << as_number.status().to_string();
    // A float carries about 15-17 significant digits: amounts of up to a
    // billion tokens with 6 decimals still read back exactly.
    ASSERT_EQ(as_number->ledger.reward_per_round, micros) << text;
  }
}

TEST(ConfigBoundsTest, TheListenEndpointIsCheckedLikeAWorkersAddress) {
  EXPECT_EQ(parse_error("[network]\nlisten = \"tcp://127.0.0.1:99999\"\n"),
            "job.toml: network.listen: 'tcp://127.0.0.1:99999' has port '99999', not one in 1-65535 (or * for any "
            "free port): expected tcp://HOST:PORT, ipc://PATH or inproc://NAME");
  EXPECT_EQ(parse_error("[network]\nlisten = \"localhost:5555\"\n"),
            "job.toml: network.listen: 'localhost:5555' has no transport (tcp://, ipc:// or inproc://): expected "
            "tcp://HOST:PORT, ipc://PATH or inproc://NAME");
  EXPECT_TRUE(parse_job_config("[network]\nlisten = \"tcp://*:5555\"\n").ok());
  EXPECT_TRUE(parse_job_config("[network]\nlisten = \"tcp://127.0.0.1:*\"\n").ok());
}

// Every key the parser knows, table by table: the list an unknown key's
// error gives ("valid keys in [t]: a, b, c").
std::map<std::string, std::set<std::string>> known_keys() {
  std::map<std::string, std::set<std::string>> keys;
  for (const std::string table : {"job", "model", "data", "training", "aggregation", "round", "network", "attack",
                                  "proof", "ledger"}) {
    const std::string message = parse_error("[" + table + "]\nno_such_key = 1\n");
    const std::string marker = "valid keys in [" + table + "]: ";
    const size_t at = message.find(marker);
    EXPECT_NE(at, std::string::npos) << message;
    if (at == std::string::npos) continue;
    std::string list = message.substr(at + marker.size()) + ",";
    for (size_t start = 0, comma; (comma = list.find(',', start)) != std::string::npos; start = comma + 2) {
      keys[table].insert(list.substr(start, comma - start));
    }
  }
  return keys;
}

// docs/CONFIG.md says the example writes out every key with its default:
// it must hold every key the parser knows, and parse to the defaults.
TEST(ConfigBoundsTest, TheExampleJobWritesOutEveryKeyWithItsDefault) {
  const std::filesystem::path example = std::filesystem::path(COHORT_SOURCE_DIR) / "examples" / "fashion-mnist.toml";
  Result<JobConfig> parsed = load_job_config(example);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_TRUE(*parsed == JobConfig{}) << "the example's values differ from config.h's defaults";
  const toml::table document = toml::parse_file(example.string());
  for (const auto& [table, keys] : known_keys()) {
    const toml::table* written = document[table].as_table();
    ASSERT_NE(written, nullptr) << "[" << table << "] is missing";
    for (const std::string& key : keys) {
      EXPECT_TRUE(written->contains(key)) << table << "." << key << " is not written out";
    }
  }
}

}  // namespace
}  // namespace cohort
