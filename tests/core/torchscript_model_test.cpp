// TorchScript archives as models ([model] path): what the layout holds,
// what is refused and why, dropout drawn from the step's seed, BatchNorm's
// statistics travelling in the state, and training that re-executes bit
// for bit from any saved state, at 1 and at 2 threads.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <thread>

#include "cohort/models.h"
#include "cohort/proof_of_learning.h"
#include "cohort/training.h"
#include "support/torchscript_fixtures.h"
#include "synthetic_task.h"

namespace cohort {
namespace {

using testing::torchscript_fixture;
using testing::torchscript_model;
using testing::torchscript_source;

std::vector<uint8_t> fixture_bytes(std::string_view name) { return *torchscript_source(name).archive; }

bool layout_has(const Model& model, std::string_view name) {
  const auto& tensors = model.layout().tensors;
  return std::any_of(tensors.begin(), tensors.end(), [&](const TensorSpec& spec) { return spec.name == name; });
}

// The first `n` samples of the shared synthetic shard (96 samples).
TensorDataset shard(int64_t n = 64) {
  const TensorDataset all = synthetic_shard();
  return TensorDataset{all.images.narrow(0, 0, n), all.labels.narrow(0, 0, n)};
}

Status load_error(std::span<const uint8_t> bytes) {
  return Model::load_torchscript(bytes, "model.pt").status();
}

TEST(TorchScriptModel, TheLayoutHoldsParametersAndBuffers) {
  auto model = torchscript_model();
  EXPECT_EQ(model->name(), kTorchScriptModelName);
  EXPECT_TRUE(layout_has(*model, "conv.weight"));
  EXPECT_TRUE(layout_has(*model, "norm.running_mean"));
  EXPECT_TRUE(layout_has(*model, "norm.running_var"));
  EXPECT_TRUE(layout_has(*model, "norm.num_batches_tracked"));
  const auto& tensors = model->layout().tensors;
  EXPECT_TRUE(std::is_sorted(tensors.begin(), tensors.end(),
                             [](const TensorSpec& a, const TensorSpec& b) { return a.name < b.name; }));
  // 8*1*5*5 + 8 conv, 8 + 8 BatchNorm affine, 8 + 8 + 1 statistics, 1152*10 + 10 fc.
  EXPECT_EQ(model->parameter_count(), 208 + 16 + 17 + 11530);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const bool buffer = tensors[i].name.starts_with("norm.running") || tensors[i].name == "norm.num_batches_tracked";
    EXPECT_EQ(model->trainable()[i], !buffer) << tensors[i].name;
  }
}

TEST(TorchScriptModel, BytesThatAreNotAnArchiveAreRefused) {
  const std::vector<uint8_t> junk(4096, 0x5a);
  const Status status = load_error(junk);
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("model.pt: not a TorchScript archive"), std::string::npos) << status.message();
}

TEST(TorchScriptModel, ATruncatedArchiveIsRefused) {
  std::vector<uint8_t> bytes = fixture_bytes("small.pt");
  bytes.resize(bytes.size() / 2);
  EXPECT_NE(load_error(bytes).message().find("not a TorchScript archive"), std::string::npos);
}

TEST(TorchScriptModel, AModelWithoutTrainableParametersIsRefused) {
  const Status status = load_error(fixture_bytes("frozen.pt"));
  EXPECT_NE(status.message().find("no trainable parameters"), std::string::npos) << status.message();
}

TEST(TorchScriptModel, NonFloat32ParametersAreRefused) {
  const Status status = load_error(fixture_bytes("float64.pt"));
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("trains float32 parameters"), std::string::npos) << status.message();
}

TEST(TorchScriptModel, TheForwardCheckNamesEachMisfit) {
  const TensorDataset data = shard(8);
  EXPECT_TRUE(check_forward_fits(*torchscript_model(), data.images, data.labels, "small").ok());
  const Status fails = check_forward_fits(*torchscript_model("wrong_input.pt"), data.images, data.labels, "m");
  EXPECT_NE(fails.message().find("m: the forward pass fails on a batch of 8 samples [8, 1, 28, 28]"),
            std::string::npos)
      << fails.message();
  const Status shape = check_forward_fits(*torchscript_model("wrong_shape.pt"), data.images, data.labels, "m");
  EXPECT_NE(shape.message().find("is [8, 10, 2], but training needs [8, classes] outputs"), std::string::npos)
      << shape.message();
  const Status classes = check_forward_fits(*torchscript_model("five_classes.pt"), data.images, data.labels, "m");
  EXPECT_NE(classes.message().find("the output has 5 classes, but the data has labels up to 7"), std::string::npos)
      << classes.message();  // the batch holds labels 0-7
}

TEST(TorchScriptModel, DropoutDrawsFromTheSeedAndLeavesTheDefaultGeneratorAsItWas) {
  auto model = torchscript_model();
  model->set_training(true);
  const at::Tensor x = shard(8).images;
  torch::NoGradGuard no_grad;
  const uint64_t before = at::globalContext().defaultGenerator(at::kCPU).current_seed();
  const at::Tensor a = model->forward_seeded(x, 11);
  EXPECT_TRUE(at::equal(a, model->forward_seeded(x, 11)));
  EXPECT_FALSE(at::equal(a, model->forward_seeded(x, 12)));
  EXPECT_EQ(at::globalContext().defaultGenerator(at::kCPU).current_seed(), before);
  model->set_training(false);
  EXPECT_TRUE(at::equal(model->forward(x), model->forward(x)));  // eval: no dropout
}

