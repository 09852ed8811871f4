// Local training: step planning, the batch schedule, SgdTrainer against
// torch's own SGD loop, resuming from a state, and momentum kept across tasks.
#include "cohort/training.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <numeric>
#include <set>

#include "cohort/random.h"

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

TEST(BatchScheduleTest, EveryEpochIsAPermutationCutIntoBatches) {
  // 10 samples, batches of 4: steps 0-2 are epoch 0 (4, 4, 2), 3-5 epoch 1.
  std::vector<int64_t> epoch0, epoch1;
  for (uint64_t step = 0; step < 6; ++step) {
    const std::vector<int64_t> batch = batch_indices(10, 4, 5, step);
    EXPECT_EQ(batch.size(), step % 3 == 2 ? 2u : 4u) << "step " << step;
    (step < 3 ? epoch0 : epoch1).insert((step < 3 ? epoch0 : epoch1).end(), batch.begin(), batch.end());
  }
  std::vector<int64_t> expected(10);
  std::iota(expected.begin(), expected.end(), 0);
  Rng(5).fork(1).shuffle(std::span<int64_t>(expected));
  EXPECT_EQ(epoch1, expected);  // epoch e is Rng(seed).fork(e)'s shuffle
  std::sort(epoch0.begin(), epoch0.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(epoch0, expected);
  EXPECT_NE(batch_indices(10, 4, 5, 0), batch_indices(10, 4, 5, 3));  // reshuffled
  EXPECT_NE(batch_indices(10, 4, 5, 0), batch_indices(10, 4, 6, 0));  // seeded
}

TEST(BatchScheduleTest, RandomAccessMatchesTheSequentialOrder) {
  BatchSchedule schedule(100, 7, 9);
  EXPECT_EQ(schedule.steps_per_epoch(), 15u);
  for (uint64_t step : {44u, 3u, 200u, 0u, 15u, 14u}) {
    const std::span<const int64_t> cached = schedule.indices(step);
    EXPECT_EQ(std::vector<int64_t>(cached.begin(), cached.end()), batch_indices(100, 7, 9, step)) << step;
  }
  EXPECT_TRUE(batch_indices(0, 7, 9, 0).empty());
  EXPECT_TRUE(batch_indices(100, 0, 9, 0).empty());
}

// torch's own loop, as train_locally ran before SgdTrainer: the reference
// for SGD semantics (first step clones the gradient into the buffer).
at::Tensor reference_sgd(Model& model, const TensorDataset& shard, const Hyperparameters& hyper, uint64_t seed,
                         bool zero_buffers) {
  std::vector<torch::Tensor> params = model.parameters();
  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(hyper.learning_rate)
                                          .momentum(hyper.momentum)
                                          .weight_decay(hyper.weight_decay));
  if (zero_buffers) {
    for (auto& p : params) {
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(torch::zeros_like(p));
      optimizer.state()[p.unsafeGetTensorImpl()] = std::move(state);
    }
  }
  model.set_training(true);
  for (uint64_t step = 0; step < hyper.local_steps; ++step) {
    std::vector<int64_t> batch = batch_indices(shard.size(), hyper.batch_size, seed, step);
    torch::Tensor index = torch::tensor(batch, torch::kLong);
    optimizer.zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(model.forward(shard.images.index_select(0, index)),
                                                              shard.labels.index_select(0, index));
    loss.backward();
    optimizer.step();
  }
  return model.flat_parameters();
}

TEST(SgdTrainerTest, MatchesTorchSgdBitForBit) {
  // One intra-op thread: the reference loop's BLAS then runs single-threaded
  // as SgdTrainer's does under set_single_threaded_blas (which the proof of
  // learning tests in this binary turn on).
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  Hyperparameters hyper = sgd(9);
  hyper.weight_decay = 1e-3;
  auto ours = fresh_model(), theirs = fresh_model(), zeroed = fresh_model();
  const TensorDataset shard = synthetic_shard();  // outlives the trainer
  SgdTrainer trainer(*ours, shard, hyper, 4);
  ASSERT_TRUE(trainer.run(9).ok());
  const at::Tensor reference = reference_sgd(*theirs, synthetic_shard(), hyper, 4, false);
  EXPECT_TRUE(at::equal(ours->flat_parameters(), reference));
  // Explicit zero buffers give the same bits as torch's clone-on-first-step
  // here (they could differ only in the sign of an exact zero), and the
  // trainer never runs that path: it treats zeros as fresh.
  EXPECT_TRUE(at::equal(reference_sgd(*zeroed, synthetic_shard(), hyper, 4, true), reference));
  at::set_num_threads(threads);
}

