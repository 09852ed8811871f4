// Which TorchScript archives a worker trains (--models-from, --accept-models)
// and its cache of the ones it received.
#include "model_archives.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/scratch_dir.h"
#include "support/torchscript_fixtures.h"

namespace cohort {
namespace {

using testing::torchscript_fixture;
using testing::torchscript_source;

TEST(ModelArchives, OnlyGivenArchivesArePermittedUnlessAnyIsAccepted) {
  testing::ScratchDir dir;
  const ModelSource small = torchscript_source("small.pt");
  const ModelSource other = torchscript_source("five_classes.pt");
  auto given = ModelArchives::open({torchscript_fixture("small.pt")}, false, dir.path() / "models");
  ASSERT_TRUE(given.ok()) << given.status().to_string();
  EXPECT_TRUE(given->permit(small.archive_digest).ok());
  EXPECT_TRUE(given->holds(small.archive_digest));
  EXPECT_FALSE(given->holds(other.archive_digest));
  const Status refused = given->permit(other.archive_digest);
  EXPECT_EQ(refused.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(refused.message().find("is not among --models-from (1 archive(s) given)"), std::string::npos)
      << refused.message();
  auto found = given->find(small.archive_digest);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(*(*found)->archive, *small.archive);

  auto any = ModelArchives::open({}, true, dir.path() / "models");
  ASSERT_TRUE(any.ok());
  EXPECT_TRUE(any->permit(other.archive_digest).ok());
}

TEST(ModelArchives, ADirectoryGivesItsPtFiles) {
  auto archives = ModelArchives::open({std::filesystem::path(COHORT_TORCHSCRIPT_DIR)}, false, "unused");
  ASSERT_TRUE(archives.ok()) << archives.status().to_string();
  EXPECT_TRUE(archives->permit(torchscript_source("wrong_shape.pt").archive_digest).ok());
  const auto missing = ModelArchives::open({"/nonexistent/models"}, false, "unused");
  EXPECT_NE(missing.status().message().find("--models-from /nonexistent/models: no such file"), std::string::npos);
}

TEST(ModelArchives, AKeptArchiveIsFoundAgainAndADamagedCopyIsDropped) {
  testing::ScratchDir dir;
  const ModelSource small = torchscript_source("small.pt");
  auto archives = ModelArchives::open({}, true, dir.path() / "models");
  ASSERT_TRUE(archives.ok());
  ASSERT_TRUE(archives->find(small.archive_digest).ok());
  EXPECT_FALSE(archives->find(small.archive_digest)->has_value());  // not fetched yet
  EXPECT_FALSE(archives->holds(small.archive_digest));
  ASSERT_TRUE(archives->keep(small).ok());
  EXPECT_TRUE(archives->holds(small.archive_digest));
  const std::filesystem::path cached = dir.path() / "models" / (to_hex(small.archive_digest) + ".pt");
  ASSERT_TRUE(std::filesystem::exists(cached));
  // A restarted worker (a new store on the same directory) finds it.
  auto restarted = ModelArchives::open({}, true, dir.path() / "models");
  auto found = restarted->find(small.archive_digest);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ(*(*found)->archive, *small.archive);
  // Damaged on disk: dropped, to be fetched again.
  std::ofstream(cached, std::ios::binary | std::ios::app) << "x";
  found = restarted->find(small.archive_digest);
  ASSERT_TRUE(found.ok());
  EXPECT_FALSE(found->has_value());
  EXPECT_FALSE(std::filesystem::exists(cached));
}

}  // namespace
}  // namespace cohort