TEST(TorchScriptModel, TrainingMovesTheBatchNormStatisticsAndKeepsTheirMomentumZero) {
  auto model = torchscript_model();
  const at::Tensor start = model->flat_parameters();
  const TensorDataset data = shard();
  SgdTrainer trainer(*model, data, synthetic_hyper(6), 3);
  ASSERT_TRUE(trainer.run(6).ok());
  const TrainingState state = trainer.state();
  int64_t offset = 0;
  for (size_t i = 0; i < model->layout().tensors.size(); ++i) {
    const TensorSpec& spec = model->layout().tensors[i];
    const at::Tensor moved = (state.parameters - start).narrow(0, offset, spec.numel());
    const at::Tensor momentum = state.momentum.narrow(0, offset, spec.numel());
    EXPECT_TRUE(moved.abs().sum().item<double>() > 0) << spec.name << " did not change";
    EXPECT_EQ(momentum.abs().sum().item<double>() == 0, !model->trainable()[i]) << spec.name;
    offset += spec.numel();
  }
}

// What an audit does: train from a saved state at another thread count and
// compare the bits, with dropout and BatchNorm in the model.
TEST(TorchScriptModel, ReExecutionFromASavedStateIsBitwiseAtOneAndTwoThreads) {
  ASSERT_TRUE(use_deterministic_cpu_training().ok());
  const TensorDataset data = shard();
  auto worker = torchscript_model();
  at::set_num_threads(1);
  SgdTrainer training(*worker, data, synthetic_hyper(12), 9);
  ASSERT_TRUE(training.run(5).ok());
  const TrainingState midway = training.state();
  ASSERT_TRUE(training.run(7).ok());
  const TrainingState end = training.state();

  auto verifier = torchscript_model();
  at::set_num_threads(2);
  SgdTrainer replay(*verifier, data, synthetic_hyper(12), 9);
  ASSERT_TRUE(replay.load_state(midway).ok());
  ASSERT_TRUE(replay.run(7).ok());
  at::set_num_threads(1);
  EXPECT_TRUE(at::equal(replay.state().parameters, end.parameters));
  EXPECT_TRUE(at::equal(replay.state().momentum, end.momentum));
  EXPECT_EQ(replay.state().step, end.step);
}

// A verifier trains on a thread of its own that ran nothing before; it must
// take the steps a worker takes on a thread that did (training.cpp,
// SingleThreadedBlas: ATen's per-thread set-up used to undo MKL's count).
TEST(TorchScriptModel, AFreshThreadTrainsBitForBitLikeAWarmOne) {
  ASSERT_TRUE(use_deterministic_cpu_training().ok());
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  const TensorDataset data = shard();
  auto warm = torchscript_model();
  SgdTrainer here(*warm, data, synthetic_hyper(8), 4);
  ASSERT_TRUE(here.run(8).ok());
  auto fresh = torchscript_model();
  TrainingState there;
  std::thread([&] {
    SgdTrainer trainer(*fresh, data, synthetic_hyper(8), 4);
    EXPECT_TRUE(trainer.run(8).ok());
    there = trainer.state();
  }).join();
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(here.state().parameters, there.parameters))
      << "max difference " << (here.state().parameters - there.parameters).abs().max().item<double>();
}

TEST(TorchScriptModel, ASourceReadsTheArchiveAndNamesItsDigest) {
  const ModelSource source = torchscript_source();
  EXPECT_TRUE(source.is_archive());
  EXPECT_EQ(source.name, kTorchScriptModelName);
  EXPECT_EQ(source.archive_digest, blake2b_256(*source.archive));
  EXPECT_FALSE(read_model_archive(torchscript_fixture("absent.pt")).ok());
  EXPECT_NE(read_model_archive(torchscript_fixture("small.pt"), 100).status().message().find("over the limit"),
            std::string::npos);
}

// ---- the archive on the wire ------------------------------------------------

TEST(ArchiveTransfer, ChunksComeBackAsTheSameArchive) {
  const ModelSource source = torchscript_source();
  ArchiveTransfer transfer = archive_transfer(source, 4096);
  EXPECT_EQ(transfer.frames.size(), (source.archive->size() + 4095) / 4096);
  EXPECT_EQ(transfer.message.chunk_count, transfer.frames.size());
  Result<ModelSource> received = received_archive(transfer.message, transfer.frames, source.archive_digest);
  ASSERT_TRUE(received.ok()) << received.status().to_string();
  EXPECT_EQ(*received->archive, *source.archive);
}

TEST(ArchiveTransfer, TamperedTruncatedOversizedAndOtherArchivesAreRefused) {
  const ModelSource source = torchscript_source();
  ArchiveTransfer transfer = archive_transfer(source, 4096);
  // Another archive than the task names.
  EXPECT_EQ(received_archive(transfer.message, transfer.frames, Digest{1}).status().code(),
            Status::Code::kFailedPrecondition);
  // Over the worker's limit.
  EXPECT_EQ(received_archive(transfer.message, transfer.frames, source.archive_digest, 1000).status().code(),
            Status::Code::kResourceExhausted);
  // A chunk missing.
  Frames truncated(transfer.frames.begin(), transfer.frames.end() - 1);
  EXPECT_EQ(received_archive(transfer.message, truncated, source.archive_digest).status().code(),
            Status::Code::kCorruption);
  // One byte changed in transit.
  Frames tampered = transfer.frames;
  std::vector<uint8_t> chunk(tampered[1].bytes().begin(), tampered[1].bytes().end());
  chunk[7] ^= 1;
  tampered[1] = Frame::copy_of(chunk);
  const Status altered = received_archive(transfer.message, tampered, source.archive_digest).status();
  EXPECT_EQ(altered.code(), Status::Code::kCorruption);
  EXPECT_NE(altered.message().find("altered in transit"), std::string::npos) << altered.message();
}

}  // namespace
}  // namespace cohort
