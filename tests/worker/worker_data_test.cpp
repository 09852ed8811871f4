// What a worker trains on: its own data, optionally with flipped labels.
#include <gtest/gtest.h>

#include "cohort/misbehaviour.h"
#include "cohort/worker.h"

namespace cohort {
namespace {

TEST(WorkerDataTest, FlippedLabelsMirrorTheTrueOnes) {
  if (!std::filesystem::exists(kDefaultFashionMnistDir)) GTEST_SKIP() << "no Fashion-MNIST";
  WorkerOptions honest;
  MisbehaviourOptions flip;
  flip.flip_labels = true;
  ScriptedMisbehaviour flipper(flip);
  WorkerOptions flipping;
  flipping.misbehaviour = &flipper;
  auto clean = load_worker_data(honest);
  auto flipped = load_worker_data(flipping);
  ASSERT_TRUE(clean.ok() && flipped.ok());
  ASSERT_EQ(clean->labels.size(), flipped->labels.size());
  for (size_t i = 0; i < clean->labels.size(); i += 997) {
    EXPECT_EQ(clean->labels[i] + flipped->labels[i], 9) << i;
  }
  EXPECT_EQ(clean->pixels, flipped->pixels);
}

TEST(WorkerDataTest, ImagesWithoutLabelsIsAnError) {
  WorkerOptions options;
  options.images = "/tmp/images.gz";
  EXPECT_EQ(load_worker_data(options).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
