// Proof of learning: the verifier: honest segments pass, in the
// cpu-exact and the tolerant profile, and the attacks of section 7 of
// shared/research/proof-of-learning.md fail (the fixture is in
// proof_of_learning_testing.h).
#include "cohort/proof_of_learning.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "proof_of_learning_testing.h"

namespace cohort::pol_testing {
namespace {

// ---- Honest segments ---------------------------------------------------------------

TEST_F(ProofOfLearningTest, HonestSegmentsPass) {
  const Trajectory t = prove();
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_PASSED(verify(t, j));
}

// The cnn is the model whose training differed between thread counts before
// the cpu-exact settings (oneDNN's convolution weight gradient).
TEST_F(ProofOfLearningTest, HonestSegmentPassesAtAnotherThreadCount) {
  for (const std::string name : {"cnn", "mlp"}) {
    SCOPED_TRACE(name);
    Trajectory t;
    {
      Threads one(1);
      t = prove({}, name);
    }
    Threads two(2);
    AuditContext c = context(t, name);
    for (uint32_t j : {1u, kSegments}) EXPECT_PASSED(verify(c, opening(t, j), name));
  }
}

// ---- Attacks: no or partial work ------------------------------------------------------

TEST_F(ProofOfLearningTest, RandomOrZeroUpdateWithAnHonestCommitmentFails) {
  const Trajectory honest = prove();
  Trajectory random = honest, zero = honest;
  at::Generator gen = at::detail::createCPUGenerator(5);
  random.delta = at::randn({honest.delta.numel()}, gen) * honest.delta.norm() / std::sqrt(double(honest.delta.numel()));
  zero.delta = at::zeros_like(honest.delta);
  EXPECT_REJECTED(verify(random, kSegments), "submitted update");
  EXPECT_REJECTED(verify(zero, kSegments), "submitted update");
}

TEST_F(ProofOfLearningTest, NoTrainingCommittedConsistentlyFails) {
  // The start model at every leaf and a zero update: every segment fails.
  const Trajectory idle = prove({.edit = [&](uint32_t, TrainingState& s) {
    s.parameters = start_.clone();
    s.momentum = at::zeros_like(start_);
  }});
  ASSERT_FALSE(idle.delta.ne(0).any().item<bool>());
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(idle, j), "re-execution differs");
}

TEST_F(ProofOfLearningTest, InterpolatedTrajectoryFailsItsSegments) {
  // Fang-style: the real end point, the states in between interpolated.
  const Trajectory honest = prove();
  const at::Tensor end = honest.states.back().parameters;
  const Trajectory fake = prove({.edit = [&](uint32_t j, TrainingState& s) {
    s.parameters = start_ + (end - start_) * (static_cast<double>(j) / kSegments);
  }});
  ASSERT_TRUE(at::equal(fake.delta, honest.delta) || at::allclose(fake.delta, honest.delta));
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(fake, j), "re-execution differs");
}

TEST_F(ProofOfLearningTest, SkippedLastStepFailsItsSegmentOnly) {
  const Trajectory t = prove({.skip_last_step_of = 2});
  EXPECT_PASSED(verify(t, 1));
  EXPECT_REJECTED(verify(t, 2), "re-execution differs from leaf 2");
  // Segment 3 is honest work from a committed (wrong) state: only sampling
  // segment 2 catches this worker.
  EXPECT_PASSED(verify(t, 3));
}

// ---- Attacks: hyperparameters and data ---------------------------------------------

TEST_F(ProofOfLearningTest, LearningRateTimesPoint99Fails) {
  Hyperparameters slower = task_hyper();
  slower.learning_rate *= 0.99;
  const Trajectory t = prove({.hyper = slower});
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(t, j), "re-execution differs");
}

TEST_F(ProofOfLearningTest, OtherMomentumOrWeightDecayFails) {
  Hyperparameters other = task_hyper();
  other.momentum = 0.8;
  EXPECT_REJECTED(verify(prove({.hyper = other}), 2), "re-execution differs");
  other = task_hyper();
  other.weight_decay = 0.0;
  EXPECT_REJECTED(verify(prove({.hyper = other}), 2), "re-execution differs");
}

TEST_F(ProofOfLearningTest, OtherDataOrderFails) {
  // Batches from another seed, committed under the task's batch digests...
  EXPECT_REJECTED(verify(prove({.seed = kSeed + 1}), 2), "re-execution differs");
  // ...or under their own: the digest check catches it before re-execution.
  EXPECT_REJECTED(verify(prove({.seed = kSeed + 1, .commit_own_batches = true}), 1), "batch digest of leaf 1");
}