TEST(SgdTrainerTest, SegmentsAndResumedStatesGiveTheSameBits) {
  const TensorDataset shard = synthetic_shard();  // outlives the trainers
  const Hyperparameters hyper = sgd(12);
  auto whole = fresh_model(), pieces = fresh_model(), resumed = fresh_model();
  SgdTrainer a(*whole, shard, hyper, 2);
  ASSERT_TRUE(a.run(12).ok());
  SgdTrainer b(*pieces, shard, hyper, 2);
  ASSERT_TRUE(b.run(5).ok());
  const TrainingState middle = b.state();
  EXPECT_EQ(middle.step, 5u);
  ASSERT_TRUE(b.run(7).ok());
  EXPECT_TRUE(at::equal(a.state().parameters, b.state().parameters));
  EXPECT_TRUE(at::equal(a.state().momentum, b.state().momentum));

  // A fresh trainer on another model resumes from the middle state.
  SgdTrainer c(*resumed, shard, hyper, 2);
  ASSERT_TRUE(c.load_state(middle).ok());
  ASSERT_TRUE(c.run(7).ok());
  EXPECT_EQ(c.state().step, 12u);
  EXPECT_TRUE(at::equal(c.state().parameters, a.state().parameters));
  EXPECT_TRUE(at::equal(c.state().momentum, a.state().momentum));
  EXPECT_EQ(c.samples_seen(), 7u * 16u);
}

TEST(SgdTrainerTest, ZeroMomentumIsFreshMomentum) {
  const TensorDataset shard = synthetic_shard();  // outlives the trainers
  const Hyperparameters hyper = sgd(3);
  auto fresh = fresh_model(), zeroed = fresh_model();
  SgdTrainer a(*fresh, shard, hyper, 8);
  const TrainingState start = a.state();
  ASSERT_TRUE(start.momentum.defined());
  EXPECT_EQ(start.momentum.numel(), fresh->parameter_count());
  EXPECT_FALSE(start.momentum.ne(0).any().item<bool>());
  EXPECT_TRUE(a.momentum_buffers().empty());
  ASSERT_TRUE(a.run(3).ok());
  SgdTrainer b(*zeroed, shard, hyper, 8);
  ASSERT_TRUE(b.load_state(start).ok());
  ASSERT_TRUE(b.run(3).ok());
  EXPECT_TRUE(at::equal(a.state().parameters, b.state().parameters));
  EXPECT_TRUE(at::equal(a.state().momentum, b.state().momentum));
}

