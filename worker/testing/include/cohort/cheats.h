// Dishonest provers: the ways a worker can try to be paid for training it
// did not do (or did wrong), each committed as consistently as the cheat
// allows, so that only the audits can tell (docs/PROOF_OF_LEARNING.md,
// "Cheats"). For tests, demos (`cohort worker --cheat NAME`) and the
// detection experiment (experiments/proof_of_learning); an honest worker
// never uses this.
//
// Thread safety: as train_with_proof (a Model is not thread-safe).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/models.h"
#include "cohort/proof_of_learning.h"
#include "cohort/status.h"
#include "cohort/training.h"

namespace cohort {

enum class CheatKind {
  kNone,
  kSkipHalf,        // "skip-half": half of each segment's steps, claims all of them
  kFakeSegments,    // "fake-segments:Q": no training in a fraction Q of the segments (never the last)
  kShortSegments,   // "short-segments": k - 1 steps per segment
  kLearningRate,    // "lr-0.99": the announced learning rate x 0.99
  kBatchOrder,      // "batch-order": another batch order, the announced one's digests
  kBf16States,      // "bf16-states": every state rounded to bfloat16 (and carried on from)
  kForgedMomentum,  // "forged-momentum": commits zero momentum, trains with the real one
  kNoTraining,      // "no-training": the start model resubmitted, every state the start state
  kRandomUpdate,    // "random-update": a random update, committed as the final state
  kReplayUpdate,    // "replay-update": its previous task's update again (honest the first time)
  kNonFinite,       // "non-finite": trains honestly, then puts NaN in the update
};

struct Cheat {
  CheatKind kind = CheatKind::kNone;
  double fraction = 0.5;  // kFakeSegments only, in (0, 1]
};

// "none", or a name above ("fake-segments:0.25"; a bare "fake-segments"
// fakes half). Errors (InvalidArgument) list the names.
Result<Cheat> parse_cheat(std::string_view text);
// The name parse_cheat accepts for `cheat`.
std::string cheat_name(const Cheat& cheat);
// Every name, comma-separated, for help texts.
std::string cheat_names();

// What a cheater remembers from one task to the next (kReplayUpdate).
struct CheatMemory {
  at::Tensor last_delta;
};

// The segments kFakeSegments fakes in a task of `segment_count` segments:
// round(fraction * (segment_count - 1)) of segments 1 .. segment_count - 1,
// at least one when fraction > 0 and there are any, drawn from `seed`;
// sorted. The last segment is always audited, so a cheater never fakes it.
std::vector<uint32_t> faked_segments(double fraction, uint32_t segment_count, uint64_t seed);

// Like train_with_proof (same arguments, same checkpoint files, a
// commitment that opens like an honest one) but as `cheat` says. States a
// cheat skips are committed with the step numbers and batch digests an
// honest worker would have, and training carries on from what was
// committed, so that only the cheated segments fail re-execution.
// kNone trains honestly. Errors: as train_with_proof.
Result<ProvenTraining> train_dishonestly(const Cheat& cheat, Model& model, const TensorDataset& shard,
                                         const Hyperparameters& hyper, uint64_t seed, uint64_t task_id,
                                         const ProofParams& params, const std::filesystem::path& checkpoint_dir,
                                         CheatMemory& memory);

}  // namespace cohort