TEST_F(ProofOfLearningTest, Bf16RoundedStatesAreRejectedInCpuExact) {
  const Trajectory t = prove({.edit = [](uint32_t, TrainingState& s) {
    s.parameters = s.parameters.to(at::kBFloat16).to(at::kFloat);
    s.momentum = s.momentum.to(at::kBFloat16).to(at::kFloat);
  }});
  for (uint32_t j = 1; j <= kSegments; ++j) EXPECT_REJECTED(verify(t, j), "re-execution differs");
  // Lossy storage of honest states is rejected too: revealed != leaf.
  const Trajectory honest = prove();
  SegmentOpening o = opening(honest, 2);
  o.before_state.parameters = o.before_state.parameters.to(at::kBFloat16).to(at::kFloat);
  EXPECT_REJECTED(verify(context(honest), o), "parameters do not match leaf 1");
}

TEST_F(ProofOfLearningTest, ForgedMomentumWithCorrectWeightsFails) {
  const Trajectory t = prove({.edit = [](uint32_t j, TrainingState& s) {
    if (j == 2) s.momentum = s.momentum * 0.5;
  }});
  const SegmentVerdict v = verify(t, 2);
  EXPECT_REJECTED(v, "(momentum)");
  EXPECT_NE(v.reason.find("0 (parameters)"), std::string::npos) << "the weights were right: " << v.reason;
}

// ---- Attacks: commitment fraud ----------------------------------------------------------

TEST_F(ProofOfLearningTest, RevealedStateOtherThanItsLeafFails) {
  const Trajectory t = prove();
  SegmentOpening params = opening(t, 2);
  params.after_state.parameters = params.after_state.parameters.clone();
  params.after_state.parameters[0] += 1e-3;
  EXPECT_REJECTED(verify(context(t), params), "after segment 2: parameters do not match leaf 2");
  SegmentOpening momentum = opening(t, 2);
  momentum.before_state.momentum = momentum.before_state.momentum * 2;
  EXPECT_REJECTED(verify(context(t), momentum), "momentum does not match leaf 1");
  SegmentOpening step = opening(t, 2);
  step.after_state.step += 1;
  EXPECT_REJECTED(verify(context(t), step), "is at step 9");
  SegmentOpening leaves = opening(t, 2);
  leaves.after = t.leaves[3];
  EXPECT_REJECTED(verify(context(t), leaves), "revealed leaves");
  SegmentOpening outside = opening(t, 2);
  outside.segment = kSegments + 1;
  EXPECT_REJECTED(verify(context(t), outside), "is not in [1, 3]");
}

TEST_F(ProofOfLearningTest, BadMerklePathOrRootFails) {
  const Trajectory t = prove();
  SegmentOpening o = opening(t, 2);
  o.after_proof[0][5] ^= 1;
  EXPECT_REJECTED(verify(context(t), o), "Merkle proof of leaf 2");
  SegmentOpening short_proof = opening(t, 2);
  short_proof.before_proof.pop_back();
  EXPECT_REJECTED(verify(context(t), short_proof), "Merkle proof of leaf 1");
  AuditContext other_root = context(t);
  other_root.root[0] ^= 1;
  EXPECT_REJECTED(verify(other_root, opening(t, 2)), "Merkle proof");
  // A leaf of another task (same states) does not verify under this task id.
  AuditContext other_task = context(t);
  other_task.task_id = kTaskId + 1;
  EXPECT_REJECTED(verify(other_task, opening(t, 2)), "Merkle proof");
}

TEST_F(ProofOfLearningTest, LastLeafOtherThanTheSubmittedUpdateFails) {
  Trajectory t = prove();
  EXPECT_PASSED(verify(t, kSegments));
  // Another worker's update (or this one plus noise) with this commitment.
  Trajectory copied = t;
  copied.delta = prove({.seed = kSeed + 7}).delta;
  EXPECT_REJECTED(verify(copied, kSegments), "submitted update");
  Trajectory noisy = t;
  noisy.delta = t.delta.clone();
  noisy.delta[10] += 1e-6;
  EXPECT_REJECTED(verify(noisy, kSegments), "submitted update");
  // An update sent as bfloat16 matches once the verifier rounds the same way.
  AuditContext bf16 = context(t);
  bf16.submitted_delta = t.delta.to(at::kBFloat16).to(at::kFloat);
  EXPECT_REJECTED(verify(bf16, opening(t, kSegments)), "submitted update");
  bf16.update_dtype = DType::kBFloat16;
  EXPECT_PASSED(verify(bf16, opening(t, kSegments)));
}

