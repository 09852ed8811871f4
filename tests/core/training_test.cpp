// Local training: step planning, determinism, and momentum kept across tasks.
#include "cohort/training.h"

#include <gtest/gtest.h>

#include <ATen/ATen.h>

namespace cohort {
namespace {

// 64 synthetic 28x28 images whose label is written into their brightness,
// so that a few SGD steps visibly lower the loss.
TensorDataset synthetic_shard() {
  at::Tensor labels = at::arange(64, at::kLong).remainder(10);
  at::Tensor images = labels.to(at::kFloat).div(10.0).view({64, 1, 1, 1}).expand({64, 1, 28, 28}).contiguous();
  return TensorDataset{images, labels};
}

Hyperparameters sgd(uint32_t steps) {
  Hyperparameters hyper;
  hyper.local_steps = steps;
  hyper.batch_size = 16;
  hyper.learning_rate = 0.05;
  hyper.momentum = 0.9;
  return hyper;
}

std::unique_ptr<Model> fresh_model() { return std::move(Model::create("mlp", 3)).value(); }

TEST(TrainerTest, PlannedStepsFollowStepsOrEpochs) {
  Hyperparameters hyper;
  hyper.batch_size = 32;
  hyper.local_steps = 7;
  EXPECT_EQ(planned_steps(hyper, 1000), 7u);
  hyper.local_steps = 0;
  hyper.local_epochs = 2.0;
  EXPECT_EQ(planned_steps(hyper, 100), 8u);  // 2 x ceil(100 / 32)
  hyper.local_epochs = 0.0;
  EXPECT_EQ(planned_steps(hyper, 100), 4u);  // one epoch by default
  hyper.local_epochs = 0.01;
  EXPECT_EQ(planned_steps(hyper, 100), 1u);  // never zero
}

TEST(TrainerTest, TrainingReturnsTheDeltaAndMetrics) {
  auto model = fresh_model();
  const at::Tensor start = model->flat_parameters();
  auto trained = train_locally(*model, synthetic_shard(), sgd(10), 1);
  ASSERT_TRUE(trained.ok()) << trained.status().to_string();
  EXPECT_EQ(trained->metrics.steps, 10u);
  EXPECT_EQ(trained->samples_seen, 160u);
  EXPECT_TRUE(at::allclose(start + trained->delta, model->flat_parameters()));
  EXPECT_GT(trained->delta.norm().item<double>(), 0.0);
  EXPECT_TRUE(std::isfinite(trained->metrics.local_loss));
}

TEST(TrainerTest, SameSeedSameDeltaDifferentSeedDifferentDelta) {
  auto a = fresh_model(), b = fresh_model(), c = fresh_model();
  auto da = train_locally(*a, synthetic_shard(), sgd(5), 11);
  auto db = train_locally(*b, synthetic_shard(), sgd(5), 11);
  auto dc = train_locally(*c, synthetic_shard(), sgd(5), 12);
  ASSERT_TRUE(da.ok() && db.ok() && dc.ok());
  EXPECT_TRUE(at::equal(da->delta, db->delta));
  EXPECT_FALSE(at::equal(da->delta, dc->delta));
}

TEST(TrainerTest, MomentumIsCarriedToTheNextTaskOnlyWhenAsked) {
  auto kept = fresh_model(), fresh = fresh_model();
  MomentumBuffers buffers;
  ASSERT_TRUE(train_locally(*kept, synthetic_shard(), sgd(5), 1, &buffers).ok());
  ASSERT_EQ(buffers.size(), kept->parameters().size());
  EXPECT_EQ(buffers[0].sizes(), kept->parameters()[0].sizes());
  ASSERT_TRUE(train_locally(*fresh, synthetic_shard(), sgd(5), 1).ok());
  ASSERT_TRUE(at::equal(kept->flat_parameters(), fresh->flat_parameters()));

  // Same start, same batches: only the carried momentum differs.
  auto with_momentum = train_locally(*kept, synthetic_shard(), sgd(1), 2, &buffers);
  auto without = train_locally(*fresh, synthetic_shard(), sgd(1), 2);
  ASSERT_TRUE(with_momentum.ok() && without.ok());
  EXPECT_FALSE(at::allclose(with_momentum->delta, without->delta));
}

TEST(TrainerTest, EmptyShardAndZeroBatchAreErrors) {
  auto model = fresh_model();
  TensorDataset empty{at::empty({0, 1, 28, 28}), at::empty({0}, at::kLong)};
  EXPECT_EQ(train_locally(*model, empty, sgd(1), 1).status().code(), Status::Code::kFailedPrecondition);
  Hyperparameters zero_batch = sgd(1);
  zero_batch.batch_size = 0;
  EXPECT_EQ(train_locally(*model, synthetic_shard(), zero_batch, 1).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
