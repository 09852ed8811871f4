// Proof of learning: the worker trains deterministically in segments of k
// SGD steps, commits to the state after every segment with a Merkle root,
// and later reveals the segments a challenge picks; the coordinator
// re-executes a revealed segment and compares. No networking here: these
// are the pieces the worker and the coordinator call. The formats, digests
// and measured numbers are in docs/PROOF_OF_LEARNING.md.
//
//   segment j (1-based) covers steps [segment_begin(j), segment_end(j))
//   leaf j   = the state after segment j and the batches it used (leaf 0:
//              the start state, zero batch digest); segment_count + 1 leaves
//   root     = MerkleTree (merkle.h) over leaf_hash(task_id, leaf j)
//
// Thread safety: free functions are thread-safe unless they take a Model
// (which is not). Errors are values; a precondition that only a bug can
// break (an index past the end) throws std::out_of_range.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "cohort/commitment.h"
#include "cohort/crypto.h"
#include "cohort/models.h"
#include "cohort/protocol.h"
#include "cohort/status.h"
#include "cohort/tensor_codec.h"
#include "cohort/training.h"

namespace cohort {

// ---- Determinism ----------------------------------------------------------

// Makes CPU training bitwise reproducible across intra-op thread counts and
// processes (the "cpu-exact" profile); the worker and the verifier call it
// first thing in main, before any tensor operation:
//   - oneDNN (mkldnn) off: its convolution weight gradient depends on the
//     thread count; ATen's own convolution does not;
//   - BLAS single-threaded inside SgdTrainer (set_single_threaded_blas,
//     training.h): MKL splits some small products (a 10-class layer, its
//     weight gradient) into per-thread partial sums; ATen's own kernels keep
//     their threads;
//   - on x86-64, ATen's CPU kernels pinned to AVX2 (ATEN_CPU_CAPABILITY=avx2
//     unless already set), so that AVX2 and AVX-512 machines run the same
//     kernels (their results differ bit for bit otherwise).
// Then checks the result: two SGD steps of a small "mlp" at 1 and at 2
// threads must give equal parameters.
// Errors: FailedPrecondition when ATen dispatched before this call (set
// ATEN_CPU_CAPABILITY=avx2 in the environment instead); Unavailable on an
// x86-64 CPU without AVX2; Internal when the check still differs. The
// settings are applied either way. Idempotent; not thread-safe (call it
// before starting threads).
Status use_deterministic_cpu_training();

// Suggested tau for DeterminismProfile::kTolerant (relative L2 error, see
// verify_segment), calibrated in docs/PROOF_OF_LEARNING.md for segments of
// 10 steps: honest drift (float64 re-execution, oneDNN on/off) has a median
// near 1e-6 but a heavy tail (presumably rounding that flips a ReLU or
// max-pool decision): 0 or 1 segment in 50 above 1e-3, one at 4e-2, while
// the smallest cheat measured (a bfloat16-rounded start state) is at 1.9e-2. A
// tolerant failure can therefore be honest: treat it as a dispute to settle
// (step by step, or by a second verifier), not as proof of cheating.
inline constexpr double kDefaultTolerance = 1e-3;

// ---- Segments and leaves --------------------------------------------------

// ceil(total_steps / segment_steps); 0 when either is 0.
uint32_t segment_count(uint32_t total_steps, uint32_t segment_steps);
// (segment - 1) * segment_steps, for segment >= 1.
uint64_t segment_begin(uint32_t segment, uint32_t segment_steps);
// min(segment * segment_steps, total_steps): the last segment may be shorter.
uint64_t segment_end(uint32_t segment, uint32_t segment_steps, uint32_t total_steps);

// The digest of a momentum buffer: digest_of(layout, momentum) (as for
// parameters), or fresh_momentum_digest() when it is undefined or all zero
// (a task without momentum, or momentum that has not started: the trainer
// treats both alike, see SgdTrainer).
Digest momentum_digest(const Layout& layout, const at::Tensor& momentum);
// BLAKE2b-256 of CanonicalBytes("cohort-pol-fresh-momentum-v1").
Digest fresh_momentum_digest();

// BLAKE2b-256 over CanonicalBytes("cohort-pol-batches-v1") with shard_size,
// batch_size, first_step and end_step, then for every step in
// [first_step, end_step) its index count and indices (u64 each), as
// batch_indices() gives them.
Digest batch_digest(int64_t shard_size, uint32_t batch_size, uint64_t seed, uint64_t first_step,
                    uint64_t end_step);

// merkle_leaf_hash(CanonicalBytes("cohort-pol-leaf-v1").u64(task_id)
//   .u32(index).u64(step).bytes(parameters).bytes(momentum).bytes(batches)).
Digest leaf_hash(uint64_t task_id, const LeafData& leaf);
LeafData leaf_of(const Layout& layout, const TrainingState& state, uint32_t index, const Digest& batches);

struct Commitment {
  Digest root{};
  uint32_t total_steps = 0;
  uint32_t segment_steps = 0;
  std::vector<LeafData> leaves;  // segment_count + 1
};

// The root over `leaves` (leaf_hash of each, in order).
Digest commitment_root(uint64_t task_id, const std::vector<LeafData>& leaves);

// ---- Worker side ----------------------------------------------------------

struct ProvenTraining {
  LocalTraining training;
  Commitment commitment;
};

// Trains like train_locally (the same delta, bit for bit, for the same
// inputs) in segments of params.segment_steps steps, writing every state j
// (parameters, momentum, step; exact float32) to checkpoint_path(dir, j)
// through a temporary file and a rename, and returns the training result
// with the commitment. `momentum` as for train_locally.
// Errors: as train_locally; segment_steps 0 (InvalidArgument); a checkpoint
// that cannot be written (IoError).
Result<ProvenTraining> train_with_proof(Model& model, const TensorDataset& shard, const Hyperparameters& hyper,
                                        uint64_t seed, uint64_t task_id, const ProofParams& params,
                                        const std::filesystem::path& checkpoint_dir,
                                        MomentumBuffers* momentum = nullptr);

// The two states around segment j, their leaves and Merkle proofs.
struct SegmentOpening {
  uint32_t segment = 0;
  LeafData before, after;  // leaves segment - 1 and segment
  std::vector<Digest> before_proof, after_proof;
  TrainingState before_state, after_state;
};

// Reads the states around `segment` back from checkpoint_dir. Errors:
// segment outside [1, segment_count] (InvalidArgument); a missing state
// (NotFound); a damaged one, or one written for another commitment
// (Corruption).
Result<SegmentOpening> open_segment(const Commitment& commitment, uint64_t task_id,
                                    const std::filesystem::path& checkpoint_dir, uint32_t segment);

// A leaf with its proof: the anchors sent with the update (leaf 0 and the
// last leaf). index must be < commitment.leaves.size().
LeafOpening open_leaf(const Commitment& commitment, uint64_t task_id, uint32_t index);
// True when opening.leaf, at position opening.leaf.index < leaf_count, is
// proven against `root`. leaf_count must come from the verifier's own
// knowledge of the task (segment_count + 1), never from the prover.
bool verify_leaf(const Digest& root, uint64_t task_id, uint32_t leaf_count, const LeafOpening& opening);

// Checkpoint files: "<dir>/state-<j>.bin" (format in the doc).
std::filesystem::path checkpoint_path(const std::filesystem::path& checkpoint_dir, uint32_t index);
// Errors: IoError. `leaf` is stored so that a reader can tell whose state it is.
Status write_training_state(const std::filesystem::path& path, const TrainingState& state, const Digest& leaf);
struct StoredState {
  TrainingState state;
  Digest leaf{};  // the leaf hash stored with it
};
// Errors: NotFound, IoError, Corruption (bad magic, size or checksum).
Result<StoredState> read_training_state(const std::filesystem::path& path);

// Checkpoint directories of tasks, under one root the worker owns:
// "<root>/task-<task_id>".
std::filesystem::path task_checkpoint_dir(const std::filesystem::path& root, uint64_t task_id);
// Removes a settled task's directory (absent is fine). Errors: IoError.
Status remove_task_checkpoints(const std::filesystem::path& checkpoint_dir);
// Keeps the `keep` most recently written "task-*" directories under `root`
// and removes the others (other entries are left alone), so that disk use
// stays bounded. Returns how many it removed. Errors: IoError.
Result<size_t> prune_task_checkpoints(const std::filesystem::path& root, size_t keep);

// ---- Challenges -----------------------------------------------------------

// Commit-then-reveal: the coordinator announces secret_commitment(secret)
// with the task and reveals the secret only after the worker committed its
// root, so neither side can steer the challenge alone.
// BLAKE2b-256 of CanonicalBytes("cohort-pol-secret-v1").bytes(secret).
Digest secret_commitment(const Digest& secret);

// seed = BLAKE2b-256(CanonicalBytes("cohort-pol-challenge-v1").bytes(secret)
//   .bytes(root).bytes(worker).u64(task_id)); its first 8 bytes (little-
// endian) seed an Rng. Audited iff rng.uniform_double() < audit_probability;
// then min(segments_per_audit, segment_count - 1) distinct segments drawn
// uniformly from [1, segment_count - 1] (partial Fisher-Yates with
// Rng::uniform_below, no modulo bias) plus always the last segment; sorted.
// Not audited: no segments. segment_count 0: not audited.
Challenge derive_challenge(const Digest& secret, const Digest& root, const PublicKey& worker, uint64_t task_id,
                           uint32_t segment_count, const ChallengeParams& params);

// ---- Verifier side --------------------------------------------------------

// Everything the coordinator knows about the task.
struct AuditContext {
  const TensorDataset* shard = nullptr;  // the worker's shard, as the coordinator rebuilds it
  Hyperparameters hyper;
  uint64_t seed = 0;
  uint64_t task_id = 0;
  ProofParams params;
  Digest root{};
  uint32_t total_steps = 0;
  at::Tensor start_parameters;  // the announced global model (flat float32)
  at::Tensor submitted_delta;   // the update the worker submitted (flat float32, as decoded)
  // The dtype the update travelled in: the after-state's delta is rounded
  // to it before the comparison (float32: no rounding).
  DType update_dtype = DType::kFloat32;
  // Leaf 0's momentum: fresh unless the task continues carried momentum
  // (then the digest of those buffers).
  Digest start_momentum = fresh_momentum_digest();
};

struct SegmentVerdict {
  bool passed = false;
  std::string reason;            // empty when passed
  double relative_error = 0.0;   // of the re-execution (0 when it did not run)
  double seconds = 0.0;          // wall time of the whole check
};

// Checks, in order, stopping at the first failure with a reason naming it:
//  1. the opening's shape: segment in [1, segment_count], leaf indices
//     segment - 1 and segment, their steps segment_begin/segment_end;
//  2. both Merkle proofs against context.root;
//  3. the revealed states hash to their leaves (parameters, momentum, step);
//  4. both leaves' batch digests equal batch_digest() of their segments
//     (zero for leaf 0);
//  5. segment 1 starts from the announced model and context.start_momentum;
//  6. last segment: after-state parameters - start_parameters (rounded to
//     update_dtype) equals submitted_delta: bitwise (cpu-exact) or within
//     tolerance (relative L2);
//  7. re-executes the segment's steps from the before-state on `scratch` (a
//     model of the same architecture; its parameters are overwritten) and
//     compares with the after-state: cpu-exact = equal parameter and
//     momentum digests; tolerant = relative_error <= params.tolerance, where
//     relative_error = max over parameters and momentum of
//     ||re-executed - claimed||_2 / ||claimed - before||_2 (the error
//     relative to what the segment changed).
// Steps 1-6 are cheap and run first. Not thread-safe for one `scratch`.
SegmentVerdict verify_segment(Model& scratch, const AuditContext& context, const SegmentOpening& opening);

// Commit-time anchors: `first` is leaf 0 (step 0, zero batch digest, the
// announced model, start_momentum) and `last` is leaf segment_count at
// step total_steps, both proven against `root`.
// Errors (InvalidArgument) name the anchor and the field that is wrong.
Status check_anchors(const Digest& root, uint64_t task_id, uint32_t total_steps, uint32_t segment_steps,
                     const Digest& start_model_digest, const LeafOpening& first, const LeafOpening& last,
                     const Digest& start_momentum = fresh_momentum_digest());

}  // namespace cohort
