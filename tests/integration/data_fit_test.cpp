// Data that parses but does not fit the model (issue 21): 56x56 or 1x1
// images for a 28x28 model, labels outside its classes, no samples at all.
// The coordinator used to abort after round 1 (LibTorch's "mat1 and mat2
// shapes cannot be multiplied", "Target 209 is out of bounds") and a data
// holder's worker on its first task; now both refuse such data when they
// load it, naming the file and the problem, with exit code 2.
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <vector>

#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::seconds;

// An IDX file of unsigned bytes with the given dimensions.
void write_idx(const std::filesystem::path& path, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  const uint8_t magic[4] = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  out.write(reinterpret_cast<const char*>(magic), 4);
  for (uint32_t d : dims) {
    const uint8_t be[4] = {static_cast<uint8_t>(d >> 24), static_cast<uint8_t>(d >> 16), static_cast<uint8_t>(d >> 8),
                           static_cast<uint8_t>(d)};
    out.write(reinterpret_cast<const char*>(be), 4);
  }
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

struct IdxPair {
  std::filesystem::path images;
  std::filesystem::path labels;
};

// `count` images of side x side pixels, labels first_label, first_label + 1, ...
IdxPair write_dataset(const std::filesystem::path& dir, const std::string& name, uint32_t count, uint32_t side,
                      int first_label) {
  IdxPair pair{dir / (name + "-images.idx"), dir / (name + "-labels.idx")};
  write_idx(pair.images, {count, side, side}, std::vector<uint8_t>(size_t{count} * side * side, 128));
  std::vector<uint8_t> labels;
  for (uint32_t i = 0; i < count; ++i) labels.push_back(static_cast<uint8_t>((first_label + static_cast<int>(i)) % 256));
  write_idx(pair.labels, {count}, labels);
  return pair;
}

std::string idx_job(const std::filesystem::path& dir, const IdxPair& test) {
  return "[job]\noutput_dir = \"" + (dir / "out").string() + "\"\n[model]\nname = \"mlp\"\n[data]\ndataset = \"idx\"\n" +
         "test_images = \"" + test.images.string() + "\"\ntest_labels = \"" + test.labels.string() + "\"\n" +
         "[network]\ncurve = false\nlisten = \"ipc://" + (dir / "c.sock").string() + "\"\n";
}

CommandRun start_coordinator(const ScratchDir& dir, const IdxPair& test) {
  write_file(dir.path() / "job.toml", idx_job(dir.path(), test));
  return run_cohort({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir, seconds(60));
}

TEST(DataFit, TheCoordinatorRefusesATestSetThatDoesNotFitTheModel) {
  struct Case {
    uint32_t count, side;
    int first_label;
    bool about_labels;  // the problem is in the label file
    std::string message;
  };
  for (const Case& c : {Case{10, 56, 0, false, ": the images are 56x56 pixels, but model 'mlp' takes 28x28"},
                        Case{10, 1, 0, false, ": the images are 1x1 pixels, but model 'mlp' takes 28x28"},
                        Case{10, 28, 200, true, ": label 200 (sample 0) is outside model 'mlp''s classes 0-9"},
                        Case{0, 28, 0, false, ": holds no samples"}}) {
    ScratchDir dir;
    const IdxPair test = write_dataset(dir.path(), "test", c.count, c.side, c.first_label);
    const std::string file = (c.about_labels ? test.labels : test.images).string();
    CommandRun run = start_coordinator(dir, test);
    EXPECT_EQ(run.code, 2) << run.err;
    EXPECT_NE(run.err.find(file + c.message), std::string::npos) << run.err;
    // `cohort simulate` reads the same job the same way.
    CommandRun simulated = run_cohort({"simulate", "--config", (dir.path() / "job.toml").string()}, dir);
    EXPECT_EQ(simulated.code, 2) << simulated.err;
    EXPECT_NE(simulated.err.find(file + c.message), std::string::npos) << simulated.err;
  }
}

// An "idx" job's root update trains on the job's own training split
// (data.train_*), checked like the rest, not on data.dir's Fashion-MNIST.
TEST(DataFit, AnIdxJobsRootSamplesComeFromItsOwnTrainingSplit) {
  ScratchDir dir;
  const IdxPair test = write_dataset(dir.path(), "test", 10, 28, 0);
  const IdxPair train = write_dataset(dir.path(), "train", 10, 56, 0);
  std::string job = idx_job(dir.path(), test);
  job.insert(job.find("[network]"), "train_images = \"" + train.images.string() + "\"\ntrain_labels = \"" +
                                        train.labels.string() + "\"\n[aggregation]\nrule = \"fltrust\"\n" +
                                        "root_samples = 5\n");
  write_file(dir.path() / "job.toml", job);
  CommandRun run = run_cohort({"coordinator", "--config", (dir.path() / "job.toml").string()}, dir, seconds(60));
  EXPECT_EQ(run.code, 2) << run.err;
  EXPECT_NE(run.err.find("root"), std::string::npos) << run.err;
  EXPECT_NE(run.err.find(train.images.string() + ": the images are 56x56 pixels"), std::string::npos) << run.err;
}

// The worker checks its data before it says Hello: no coordinator is needed
// to find out that it does not fit.
TEST(DataFit, ADataHoldersWorkerRefusesDataThatFitsNoModelBeforeRegistering) {
  struct Case {
    uint32_t count, side;
    int first_label;
    std::string message;
  };
  for (const Case& c : {Case{10, 1, 0, "the images are 1x1 pixels, but the models take 28x28"},
                        Case{10, 56, 0, "the images are 56x56 pixels, but the models take 28x28"},
                        Case{10, 28, 200, "label 200 (sample 0) is outside the models' classes 0-9"},
                        Case{0, 28, 0, "holds no samples"}}) {
    ScratchDir dir;
    const IdxPair data = write_dataset(dir.path(), "mine", c.count, c.side, c.first_label);
    CommandRun run = run_cohort({"worker", "--no-curve", "--coordinator", "ipc://" + (dir.path() / "none").string(),
                                 "--images", data.images.string(), "--labels", data.labels.string(), "--idle-timeout",
                                 "30"},
                                dir, seconds(60));
    EXPECT_EQ(run.code, 2) << run.err;
    EXPECT_NE(run.err.find(c.message), std::string::npos) << run.err;
    EXPECT_EQ(run.err.find("connecting to"), std::string::npos) << "it must not register\n" << run.err;
  }
}

// A truncated IDX file and one whose header claims more than the 4 GiB limit
// are both bad input (docs/OPERATIONS.md, "Exit codes"); the oversize one
// used to exit 1.
TEST(DataFit, TruncatedAndOversizeIdxFilesAreBothExitTwo) {
  ScratchDir dir;
  const IdxPair fine = write_dataset(dir.path(), "fine", 10, 28, 0);
  const std::filesystem::path truncated = dir.path() / "truncated.idx";
  write_idx(truncated, {10, 28, 28}, std::vector<uint8_t>(100, 1));
  const std::filesystem::path oversize = dir.path() / "oversize.idx";
  write_idx(oversize, {70000, 256, 256}, {});
  for (const auto& [images, problem] : {std::pair{truncated, std::string("truncated data")},
                                        std::pair{oversize, std::string("exceed the 4 GiB size limit")}}) {
    CommandRun run = run_cohort({"worker", "--no-curve", "--images", images.string(), "--labels", fine.labels.string(),
                                 "--idle-timeout", "30"},
                                dir, seconds(60));
    EXPECT_EQ(run.code, 2) << run.err;
    EXPECT_NE(run.err.find(problem), std::string::npos) << run.err;
  }
}

}  // namespace
}  // namespace cohort::testing