TEST_F(ProofOfLearningTest, Leaf0OtherThanTheAnnouncedModelFails) {
  // The worker trains honestly, but from a model of its own...
  starts_["mlp"] = make_model("mlp", 77)->flat_parameters();
  const Trajectory own_model = prove();
  starts_["mlp"] = start_;
  EXPECT_REJECTED(verify(context(own_model), opening(own_model, 1)), "does not start from the announced model");
  // ...or from momentum of its own (an injected direction).
  const Trajectory own_momentum = prove({.start_momentum = start_ * 0.01});
  EXPECT_REJECTED(verify(own_momentum, 1), "does not start from the task's momentum");
  const Commitment c{own_momentum.root, kSteps, kSegmentSteps, own_momentum.leaves};
  const Status anchors = check_anchors(own_momentum.root, kTaskId, kSteps, kSegmentSteps,
                                       digest_of(make_model()->layout(), start_), open_leaf(c, kTaskId, 0),
                                       open_leaf(c, kTaskId, kSegments));
  EXPECT_NE(anchors.message().find("leaf 0 does not start from the task's momentum"), std::string::npos)
      << anchors.to_string();
}

TEST_F(ProofOfLearningTest, AnchorsAreCheckedAtCommitTime) {
  const Trajectory t = prove();
  const Commitment commitment{t.root, kSteps, kSegmentSteps, t.leaves};
  const auto model = make_model();
  const Layout& layout = model->layout();
  const Digest announced = digest_of(layout, start_);
  const LeafOpening first = open_leaf(commitment, kTaskId, 0);
  const LeafOpening last = open_leaf(commitment, kTaskId, kSegments);
  EXPECT_TRUE(verify_leaf(t.root, kTaskId, kSegments + 1, first));
  EXPECT_FALSE(verify_leaf(t.root, kTaskId + 1, kSegments + 1, first));
  EXPECT_TRUE(check_anchors(t.root, kTaskId, kSteps, kSegmentSteps, announced, first, last).ok());
  EXPECT_THROW(open_leaf(commitment, kTaskId, kSegments + 1), std::out_of_range);

  auto rejects = [&](const LeafOpening& f, const LeafOpening& l, const std::string& text, const Digest& model) {
    const Status s = check_anchors(t.root, kTaskId, kSteps, kSegmentSteps, model, f, l);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << text;
    EXPECT_NE(s.message().find(text), std::string::npos) << s.to_string();
  };
  rejects(first, last, "leaf 0 is not the announced model", digest_of(layout, start_ * 2));
  rejects(last, last, "first anchor is leaf 3", announced);
  rejects(first, first, "last anchor is leaf 0", announced);
  LeafOpening bad_proof = last;
  bad_proof.proof[0][0] ^= 1;
  rejects(first, bad_proof, "last leaf (3) does not verify", announced);
  LeafOpening bad_step = last;
  bad_step.leaf.step = kSteps - 1;
  rejects(first, bad_step, "claims step 11", announced);
  EXPECT_EQ(check_anchors(t.root, kTaskId, kSteps, kSegmentSteps, announced, first, last, Digest{9}).code(),
            Status::Code::kInvalidArgument);
  // Anchors of a worker that started elsewhere.
  starts_["mlp"] = make_model("mlp", 77)->flat_parameters();
  const Trajectory elsewhere = prove();
  const Commitment other{elsewhere.root, kSteps, kSegmentSteps, elsewhere.leaves};
  EXPECT_FALSE(check_anchors(elsewhere.root, kTaskId, kSteps, kSegmentSteps, announced,
                             open_leaf(other, kTaskId, 0), open_leaf(other, kTaskId, kSegments))
                   .ok());
}

// ---- Tolerant profile -------------------------------------------------------------------

