// What a worker keeps on disk so that a crash costs an honest worker
// nothing: the Prover's unsettled tasks (a challenge may still come after a
// restart) and the momentum buffers tasks continue (MomentumStore). The
// cpu-exact environment is set up by cheats_test.cpp for the whole binary.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <fstream>

#include "../synthetic_task.h"
#include "cohort/crypto.h"
#include "cohort/durable_file.h"
#include "momentum_store.h"
#include "prover.h"

namespace cohort {
namespace {

constexpr uint64_t kTaskId = (uint64_t{3} << 32) | 1;  // round 3, worker 1

class ProverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() / ("cohort-prover-" + std::to_string(::getpid()));
    std::filesystem::remove_all(root_);
    task_.round = 3;
    task_.task_id = kTaskId;
    task_.model_name = "mlp";
    task_.hyper = synthetic_hyper(12);
    task_.seed = 5;
    task_.proof.params = ProofParams{2, DeterminismProfile::kCpuExact, 0.0};
    task_.proof.total_steps = 12;
    task_.proof.secret_commitment = secret_commitment(secret_);
    task_.proof.challenge = ChallengeParams{1.0, 2};  // always audited
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  // Trains task_ with a prover over root_ and returns the challenge the
  // coordinator would send for it.
  ChallengeMessage train_and_challenge(Prover& prover) {
    auto model = std::move(Model::create("mlp", 1)).value();
    auto trained = prover.train(task_, *model, shard_, nullptr);
    EXPECT_TRUE(trained.ok()) << trained.status().to_string();
    ChallengeMessage message;
    message.round = task_.round;
    message.task_id = task_.task_id;
    message.secret = secret_;
    message.challenge = derive_challenge(secret_, trained->commitment.root, identity_.public_key(), kTaskId,
                                         segment_count(12, 2), task_.proof.challenge);
    return message;
  }

  std::filesystem::path task_dir() const { return root_ / ("task-" + std::to_string(kTaskId)); }

