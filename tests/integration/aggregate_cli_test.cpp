// `cohort aggregate` end to end: .npy in, .npy out, diagnostics, and a
// one-line error with exit code 2 for every kind of bad input.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>

#include "cohort/npy.h"
#include "harness.h"

namespace cohort::testing {
namespace {

NpyArray matrix(std::vector<std::vector<double>> rows) {
  NpyArray array;
  array.dtype = DType::kFloat64;
  array.shape = {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())};
  for (const auto& row : rows) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(row.data());
    array.data.insert(array.data.end(), bytes, bytes + row.size() * sizeof(double));
  }
  return array;
}

std::vector<double> values(const NpyArray& array) {
  std::vector<double> out(static_cast<size_t>(array.numel()));
  std::memcpy(out.data(), array.data.data(), array.data.size());
  return out;
}

// ByzFL's docstring example, on which section 5F of the research notes
// gives every rule's expected output.
NpyArray byzfl_example() { return matrix({{1, 2, 3}, {4, 5, 6}, {7, 8, 9}}); }

class AggregateCli : public ::testing::Test {
 protected:
  struct Outcome {
    int code = -1;
    std::string out, err;
  };

  Outcome run(std::vector<std::string> args) {
    args.insert(args.begin(), "aggregate");
    CohortProcess process(args, dir_.path() / "out.txt", dir_.path() / "err.txt");
    Outcome outcome;
    outcome.code = process.wait(std::chrono::seconds(60)).value_or(-1);
    outcome.out = process.stdout_text();
    outcome.err = process.stderr_text();
    return outcome;
  }

  std::string file(const std::string& name, const NpyArray& array) {
    const auto path = dir_.path() / name;
    EXPECT_TRUE(write_npy(path, array).ok());
    return path.string();
  }

  std::string output() const { return (dir_.path() / "y.npy").string(); }

  std::vector<double> result() const {
    auto array = read_npy(output());
    EXPECT_TRUE(array.ok()) << array.status().to_string();
    return array.ok() ? values(*array) : std::vector<double>{};
  }

  void expect_usage_error(const Outcome& outcome, const std::string& fragment) {
    EXPECT_EQ(outcome.code, 2) << outcome.err;
    EXPECT_NE(outcome.err.find(fragment), std::string::npos) << outcome.err;
    EXPECT_EQ(std::count(outcome.err.begin(), outcome.err.end(), '\n'), 1) << outcome.err;
  }

  ScratchDir dir_;
};

void expect_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6) << i;
}

TEST_F(AggregateCli, MedianWritesTheAggregateAndDiagnostics) {
  auto outcome = run({"--rule", "median", "--f", "1", "--input", file("x.npy", byzfl_example()),
                      "--output", output(), "--json"});
  ASSERT_EQ(outcome.code, 0) << outcome.err;
  expect_near(result(), {4, 5, 6});
  auto json = nlohmann::json::parse(outcome.out);
  EXPECT_EQ(json["pipeline"], "median");
  EXPECT_EQ(json["n"], 3);
  EXPECT_EQ(json["d"], 3);
  EXPECT_EQ(json["dtype"], "float64");
  ASSERT_EQ(json["row_weights"].size(), 3u);
  EXPECT_NEAR(json["row_weights"][1].get<double>(), 1.0, 1e-12);  // row 2 is every median
}

TEST_F(AggregateCli, PreAggregatorsComposeInOrder) {
  auto outcome = run({"--pre", "clip", "--pre", "nnm", "--rule", "trimmed-mean", "--f", "1",
                      "--param", "c=2", "--input", file("x.npy", byzfl_example()), "--output",
                      output()});
  ASSERT_EQ(outcome.code, 0) << outcome.err;
  expect_near(result(), {0.95841302, 1.14416941, 1.3299258});  // ByzFL's value
}

TEST_F(AggregateCli, WeightsAndAStartVectorFromFiles) {
  NpyArray weights = matrix({{1, 1, 2}});
  weights.shape = {3};
  auto outcome = run({"--rule", "mean", "--input", file("x.npy", byzfl_example()), "--weights",
                      file("w.npy", weights), "--output", output()});
  ASSERT_EQ(outcome.code, 0) << outcome.err;
  expect_near(result(), {4.75, 5.75, 6.75});  // (1*[1,2,3] + 1*[4,5,6] + 2*[7,8,9]) / 4

  NpyArray start = matrix({{4, 5, 6}});
  start.shape = {3};
  outcome = run({"--rule", "centered-clipping", "--param", "tau=1", "--param",
                 "start=" + file("start.npy", start), "--input", file("x.npy", byzfl_example()),
                 "--output", output()});
  ASSERT_EQ(outcome.code, 0) << outcome.err;
  expect_near(result(), {4, 5, 6});  // symmetric around the start: the clipped pulls cancel
}

TEST_F(AggregateCli, BadInputsAreOneLineErrorsWithExitCode2) {
  const std::string x = file("x.npy", byzfl_example());
  expect_usage_error(run({"--rule", "krum", "--f", "1", "--input", x, "--output", output()}),
                     "n >= 2f+3");
  expect_usage_error(run({"--rule", "nope", "--input", x, "--output", output()}),
                     "unknown aggregation rule 'nope'");
  expect_usage_error(run({"--rule", "median", "--param", "bogus=1", "--input", x, "--output", output()}),
                     "no parameter 'bogus'");
  expect_usage_error(run({"--rule", "median", "--param", "novalue", "--input", x, "--output", output()}),
                     "expected key=value");
  expect_usage_error(run({"--rule", "median", "--pre", "nope", "--input", x, "--output", output()}),
                     "unknown pre-aggregator 'nope'");
  expect_usage_error(run({"--rule", "median", "--input", (dir_.path() / "missing.npy").string(),
                          "--output", output()}),
                     "missing.npy");

  NpyArray vector = matrix({{1, 2, 3}});
  vector.shape = {3};
  expect_usage_error(run({"--rule", "median", "--input", file("v.npy", vector), "--output", output()}),
                     "expected a 2-D array");

  std::vector<uint8_t> fortran = serialize_npy(byzfl_example());
  const std::string from = "False", to = "True ";
  std::copy(to.begin(), to.end(), std::search(fortran.begin(), fortran.end(), from.begin(), from.end()));
  write_file(dir_.path() / "f.npy", std::string(fortran.begin(), fortran.end()));
  expect_usage_error(run({"--rule", "median", "--input", (dir_.path() / "f.npy").string(),
                          "--output", output()}),
                     "Fortran");

  std::vector<uint8_t> truncated = serialize_npy(byzfl_example());
  truncated.resize(truncated.size() - 4);
  write_file(dir_.path() / "t.npy", std::string(truncated.begin(), truncated.end()));
  expect_usage_error(run({"--rule", "median", "--input", (dir_.path() / "t.npy").string(),
                          "--output", output()}),
                     "truncated data");

  write_file(dir_.path() / "garbage.npy", "hello");
  expect_usage_error(run({"--rule", "median", "--input", (dir_.path() / "garbage.npy").string(),
                          "--output", output()}),
                     "bad magic");

  for (const char* seed : {"-1", "1.5", "", "18446744073709551616"}) {
    expect_usage_error(run({"--rule", "median", "--seed", seed, "--input", x, "--output", output()}), "--seed");
  }

  EXPECT_EQ(run({"--rule", "median", "--output", output()}).code, 2);  // no --input
}

}  // namespace
}  // namespace cohort::testing