TEST(SgdTrainerTest, StateWithoutMomentumAndBadStates) {
  const TensorDataset shard = synthetic_shard();  // outlives the trainers
  Hyperparameters plain = sgd(2);
  plain.momentum = 0.0;
  auto model = fresh_model();
  SgdTrainer trainer(*model, shard, plain, 1);
  ASSERT_TRUE(trainer.run(2).ok());
  TrainingState state = trainer.state();
  EXPECT_FALSE(state.momentum.defined());
  EXPECT_TRUE(trainer.momentum_buffers().empty());
  EXPECT_EQ(state.step, 2u);

  TrainingState with_momentum = state;
  with_momentum.momentum = at::ones_like(state.parameters);
  EXPECT_EQ(trainer.load_state(with_momentum).code(), Status::Code::kInvalidArgument);
  TrainingState short_params = state;
  short_params.parameters = state.parameters.narrow(0, 0, 10);
  EXPECT_EQ(trainer.load_state(short_params).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(trainer.load_state(TrainingState{}).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(trainer.state().step, 2u);  // unchanged by the failed loads

  SgdTrainer momentum_trainer(*model, shard, sgd(1), 1);
  TrainingState bad_momentum = state;
  bad_momentum.momentum = at::ones({5});
  EXPECT_EQ(momentum_trainer.load_state(bad_momentum).code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(momentum_trainer.set_momentum_buffers({at::ones({3})}).code(), Status::Code::kInvalidArgument);
}

TEST(SgdTrainerTest, NonFiniteLossIsAnError) {
  const TensorDataset shard = synthetic_shard();  // outlives the trainers
  Hyperparameters wild = sgd(20);
  wild.learning_rate = 1e30;
  auto model = fresh_model();
  SgdTrainer trainer(*model, shard, wild, 1);
  const Status status = trainer.run(20);
  EXPECT_EQ(status.code(), Status::Code::kInternal) << status.to_string();
}

// Each loss is its formula: cross-entropy of logits, nll of
// log-probabilities (equal to cross-entropy of their logits), mse and
// bce-with-logits against the one-hot label, averaged over the elements.
TEST(LossTest, EachLossIsItsFormula) {
  const at::Tensor outputs = at::tensor(std::vector<float>{2.0f, 0.0f, -1.0f, 0.5f, 1.5f, 0.0f}).view({2, 3});
  const at::Tensor labels = at::tensor(std::vector<int64_t>{0, 1});
  const at::Tensor one_hot = at::tensor(std::vector<float>{1, 0, 0, 0, 1, 0}).view({2, 3});
  const at::Tensor cross_entropy = -at::log_softmax(outputs, 1).gather(1, labels.view({2, 1})).mean();
  EXPECT_NEAR(loss_of(outputs, labels, LossKind::kCrossEntropy).item<double>(), cross_entropy.item<double>(), 1e-6);
  EXPECT_NEAR(loss_of(at::log_softmax(outputs, 1), labels, LossKind::kNll).item<double>(),
              cross_entropy.item<double>(), 1e-6);
  EXPECT_NEAR(loss_of(outputs, labels, LossKind::kMse).item<double>(), (outputs - one_hot).pow(2).mean().item<double>(),
              1e-6);
  const at::Tensor p = at::sigmoid(outputs);
  const at::Tensor bce = -(one_hot * at::log(p) + (1 - one_hot) * at::log(1 - p)).mean();
  EXPECT_NEAR(loss_of(outputs, labels, LossKind::kBceWithLogits).item<double>(), bce.item<double>(), 1e-6);
  EXPECT_EQ(parse_loss("bce-with-logits").value(), LossKind::kBceWithLogits);
  EXPECT_EQ(loss_name(LossKind::kNll), "nll");
  EXPECT_NE(parse_loss("hinge").status().message().find("unknown loss 'hinge' (known: cross-entropy, nll, mse, "
                                                         "bce-with-logits)"),
            std::string::npos);
}

// A task trains with the loss it names: its steps lower that loss and
// differ from another loss's.
TEST(LossTest, TheTrainerMinimisesTheTasksLoss) {
  const TensorDataset shard = synthetic_shard();
  at::Tensor ends[3];
  int i = 0;
  for (LossKind kind : {LossKind::kCrossEntropy, LossKind::kMse, LossKind::kBceWithLogits}) {
    SCOPED_TRACE(std::string(loss_name(kind)));
    Hyperparameters hyper = sgd(40);
    hyper.loss = kind;
    auto model = fresh_model();
    const double before = loss_of(model->forward(shard.images), shard.labels, kind).item<double>();
    SgdTrainer trainer(*model, shard, hyper, 2);
    ASSERT_TRUE(trainer.run(40).ok());
    const double after = loss_of(model->forward(shard.images), shard.labels, kind).item<double>();
    EXPECT_LT(after, 0.9 * before);
    ends[i++] = model->flat_parameters();
  }
  EXPECT_FALSE(at::equal(ends[0], ends[1]));
  EXPECT_FALSE(at::equal(ends[1], ends[2]));
}

}  // namespace
}  // namespace cohort
