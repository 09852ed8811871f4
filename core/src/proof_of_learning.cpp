// Proof of learning: segments, leaves, the worker's commitment, challenges
// and the verifier's re-execution. Checkpoint files and determinism
// settings are in proof_of_learning_store.cpp and
// proof_of_learning_determinism.cpp.
#include "cohort/proof_of_learning.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "cohort/merkle.h"
#include "cohort/random.h"

namespace cohort {
namespace {

std::string scientific(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.3g", value);
  return text;
}

std::string leaf_name(uint32_t index) { return "leaf " + std::to_string(index); }

// Hashes the batches of [first_step, end_step) from a schedule that the
// caller keeps across segments (one shuffle per epoch, not per step).
Digest batch_digest_from(BatchSchedule& schedule, int64_t shard_size, uint32_t batch_size, uint64_t first_step,
                         uint64_t end_step) {
  CanonicalBytes header("cohort-pol-batches-v1");
  header.i64(shard_size).u32(batch_size).u64(first_step).u64(end_step);
  Hasher hasher;
  hasher.update(header.data());
  for (uint64_t step = first_step; step < end_step; ++step) {
    const std::span<const int64_t> batch = schedule.indices(step);
    hasher.update_u64(batch.size());
    for (int64_t index : batch) hasher.update_u64(static_cast<uint64_t>(index));
  }
  return hasher.finish();
}

// ||got - claimed|| / ||claimed - before||, in double. Infinity when the
// segment changed nothing but the re-execution differs.
double relative_l2(const at::Tensor& got, const at::Tensor& claimed, const at::Tensor& before) {
  const at::Tensor c = claimed.to(torch::kDouble);
  const double error = (got.to(torch::kDouble) - c).norm().item<double>();
  const double change =
      before.defined() ? (c - before.to(torch::kDouble)).norm().item<double>() : c.norm().item<double>();
  if (error == 0.0) return 0.0;
  return change > 0.0 ? error / change : std::numeric_limits<double>::infinity();
}

// The flat tensor as it arrives after travelling in `dtype`.
at::Tensor rounded_to(const at::Tensor& flat, DType dtype) {
  switch (dtype) {
    case DType::kFloat16: return flat.to(torch::kHalf).to(torch::kFloat);
    case DType::kBFloat16: return flat.to(torch::kBFloat16).to(torch::kFloat);
    case DType::kFloat32:
    case DType::kFloat64: return flat;  // float64 holds every float32 exactly
  }
  return flat;
}

bool is_flat_float(const at::Tensor& t, int64_t count) {
  return t.defined() && t.dim() == 1 && t.numel() == count && t.scalar_type() == torch::kFloat;
}

SegmentVerdict fail(std::string reason) {
  SegmentVerdict verdict;
  verdict.reason = std::move(reason);
  return verdict;
}

}  // namespace

uint32_t segment_count(uint32_t total_steps, uint32_t segment_steps) {
  if (total_steps == 0 || segment_steps == 0) return 0;
  return static_cast<uint32_t>((uint64_t{total_steps} + segment_steps - 1) / segment_steps);
}

uint64_t segment_begin(uint32_t segment, uint32_t segment_steps) {
  return segment == 0 ? 0 : uint64_t{segment - 1} * segment_steps;
}

uint64_t segment_end(uint32_t segment, uint32_t segment_steps, uint32_t total_steps) {
  return std::min<uint64_t>(uint64_t{segment} * segment_steps, total_steps);
}

Digest fresh_momentum_digest() {
  static const Digest digest = blake2b_256(CanonicalBytes("cohort-pol-fresh-momentum-v1").data());
  return digest;
}

Digest momentum_digest(const Layout& layout, const at::Tensor& momentum) {
  if (!momentum.defined() || !momentum.ne(0).any().item<bool>()) return fresh_momentum_digest();
  return digest_of(layout, momentum);
}

Digest batch_digest(int64_t shard_size, uint32_t batch_size, uint64_t seed, uint64_t first_step,
                    uint64_t end_step) {
  BatchSchedule schedule(shard_size, batch_size, seed);
  return batch_digest_from(schedule, shard_size, batch_size, first_step, end_step);
}

Digest leaf_hash(uint64_t task_id, const LeafData& leaf) {
  CanonicalBytes bytes("cohort-pol-leaf-v1");
  bytes.u64(task_id).u32(leaf.index).u64(leaf.step).bytes(leaf.parameters).bytes(leaf.momentum).bytes(leaf.batches);
  return merkle_leaf_hash(bytes.data());
}

LeafData leaf_of(const Layout& layout, const TrainingState& state, uint32_t index, const Digest& batches) {
  LeafData leaf;
  leaf.index = index;
  leaf.step = state.step;
  leaf.parameters = digest_of(layout, state.parameters);
  leaf.momentum = momentum_digest(layout, state.momentum);
  leaf.batches = batches;
  return leaf;
}

Digest commitment_root(uint64_t task_id, const std::vector<LeafData>& leaves) {
  std::vector<Digest> hashes;
  hashes.reserve(leaves.size());
  for (const LeafData& leaf : leaves) hashes.push_back(leaf_hash(task_id, leaf));
  return MerkleTree(std::move(hashes)).root();
}

Result<ProvenTraining> train_with_proof(Model& model, const TensorDataset& shard, const Hyperparameters& hyper,
                                        uint64_t seed, uint64_t task_id, const ProofParams& params,
                                        const std::filesystem::path& checkpoint_dir, MomentumBuffers* momentum) {
  if (shard.size() == 0) return Status::failed_precondition("the local shard is empty");
  if (hyper.batch_size == 0) return Status::invalid_argument("batch size must be >= 1");
  if (params.segment_steps == 0) return Status::invalid_argument("proof of learning needs segment_steps >= 1");
  const auto start_time = std::chrono::steady_clock::now();
  std::error_code error;
  std::filesystem::create_directories(checkpoint_dir, error);
  if (error) return Status::io_error("cannot create " + checkpoint_dir.string() + ": " + error.message());

  const Layout& layout = model.layout();
  const at::Tensor start = model.flat_parameters();
  SgdTrainer trainer(model, shard, hyper, seed);
  if (momentum != nullptr) {
    // Buffers that do not match the model (or none yet) leave momentum fresh,
    // as in train_locally.
    const Status restored = trainer.set_momentum_buffers(*momentum);
    static_cast<void>(restored);
  }
  const uint32_t total = planned_steps(hyper, shard.size());
  const uint32_t segments = segment_count(total, params.segment_steps);
  BatchSchedule schedule(shard.size(), hyper.batch_size, seed);

  Commitment commitment;
  commitment.total_steps = total;
  commitment.segment_steps = params.segment_steps;
  commitment.leaves.reserve(segments + 1);
  for (uint32_t j = 0; j <= segments; ++j) {
    Digest batches{};
    if (j > 0) {
      const uint64_t begin = segment_begin(j, params.segment_steps);
      const uint64_t end = segment_end(j, params.segment_steps, total);
      COHORT_RETURN_IF_ERROR(trainer.run(end - begin));
      batches = batch_digest_from(schedule, shard.size(), hyper.batch_size, begin, end);
    }
    const TrainingState state = trainer.state();
    LeafData leaf = leaf_of(layout, state, j, batches);
    COHORT_RETURN_IF_ERROR(
        write_training_state(checkpoint_path(checkpoint_dir, j), state, leaf_hash(task_id, leaf)));
    commitment.leaves.push_back(std::move(leaf));
  }
  commitment.root = commitment_root(task_id, commitment.leaves);
  if (momentum != nullptr) *momentum = trainer.momentum_buffers();

  ProvenTraining out;
  out.commitment = std::move(commitment);
  LocalTraining& training = out.training;
  training.samples_seen = trainer.samples_seen();
  training.metrics.steps = total;
  training.metrics.local_loss = trainer.mean_loss();
  training.metrics.local_accuracy = trainer.accuracy();
  training.delta = model.flat_parameters() - start;
  training.metrics.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return out;
}

Result<SegmentOpening> open_segment(const Commitment& commitment, uint64_t task_id,
                                    const std::filesystem::path& checkpoint_dir, uint32_t segment) {
  const uint32_t segments = segment_count(commitment.total_steps, commitment.segment_steps);
  if (segment == 0 || segment > segments || commitment.leaves.size() != size_t{segments} + 1) {
    return Status::invalid_argument("segment " + std::to_string(segment) + " is not in [1, " +
                                    std::to_string(segments) + "] of this commitment");
  }
  SegmentOpening out;
  out.segment = segment;
  out.before = commitment.leaves[segment - 1];
  out.after = commitment.leaves[segment];
  std::vector<Digest> hashes;
  for (const LeafData& leaf : commitment.leaves) hashes.push_back(leaf_hash(task_id, leaf));
  const MerkleTree tree(hashes);
  out.before_proof = tree.proof(segment - 1);
  out.after_proof = tree.proof(segment);
  for (uint32_t index : {segment - 1, segment}) {
    const std::filesystem::path path = checkpoint_path(checkpoint_dir, index);
    COHORT_ASSIGN_OR_RETURN(StoredState stored, read_training_state(path));
    if (stored.leaf != hashes[index]) {
      return Status::corruption(path.string() + " was written for another commitment (its leaf hash differs from " +
                                leaf_name(index) + ")");
    }
    (index == segment ? out.after_state : out.before_state) = std::move(stored.state);
  }
  return out;
}

LeafOpening open_leaf(const Commitment& commitment, uint64_t task_id, uint32_t index) {
  if (index >= commitment.leaves.size()) {
    throw std::out_of_range("open_leaf: " + leaf_name(index) + " of " + std::to_string(commitment.leaves.size()));
  }
  std::vector<Digest> hashes;
  for (const LeafData& leaf : commitment.leaves) hashes.push_back(leaf_hash(task_id, leaf));
  return LeafOpening{commitment.leaves[index], MerkleTree(std::move(hashes)).proof(index)};
}

bool verify_leaf(const Digest& root, uint64_t task_id, uint32_t leaf_count, const LeafOpening& opening) {
  return verify_merkle_proof(root, opening.leaf.index, leaf_count, leaf_hash(task_id, opening.leaf), opening.proof);
}

Digest secret_commitment(const Digest& secret) {
  return blake2b_256(CanonicalBytes("cohort-pol-secret-v1").bytes(secret).data());
}

Challenge derive_challenge(const Digest& secret, const Digest& root, const PublicKey& worker, uint64_t task_id,
                           uint32_t segment_count, const ChallengeParams& params) {
  CanonicalBytes bytes("cohort-pol-challenge-v1");
  bytes.bytes(secret).bytes(root).bytes(worker).u64(task_id);
  const Digest seed = blake2b_256(bytes.data());
  uint64_t seed_word = 0;
  for (int i = 0; i < 8; ++i) seed_word |= uint64_t{seed[i]} << (8 * i);
  Rng rng(seed_word);

  Challenge challenge;
  if (segment_count == 0) return challenge;
  challenge.audited = rng.uniform_double() < params.audit_probability;
  if (!challenge.audited) return challenge;
  // Partial Fisher-Yates over [1, segment_count - 1]; the last is always in.
  std::vector<uint32_t> candidates(segment_count - 1);
  std::iota(candidates.begin(), candidates.end(), 1u);
  const size_t picks = std::min<size_t>(params.segments_per_audit, candidates.size());
  for (size_t i = 0; i < picks; ++i) {
    const size_t j = i + static_cast<size_t>(rng.uniform_below(candidates.size() - i));
    std::swap(candidates[i], candidates[j]);
  }
  challenge.segments.assign(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(picks));
  challenge.segments.push_back(segment_count);
  std::sort(challenge.segments.begin(), challenge.segments.end());
  return challenge;
}

SegmentVerdict verify_segment(Model& scratch, const AuditContext& context, const SegmentOpening& opening) {
  const auto start_time = std::chrono::steady_clock::now();
  SegmentVerdict verdict = [&]() -> SegmentVerdict {
    const uint32_t k = context.params.segment_steps;
    const uint32_t segments = segment_count(context.total_steps, k);
    const uint32_t j = opening.segment;
    const std::string name = "segment " + std::to_string(j);
    if (context.shard == nullptr || context.shard->size() == 0) return fail("the audit has no shard");
    const int64_t count = scratch.parameter_count();
    if (!is_flat_float(context.start_parameters, count)) {
      return fail("the announced model does not fit the scratch model");
    }

    // 1. Shape of the opening.
    if (j == 0 || j > segments) {
      return fail(name + " is not in [1, " + std::to_string(segments) + "]");
    }
    const uint64_t begin = segment_begin(j, k);
    const uint64_t end = segment_end(j, k, context.total_steps);
    if (opening.before.index != j - 1 || opening.after.index != j) {
      return fail(name + ": the revealed leaves are " + std::to_string(opening.before.index) + " and " +
                  std::to_string(opening.after.index) + ", not " + std::to_string(j - 1) + " and " +
                  std::to_string(j));
    }
    if (opening.before.step != begin || opening.after.step != end) {
      return fail(name + ": the leaves claim steps " + std::to_string(opening.before.step) + " and " +
                  std::to_string(opening.after.step) + ", the task says " + std::to_string(begin) + " and " +
                  std::to_string(end));
    }

    // 2. Merkle proofs.
    const uint32_t leaf_count = segments + 1;
    if (!verify_leaf(context.root, context.task_id, leaf_count, LeafOpening{opening.before, opening.before_proof})) {
      return fail(name + ": the Merkle proof of " + leaf_name(j - 1) + " does not verify against the root");
    }
    if (!verify_leaf(context.root, context.task_id, leaf_count, LeafOpening{opening.after, opening.after_proof})) {
      return fail(name + ": the Merkle proof of " + leaf_name(j) + " does not verify against the root");
    }

    // 3. Revealed states against their leaves.
    const Layout& layout = scratch.layout();
    const bool with_momentum = context.hyper.momentum != 0.0;
    for (const auto* side : {&opening.before_state, &opening.after_state}) {
      const bool after = side == &opening.after_state;
      const LeafData& leaf = after ? opening.after : opening.before;
      const std::string which = std::string("the revealed state ") + (after ? "after " : "before ") + name;
      if (!is_flat_float(side->parameters, count)) {
        return fail(which + " does not have " + std::to_string(count) + " float32 parameters");
      }
      if (side->momentum.defined() && (!with_momentum || !is_flat_float(side->momentum, count))) {
        return fail(which + " has a momentum buffer that does not fit the task");
      }
      if (side->step != leaf.step) {
        return fail(which + " is at step " + std::to_string(side->step) + ", " + leaf_name(leaf.index) +
                    " says " + std::to_string(leaf.step));
      }
      if (digest_of(layout, side->parameters) != leaf.parameters) {
        return fail(which + ": parameters do not match " + leaf_name(leaf.index));
      }
      if (momentum_digest(layout, side->momentum) != leaf.momentum) {
        return fail(which + ": momentum does not match " + leaf_name(leaf.index));
      }
    }

    // 4. Batch digests from the seed.
    const int64_t shard_size = context.shard->size();
    const uint32_t batch_size = context.hyper.batch_size;
    const Digest before_batches =
        j == 1 ? Digest{}
               : batch_digest(shard_size, batch_size, context.seed, segment_begin(j - 1, k), begin);
    if (opening.before.batches != before_batches) {
      return fail(name + ": the batch digest of " + leaf_name(j - 1) + " differs from the task's batch order");
    }
    if (opening.after.batches != batch_digest(shard_size, batch_size, context.seed, begin, end)) {
      return fail(name + ": the batch digest of " + leaf_name(j) + " differs from the task's batch order");
    }

    // 5. The first segment starts from the announced model.
    if (j == 1) {
      if (opening.before.parameters != digest_of(layout, context.start_parameters)) {
        return fail("segment 1 does not start from the announced model (leaf 0 differs)");
      }
      if (opening.before.momentum != context.start_momentum) {
        return fail("segment 1 does not start from the task's momentum (leaf 0 differs)");
      }
    }

    // 6. The last segment ends at the submitted update.
    const bool exact = context.params.profile == DeterminismProfile::kCpuExact;
    if (j == segments) {
      if (!is_flat_float(context.submitted_delta, count)) {
        return fail("the submitted update does not have " + std::to_string(count) + " float32 values");
      }
      const at::Tensor expected =
          rounded_to(opening.after_state.parameters - context.start_parameters, context.update_dtype);
      if (exact) {
        if (!at::equal(expected, context.submitted_delta)) {
          return fail("the submitted update is not the last leaf's parameters minus the announced model");
        }
      } else {
        const double error = relative_l2(context.submitted_delta, expected, at::Tensor());
        if (!(error <= context.params.tolerance)) {
          return fail("the submitted update differs from the last leaf's parameters minus the announced model "
                      "by " + scientific(error) + " (relative L2) > tolerance " +
                      scientific(context.params.tolerance));
        }
      }
    }

    // 7. Re-execution.
    SgdTrainer trainer(scratch, *context.shard, context.hyper, context.seed);
    const Status loaded = trainer.load_state(opening.before_state);
    if (!loaded.ok()) return fail(name + ": " + loaded.message());
    const Status ran = trainer.run(end - begin);
    if (!ran.ok()) return fail(name + ": re-execution failed: " + ran.message());
    const TrainingState got = trainer.state();
    SegmentVerdict out;
    const double param_error =
        relative_l2(got.parameters, opening.after_state.parameters, opening.before_state.parameters);
    double momentum_error = 0.0;
    if (with_momentum) {
      const at::Tensor claimed = opening.after_state.momentum.defined()
                                     ? opening.after_state.momentum
                                     : torch::zeros({count}, torch::kFloat);
      const at::Tensor before = opening.before_state.momentum.defined()
                                    ? opening.before_state.momentum
                                    : torch::zeros({count}, torch::kFloat);
      momentum_error = relative_l2(got.momentum, claimed, before);
    }
    out.relative_error = std::max(param_error, momentum_error);
    const std::string errors = "relative L2 error " + scientific(param_error) + " (parameters), " +
                               scientific(momentum_error) + " (momentum)";
    if (exact) {
      if (digest_of(layout, got.parameters) != opening.after.parameters ||
          momentum_digest(layout, got.momentum) != opening.after.momentum) {
        out.reason = name + ": re-execution differs from " + leaf_name(j) + " (" + errors +
                     "; cpu-exact requires equal bits)";
        return out;
      }
    } else if (!(out.relative_error <= context.params.tolerance)) {
      out.reason = name + ": re-execution differs from " + leaf_name(j) + " by " + errors + " > tolerance " +
                   scientific(context.params.tolerance);
      return out;
    }
    out.passed = true;
    return out;
  }();
  verdict.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return verdict;
}

Status check_anchors(const Digest& root, uint64_t task_id, uint32_t total_steps, uint32_t segment_steps,
                     const Digest& start_model_digest, const LeafOpening& first, const LeafOpening& last,
                     const Digest& start_momentum) {
  const uint32_t segments = segment_count(total_steps, segment_steps);
  if (segments == 0) return Status::invalid_argument("the task has no segments (total or segment steps 0)");
  const uint32_t leaf_count = segments + 1;
  const LeafData& f = first.leaf;
  if (f.index != 0) return Status::invalid_argument("the first anchor is leaf " + std::to_string(f.index) + ", not 0");
  if (f.step != 0) return Status::invalid_argument("leaf 0 claims step " + std::to_string(f.step) + ", not 0");
  if (f.batches != Digest{}) return Status::invalid_argument("leaf 0 has a batch digest (it must be zero)");
  if (f.parameters != start_model_digest) {
    return Status::invalid_argument("leaf 0 is not the announced model (parameter digest " + to_hex(f.parameters) +
                                    ", announced " + to_hex(start_model_digest) + ")");
  }
  if (f.momentum != start_momentum) return Status::invalid_argument("leaf 0 does not start from the task's momentum");
  if (!verify_leaf(root, task_id, leaf_count, first)) {
    return Status::invalid_argument("the Merkle proof of leaf 0 does not verify against the root");
  }
  const LeafData& l = last.leaf;
  if (l.index != segments) {
    return Status::invalid_argument("the last anchor is leaf " + std::to_string(l.index) + ", not " +
                                    std::to_string(segments));
  }
  if (l.step != total_steps) {
    return Status::invalid_argument("the last leaf claims step " + std::to_string(l.step) + ", the task has " +
                                    std::to_string(total_steps) + " steps");
  }
  if (!verify_leaf(root, task_id, leaf_count, last)) {
    return Status::invalid_argument("the Merkle proof of the last leaf (" + std::to_string(segments) +
                                    ") does not verify against the root");
  }
  return Status();
}

}  // namespace cohort