  Identity identity_ = Identity::generate();
  Digest secret_ = blake2b_256(std::vector<uint8_t>{1, 2, 3});
  Task task_;
  TensorDataset shard_ = synthetic_shard();
  std::filesystem::path root_;
};

TEST_F(ProverTest, AnUnsettledTaskSurvivesARestartAndItsChallengeIsAnsweredAlike) {
  std::optional<Prover::Answer> before_crash;
  ChallengeMessage challenge;
  {
    Prover first(identity_, root_);
    challenge = train_and_challenge(first);
    auto answer = first.answer(challenge);
    ASSERT_TRUE(answer.ok()) << answer.status().to_string();
    before_crash = std::move(*answer);
  }
  ASSERT_TRUE(before_crash.has_value());

  Prover restarted(identity_, root_);
  EXPECT_EQ(restarted.pending_tasks(), std::vector<uint64_t>{kTaskId});
  auto answer = restarted.answer(challenge);
  ASSERT_TRUE(answer.ok()) << answer.status().to_string();
  ASSERT_TRUE(answer->has_value());
  EXPECT_EQ((*answer)->reveal, before_crash->reveal);
  EXPECT_EQ((*answer)->states.layout, before_crash->states.layout);
  EXPECT_TRUE((*answer)->states.flat.equal(before_crash->states.flat));

  restarted.settle(kTaskId);
  EXPECT_FALSE(std::filesystem::exists(task_dir()));
  EXPECT_TRUE(Prover(identity_, root_).pending_tasks().empty());
}

TEST_F(ProverTest, ATrainingThatDidNotFinishIsDeletedOnRestart) {
  {
    Prover first(identity_, root_);
    train_and_challenge(first);
  }
  // As a crash before the task file was written leaves it.
  std::filesystem::remove(task_dir() / "task.msg");
  Prover restarted(identity_, root_);
  EXPECT_TRUE(restarted.pending_tasks().empty());
  EXPECT_FALSE(std::filesystem::exists(task_dir()));
}

TEST_F(ProverTest, AStoredCommitmentThatDoesNotHashToItsRootIsDropped) {
  {
    Prover first(identity_, root_);
    train_and_challenge(first);
  }
  const std::filesystem::path path = task_dir() / "commitment.json";
  std::string json = read_whole_file(path).value();
  const size_t step = json.find("\"step\":2");
  ASSERT_NE(step, std::string::npos) << json;
  json.replace(step, 8, "\"step\":3");
  std::ofstream(path, std::ios::trunc) << json;
  Prover restarted(identity_, root_);
  EXPECT_TRUE(restarted.pending_tasks().empty());
  EXPECT_FALSE(std::filesystem::exists(task_dir()));
}

// Momentum buffers as training leaves them: one per parameter, the model's
// shapes, canonical order.
MomentumBuffers buffers_like(const Model& model, float scale) {
  MomentumBuffers buffers;
  float value = scale;
  for (const TensorSpec& spec : model.layout().tensors) {
    buffers.push_back(at::full(spec.shape, value, at::kFloat));
    value += scale;
  }
  return buffers;
}

at::Tensor flat(const MomentumBuffers& buffers) {
  std::vector<at::Tensor> parts;
  for (const at::Tensor& b : buffers) parts.push_back(b.reshape({-1}));
  return at::cat(parts);
}

TEST_F(ProverTest, TheMomentumStoreFindsKeptBuffersByDigestAcrossInstances) {
  auto model = std::move(Model::create("mlp", 1)).value();
  const Layout& layout = model->layout();
  const MomentumBuffers kept = buffers_like(*model, 0.25f);
  const Digest digest = momentum_digest(layout, flat(kept));
  ASSERT_TRUE(MomentumStore(root_).keep("mlp", digest, kept).ok());

  MomentumStore restarted(root_);
  auto found = restarted.find("mlp", layout, digest, at::kCPU);
  ASSERT_TRUE(found.ok()) << found.status().to_string();
  ASSERT_EQ(found->size(), kept.size());
  for (size_t i = 0; i < kept.size(); ++i) EXPECT_TRUE((*found)[i].equal(kept[i])) << i;

  auto fresh = restarted.find("mlp", layout, fresh_momentum_digest(), at::kCPU);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->empty());
  EXPECT_EQ(restarted.find("mlp", layout, blake2b_256(std::vector<uint8_t>{7}), at::kCPU).status().code(),
            Status::Code::kNotFound);
  EXPECT_EQ(restarted.find("cnn", layout, digest, at::kCPU).status().code(), Status::Code::kNotFound);
}

TEST_F(ProverTest, TheMomentumStoreRefusesAFileThatNoLongerHashesToItsNameAndKeepsOnlyTheNewest) {
  auto model = std::move(Model::create("mlp", 1)).value();
  const Layout& layout = model->layout();
  MomentumStore store(root_);
  std::vector<Digest> digests;
  for (int i = 1; i <= static_cast<int>(MomentumStore::kKeptPerModel) + 2; ++i) {
    const MomentumBuffers buffers = buffers_like(*model, 0.1f * static_cast<float>(i));
    digests.push_back(momentum_digest(layout, flat(buffers)));
    ASSERT_TRUE(store.keep("mlp", digests.back(), buffers).ok());
  }
  EXPECT_FALSE(store.find("mlp", layout, digests[0], at::kCPU).ok());
  EXPECT_FALSE(store.find("mlp", layout, digests[1], at::kCPU).ok());
  for (size_t i = 2; i < digests.size(); ++i) EXPECT_TRUE(store.find("mlp", layout, digests[i], at::kCPU).ok()) << i;

  const std::filesystem::path newest = root_ / ("mlp." + to_hex(digests.back()) + ".momentum");
  ASSERT_TRUE(std::filesystem::exists(newest));
  std::fstream file(newest, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(100);
  file.put('\x7f');
  file.close();
  auto corrupted = store.find("mlp", layout, digests.back(), at::kCPU);
  EXPECT_EQ(corrupted.status().code(), Status::Code::kNotFound);
  EXPECT_NE(corrupted.status().message().find("does not hash to its name"), std::string::npos);
}

}  // namespace
}  // namespace cohort
