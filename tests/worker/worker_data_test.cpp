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
  const LabeledImages& a = **clean;
  const LabeledImages& b = **flipped;
  ASSERT_EQ(a.labels.size(), b.labels.size());
  for (size_t i = 0; i < a.labels.size(); i += 997) {
    EXPECT_EQ(a.labels[i] + b.labels[i], 9) << i;
  }
  EXPECT_EQ(a.pixels, b.pixels);
}

// `cohort simulate`'s workers share one copy; a misbehaviour changes its own.
TEST(WorkerDataTest, LoadedDataIsSharedUnlessAMisbehaviourChangesIt) {
  auto shared = std::make_shared<const LabeledImages>(LabeledImages{2, 28, 28, std::vector<uint8_t>(2 * 784, 7), {3, 4}});
  WorkerOptions options;
  options.images = "/nonexistent/images";  // names the data; not read
  options.labels = "/nonexistent/labels";
  options.loaded_data = shared;
  auto taken = load_worker_data(options);
  ASSERT_TRUE(taken.ok()) << taken.status().to_string();
  EXPECT_EQ(taken->get(), shared.get());

  MisbehaviourOptions flip;
  flip.flip_labels = true;
  ScriptedMisbehaviour flipper(flip);
  options.misbehaviour = &flipper;
  auto flipped = load_worker_data(options);
  ASSERT_TRUE(flipped.ok()) << flipped.status().to_string();
  EXPECT_NE(flipped->get(), shared.get());
  EXPECT_EQ((*flipped)->labels, (std::vector<uint8_t>{6, 5}));
  EXPECT_EQ(shared->labels, (std::vector<uint8_t>{3, 4}));
}

TEST(WorkerDataTest, ImagesWithoutLabelsIsAnError) {
  WorkerOptions options;
  options.images = "/tmp/images.gz";
  EXPECT_EQ(load_worker_data(options).status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