// Honest drift: the same SGD with each batch's gradient summed in two halves
// (the same mathematics, another rounding order, as other hardware does).
class TolerantTest : public ProofOfLearningTest {
 protected:
  Trajectory prove_in_halves() {
    const Hyperparameters hyper = task_hyper();
    auto model = make_model();
    std::vector<torch::Tensor> params = model->parameters();
    torch::optim::SGD optimizer(params, torch::optim::SGDOptions(hyper.learning_rate)
                                            .momentum(hyper.momentum)
                                            .weight_decay(hyper.weight_decay));
    auto state_of = [&](uint64_t step) {
      std::vector<torch::Tensor> buffers;
      for (auto& p : params) {
        auto it = optimizer.state().find(p.unsafeGetTensorImpl());
        buffers.push_back(it == optimizer.state().end()
                              ? torch::zeros({p.numel()})
                              : static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer().reshape(-1));
      }
      return TrainingState{model->flat_parameters(), torch::cat(buffers).clone(), step};
    };
    Trajectory t;
    t.states.push_back(state_of(0));
    t.leaves.push_back(leaf_of(model->layout(), t.states[0], 0, Digest{}));
    for (uint32_t j = 1; j <= kSegments; ++j) {
      const uint64_t begin = segment_begin(j, kSegmentSteps), end = segment_end(j, kSegmentSteps, kSteps);
      for (uint64_t step = begin; step < end; ++step) {
        const torch::Tensor index = torch::tensor(batch_indices(shard_.size(), hyper.batch_size, kSeed, step));
        optimizer.zero_grad();
        for (const torch::Tensor& half : index.chunk(2)) {
          const torch::Tensor loss = torch::nn::functional::cross_entropy(
              model->forward(shard_.images.index_select(0, half)), shard_.labels.index_select(0, half));
          (loss * (static_cast<double>(half.numel()) / static_cast<double>(index.numel()))).backward();
        }
        optimizer.step();
      }
      t.states.push_back(state_of(end));
      t.leaves.push_back(leaf_of(model->layout(), t.states[j], j,
                                 batch_digest(shard_.size(), hyper.batch_size, kSeed, begin, end)));
    }
    t.root = commitment_root(kTaskId, t.leaves);
    t.delta = t.states.back().parameters - t.states[0].parameters;
    return t;
  }

  AuditContext tolerant(const Trajectory& t, double tau) {
    AuditContext c = context(t);
    c.params = ProofParams{kSegmentSteps, DeterminismProfile::kTolerant, tau};
    return c;
  }
};

TEST_F(TolerantTest, HonestDriftPassesTolerantAndFailsCpuExact) {
  const Trajectory t = prove_in_halves();
  double worst = 0.0;
  for (uint32_t j = 1; j <= kSegments; ++j) {
    const SegmentVerdict v = verify(tolerant(t, kDefaultTolerance), opening(t, j));
    EXPECT_TRUE(v.passed) << "segment " << j << ": " << v.reason;
    worst = std::max(worst, v.relative_error);
  }
  EXPECT_GT(worst, 0.0) << "the two summation orders should differ somewhere";
  EXPECT_LT(worst, kDefaultTolerance / 10) << "honest drift near tau: recalibrate";
  EXPECT_REJECTED(verify(t, 2), "cpu-exact requires equal bits");
}

TEST_F(TolerantTest, ErrorJustAboveTauFailsAndJustBelowPasses) {
  const double tau = kDefaultTolerance;
  const at::Tensor before = prove().states[1].parameters;
  for (const double factor : {0.8, 1.2}) {
    SCOPED_TRACE(factor);
    // Perturb the state after segment 2 by factor * tau of the segment's change.
    const Trajectory t = prove({.edit = [&](uint32_t j, TrainingState& s) {
      if (j != 2) return;
      at::Generator gen = at::detail::createCPUGenerator(11);
      const at::Tensor noise = at::randn({s.parameters.numel()}, gen);
      const double change = (s.parameters - before).norm().item<double>();
      s.parameters = s.parameters + noise * (factor * tau * change / noise.norm().item<double>());
    }});
    const SegmentVerdict v = verify(tolerant(t, tau), opening(t, 2));
    EXPECT_NEAR(v.relative_error, factor * tau, 0.05 * tau) << v.reason;
    EXPECT_EQ(v.passed, factor < 1.0) << v.reason;
    if (!v.passed) {
      EXPECT_NE(v.reason.find("> tolerance"), std::string::npos) << v.reason;
    }
  }
  // Cheats stay far above tau.
  Hyperparameters slower = task_hyper();
  slower.learning_rate *= 0.99;
  const Trajectory lr = prove({.hyper = slower});
  EXPECT_REJECTED(verify(tolerant(lr, tau), opening(lr, 2)), "> tolerance");
  const Trajectory skipped = prove({.skip_last_step_of = 2});
  EXPECT_REJECTED(verify(tolerant(skipped, tau), opening(skipped, 2)), "> tolerance");
}

TEST_F(TolerantTest, TolerantUpdateCheckAllowsDriftOnlyWithinTau) {
  const Trajectory t = prove();
  AuditContext c = tolerant(t, kDefaultTolerance);
  c.submitted_delta = t.delta * (1 + kDefaultTolerance / 2);
  EXPECT_PASSED(verify(c, opening(t, kSegments)));
  c.submitted_delta = t.delta * (1 + 2 * kDefaultTolerance);
  EXPECT_REJECTED(verify(c, opening(t, kSegments)), "submitted update differs");
}

}  // namespace
}  // namespace cohort::pol_testing
