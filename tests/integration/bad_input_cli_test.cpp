// What a hostile new user found by feeding every entry point bad input
// (issue 21): each case once aborted a process with a stack trace, hung,
// accepted nonsense in silence or gave wrong advice. Each must now be one
// clear line and the documented exit code (docs/OPERATIONS.md, "Exit codes").
#include <gtest/gtest.h>

#include <fstream>

#include "cohort/crypto.h"
#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::seconds;

// Nothing a user can type may end a process with a C++ or LibTorch abort.
void expect_no_abort(const CommandRun& run) {
  EXPECT_EQ(run.err.find("terminate called"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("Exception raised from"), std::string::npos) << run.err;
  EXPECT_NE(run.code, 134) << run.err;
}

// ---------------------------------------------------------------- worker

TEST(BadInput, AMalformedCoordinatorAddressIsOneLineAndExitTwo) {
  ScratchDir dir;
  for (const std::string address : {"127.0.0.1:57003", "tcp://localhost", "http://x", "tcp://127.0.0.1:99999"}) {
    CommandRun run = run_cohort({"worker", "--no-curve", "--coordinator", address, "--idle-timeout", "5"}, dir);
    expect_no_abort(run);
    EXPECT_EQ(run.code, 2) << address << ": " << run.err;
    EXPECT_NE(run.err.find("--coordinator: '" + address + "'"), std::string::npos) << run.err;
    EXPECT_NE(run.err.find("expected tcp://HOST:PORT"), std::string::npos) << run.err;
  }
}

TEST(BadInput, IdleTimeoutsOutsideZeroToAYearAreRefused) {
  ScratchDir dir;
  for (const std::string timeout : {"1e10", "-5", "0", "nan"}) {
    CommandRun run = run_cohort({"worker", "--no-curve", "--idle-timeout", timeout}, dir);
    EXPECT_EQ(run.code, 2) << timeout << ": " << run.err;
    EXPECT_NE(run.err.find("--idle-timeout: must be in (0, 31622400] seconds"), std::string::npos) << run.err;
  }
}

// A --no-curve worker at a port where nothing listens (or where a CURVE
// coordinator ignores it) used to wait out its idle timeout in silence and
// exit 0.
TEST(BadInput, AWorkerThatNobodyAnswersSaysSoEarlyAndExitsNonZero) {
  ScratchDir dir;
  const std::string nowhere = "tcp://127.0.0.1:" + std::to_string(free_tcp_port());
  {
    CohortProcess worker({"worker", "--no-curve", "--coordinator", nowhere, "--idle-timeout", "60"},
                         dir.path() / "w.out", dir.path() / "w.err");
    EXPECT_TRUE(wait_for_stderr(worker, "nothing answers at " + nowhere, seconds(20))) << worker.stderr_text();
    EXPECT_FALSE(worker.poll().has_value()) << "it keeps waiting until its idle timeout";
  }
  CommandRun run = run_cohort({"worker", "--no-curve", "--coordinator", nowhere, "--idle-timeout", "2"}, dir);
  EXPECT_EQ(run.code, 1) << run.err;
  EXPECT_NE(run.err.find("no coordinator answered at " + nowhere), std::string::npos) << run.err;

  // With CURVE: no handshake completes.
  const std::string key = to_hex(Identity::generate().public_key());
  CohortProcess curve({"worker", "--coordinator", nowhere, "--coordinator-key", key, "--idle-timeout", "60"},
                      dir.path() / "c.out", dir.path() / "c.err");
  EXPECT_TRUE(wait_for_stderr(curve, "nothing answers at " + nowhere, seconds(20))) << curve.stderr_text();
}

TEST(BadInput, KeyFilesThatAreNotSecretKeysGetTheRightAdvice) {
  ScratchDir dir;
  CommandRun directory = run_cohort({"worker", "--no-curve", "--key", "/tmp", "--idle-timeout", "1"}, dir);
  EXPECT_EQ(directory.code, 2) << directory.err;
  EXPECT_NE(directory.err.find("/tmp is not a regular file"), std::string::npos) << directory.err;
  EXPECT_EQ(directory.err.find("chmod"), std::string::npos) << directory.err;

  ASSERT_EQ(run_cohort({"keygen", "--out", (dir.path() / "w1.key").string()}, dir).code, 0);
  const std::string pub = (dir.path() / "w1.pub").string();
  CommandRun public_key = run_cohort({"worker", "--no-curve", "--key", pub, "--idle-timeout", "1"}, dir);
  EXPECT_EQ(public_key.code, 2) << public_key.err;
  EXPECT_NE(public_key.err.find(pub + " holds a public key"), std::string::npos) << public_key.err;
  EXPECT_NE(public_key.err.find((dir.path() / "w1.key").string()), std::string::npos) << public_key.err;
  EXPECT_EQ(public_key.err.find("chmod"), std::string::npos) << public_key.err;
}

// The bytes of a garbage file may be terminal escapes: they are not echoed.
TEST(BadInput, AGarbageKeyFileIsNotEchoed) {
  ScratchDir dir;
  const std::filesystem::path garbage = dir.path() / "garbage.pub";
  write_file(garbage, "\x1b]0;pwned\x07 this is no key \x1b[2J\n");
  CommandRun run = run_cohort({"worker", "--coordinator-key", garbage.string(), "--idle-timeout", "1"}, dir);
  EXPECT_EQ(run.code, 2) << run.err;
  EXPECT_NE(run.err.find(garbage.string()), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find("pwned"), std::string::npos) << run.err;
  EXPECT_EQ(run.err.find('\x1b'), std::string::npos) << run.err;
}

TEST(BadInput, DevicesAndDirectoriesAreRefusedBeforeReading) {
  ScratchDir dir;
  CommandRun key = run_cohort({"worker", "--coordinator-key", "/dev/zero", "--idle-timeout", "1"}, dir, seconds(20));
  EXPECT_EQ(key.code, 2) << key.err;
  EXPECT_NE(key.err.find("/dev/zero is not a regular file"), std::string::npos) << key.err;

  for (const std::string input : {"/tmp", "/dev/zero"}) {
    CommandRun run = run_cohort({"aggregate", "--rule", "fedavg", "--input", input, "--output",
                                 (dir.path() / "out.npy").string()},
                                dir, seconds(20));
    expect_no_abort(run);
    EXPECT_EQ(run.code, 2) << input << ": " << run.err;
    EXPECT_NE(run.err.find(input + " is not a regular file"), std::string::npos) << run.err;
  }
}

TEST(BadInput, KeygenMakesTheDirectoryOfItsOutput) {
  ScratchDir dir;
  const std::filesystem::path key = dir.path() / "keys" / "coordinator.key";
  CommandRun run = run_cohort({"keygen", "--out", key.string()}, dir);
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_TRUE(std::filesystem::exists(key));
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "keys" / "coordinator.pub"));
}

// ---------------------------------------------------------------- coordinator

std::string coordinator_job(const std::filesystem::path& dir, const std::string& extra) {
  return "[job]\noutput_dir = \"" + (dir / "out").string() + "\"\n[network]\ncurve = false\nlisten = \"ipc://" +
         (dir / "c.sock").string() + "\"\n" + extra;
}

TEST(BadInput, AListenPortAbove65535IsRefused) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", "[network]\nlisten = \"tcp://127.0.0.1:99999\"\n");
  CommandRun run = run_cohort({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir);
  EXPECT_EQ(run.code, 2) << run.err;
  EXPECT_NE(run.err.find("network.listen: 'tcp://127.0.0.1:99999' has port '99999', not one in 1-65535"),
            std::string::npos)
      << run.err;
}

// A stop before round 1 has no model to point at.
TEST(BadInput, SigtermBeforeTheFirstRoundSaysNothingWasCheckpointed) {
  ScratchDir dir;
  write_file(dir.path() / "job.toml", coordinator_job(dir.path(), "[round]\nregistration_timeout_seconds = 120\n"));
  CohortProcess coordinator({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir.path() / "c.out",
                            dir.path() / "c.err");
  ASSERT_TRUE(wait_for_stderr(coordinator, "waiting for 1 worker", seconds(120))) << coordinator.stderr_text();
  coordinator.send(SIGTERM);
  ASSERT_EQ(coordinator.wait(seconds(30)), 0) << coordinator.stderr_text();
  EXPECT_EQ(coordinator.stderr_text().find("model in"), std::string::npos) << coordinator.stderr_text();
  EXPECT_NE(coordinator.stderr_text().find("stopped before round 1 finished: nothing was checkpointed"),
            std::string::npos)
      << coordinator.stderr_text();
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "out" / "model.ckpt"));
}

// ---------------------------------------------------------------- demo

// Each of these used to start the workers (or hang, or exit 0 with every
// task failed) before the job's validation could say no.
TEST(BadInput, DemoFlagsAreValidatedLikeAJobBeforeAnyWorkerStarts) {
  struct Case {
    std::vector<std::string> flags;
    std::string message;
  };
  const std::vector<Case> cases = {
      {{"--lr", "-1"}, "--lr: must be > 0, got -1"},
      {{"--lr", "nan"}, "--lr: must be finite, got nan"},
      {{"--batch-size", "0"}, "--batch-size: must be >= 1, got 0"},
      {{"--partition", "foo"}, "--partition: must be one of"},
      {{"--rounds", "0"}, "--rounds: must be >= 1, got 0"},
      {{"--seed", "-1"}, "--seed: must be >= 0, got -1"},
      {{"--cheaters", "5", "--workers", "2"}, "--cheaters and --flip-labels: 5 of 2 workers"},
      {{"--flip-labels", "-1"}, "--flip-labels: must be >= 0, got -1"},
  };
  ScratchDir dir;
  for (const Case& c : cases) {
    std::vector<std::string> args = {"demo", "--output-dir", (dir.path() / "demo").string()};
    args.insert(args.end(), c.flags.begin(), c.flags.end());
    CommandRun run = run_cohort(args, dir, seconds(60));
    EXPECT_EQ(run.code, 2) << c.flags[0] << ": " << run.err;
    EXPECT_NE(run.err.find("cohort demo: " + c.message), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find("worker process"), std::string::npos) << "no worker may start\n" << run.err;
  }
}

TEST(BadInput, DemoHelpShowsDefaultsAsWrittenAndEveryModel) {
  ScratchDir dir;
  CommandRun run = run_cohort({"demo", "--help"}, dir);
  ASSERT_EQ(run.code, 0);
  EXPECT_EQ(run.out.find("0.050000000000000003"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("(=0.05)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("mlp-wide"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("audited, audits_failed"), std::string::npos) << run.out;
}

}  // namespace
}  // namespace cohort::testing
