#include "cohort/cheats.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <numeric>
#include <utility>

#include "cohort/random.h"

namespace cohort {
namespace {

struct NamedCheat {
  std::string_view name;
  CheatKind kind;
};

constexpr std::array<NamedCheat, 12> kCheats = {{
    {"none", CheatKind::kNone},
    {"skip-half", CheatKind::kSkipHalf},
    {"fake-segments", CheatKind::kFakeSegments},
    {"short-segments", CheatKind::kShortSegments},
    {"lr-0.99", CheatKind::kLearningRate},
    {"batch-order", CheatKind::kBatchOrder},
    {"bf16-states", CheatKind::kBf16States},
    {"forged-momentum", CheatKind::kForgedMomentum},
    {"no-training", CheatKind::kNoTraining},
    {"random-update", CheatKind::kRandomUpdate},
    {"replay-update", CheatKind::kReplayUpdate},
    {"non-finite", CheatKind::kNonFinite},
}};

// Cheats that forge the update itself rather than training badly.
bool forges_update(const Cheat& cheat, const CheatMemory& memory) {
  switch (cheat.kind) {
    case CheatKind::kNoTraining:
    case CheatKind::kRandomUpdate:
      return true;
    case CheatKind::kReplayUpdate:
      return memory.last_delta.defined();
    default:
      return false;
  }
}

// Steps the cheater really runs in a segment an honest worker runs
// `honest` steps in.
uint64_t steps_run(const Cheat& cheat, uint64_t honest, bool faked) {
  if (faked) return 0;
  switch (cheat.kind) {
    case CheatKind::kSkipHalf:
      return std::max<uint64_t>(1, honest / 2);
    case CheatKind::kShortSegments:
      return honest - 1;
    default:
      return honest;
  }
}

TrainingState rounded_to_bf16(TrainingState state) {
  state.parameters = state.parameters.to(at::kBFloat16).to(at::kFloat);
  if (state.momentum.defined()) state.momentum = state.momentum.to(at::kBFloat16).to(at::kFloat);
  return state;
}

// The samples an honest worker reports for `total` steps.
uint64_t honest_samples(int64_t shard_size, uint32_t batch_size, uint64_t seed, uint32_t total) {
  BatchSchedule schedule(shard_size, batch_size, seed);
  uint64_t samples = 0;
  for (uint64_t step = 0; step < total; ++step) samples += schedule.indices(step).size();
  return samples;
}

// Writes state j and appends its leaf.
Status commit_state(const Layout& layout, uint64_t task_id, const std::filesystem::path& dir,
                    const TrainingState& state, uint32_t j, const Digest& batches, Commitment& commitment) {
  LeafData leaf = leaf_of(layout, state, j, batches);
  COHORT_RETURN_IF_ERROR(write_training_state(checkpoint_path(dir, j), state, leaf_hash(task_id, leaf)));
  commitment.leaves.push_back(std::move(leaf));
  return Status();
}

at::Tensor forged_delta(const Cheat& cheat, const at::Tensor& start, const CheatMemory& memory,
                        uint64_t seed) {
  if (cheat.kind == CheatKind::kReplayUpdate) return memory.last_delta.clone();
  if (cheat.kind == CheatKind::kNoTraining) return at::zeros_like(start);
  at::Generator generator = at::detail::createCPUGenerator(seed);
  return at::normal(0.0, 0.01, start.sizes(), generator);
}

// No training at all: every state but the last is the start state, the last
// is start + delta, each with the step and batches an honest worker claims.
Result<Commitment> commit_forged(const Model& model, const at::Tensor& start, const at::Tensor& delta,
                                 const Hyperparameters& hyper, int64_t shard_size, uint64_t seed,
                                 uint64_t task_id, uint32_t total, uint32_t k,
                                 const std::filesystem::path& dir) {
  const uint32_t segments = segment_count(total, k);
  Commitment commitment{{}, total, k, {}};
  TrainingState state{start, hyper.momentum == 0.0 ? at::Tensor() : at::zeros_like(start), 0};
  for (uint32_t j = 0; j <= segments; ++j) {
    Digest batches{};
    if (j > 0) {
      const uint64_t begin = segment_begin(j, k);
      state.step = segment_end(j, k, total);
      batches = batch_digest(shard_size, hyper.batch_size, seed, begin, state.step);
    }
    if (j == segments) state.parameters = start + delta;
    COHORT_RETURN_IF_ERROR(commit_state(model.layout(), task_id, dir, state, j, batches, commitment));
  }
  return commitment;
}

}  // namespace

Result<Cheat> parse_cheat(std::string_view text) {
  const size_t colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  for (const NamedCheat& known : kCheats) {
    if (known.name != name) continue;
    Cheat cheat{known.kind, 0.5};
    if (colon == std::string_view::npos) return cheat;
    if (known.kind != CheatKind::kFakeSegments) {
      return Status::invalid_argument("cheat '" + std::string(name) + "' takes no parameter");
    }
    const std::string value(text.substr(colon + 1));
    char* end = nullptr;
    cheat.fraction = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(cheat.fraction > 0.0 && cheat.fraction <= 1.0)) {
      return Status::invalid_argument("fake-segments:Q needs a fraction Q in (0, 1], got '" + value + "'");
    }
    return cheat;
  }
  return Status::invalid_argument("unknown cheat '" + std::string(text) + "'; known: " + cheat_names());
}

std::string cheat_name(const Cheat& cheat) {
  for (const NamedCheat& known : kCheats) {
    if (known.kind != cheat.kind) continue;
    std::string name(known.name);
    if (cheat.kind == CheatKind::kFakeSegments) {
      std::string fraction = std::to_string(cheat.fraction);
      fraction.erase(fraction.find_last_not_of('0') + 1);
      if (fraction.back() == '.') fraction.pop_back();
      name += ":" + fraction;
    }
    return name;
  }
  return "unknown";
}

std::string cheat_names() {
  std::string names;
  for (const NamedCheat& known : kCheats) {
    if (!names.empty()) names += ", ";
    names += known.name;
    if (known.kind == CheatKind::kFakeSegments) names += "[:Q]";
  }
  return names;
}

std::vector<uint32_t> faked_segments(double fraction, uint32_t segment_count, uint64_t seed) {
  if (segment_count < 2 || fraction <= 0.0) return {};
  const uint32_t candidates = segment_count - 1;
  const auto wanted = static_cast<uint32_t>(
      std::clamp<double>(std::round(fraction * candidates), 1.0, static_cast<double>(candidates)));
  std::vector<uint32_t> segments(candidates);
  std::iota(segments.begin(), segments.end(), 1u);
  Rng rng(seed);
  rng.shuffle(std::span<uint32_t>(segments));
  segments.resize(wanted);
  std::sort(segments.begin(), segments.end());
  return segments;
}

Result<ProvenTraining> train_dishonestly(const Cheat& cheat, Model& model, const TensorDataset& shard,
                                         const Hyperparameters& hyper, uint64_t seed, uint64_t task_id,
                                         const ProofParams& params, const std::filesystem::path& checkpoint_dir,
                                         CheatMemory& memory) {
  if (cheat.kind == CheatKind::kNone) {
    return train_with_proof(model, shard, hyper, seed, task_id, params, checkpoint_dir);
  }
  if (shard.size() == 0) return Status::failed_precondition("the local shard is empty");
  if (params.segment_steps == 0) return Status::invalid_argument("proof of learning needs segment_steps >= 1");
  const auto start_time = std::chrono::steady_clock::now();
  std::error_code error;
  std::filesystem::create_directories(checkpoint_dir, error);
  if (error) return Status::io_error("cannot create " + checkpoint_dir.string() + ": " + error.message());

  const uint32_t k = params.segment_steps;
  const uint32_t total = planned_steps(hyper, shard.size());
  const uint32_t segments = segment_count(total, k);
  const at::Tensor start = model.flat_parameters();
  ProvenTraining out;
  LocalTraining& training = out.training;
  if (forges_update(cheat, memory)) {
    training.delta = forged_delta(cheat, start, memory, seed ^ task_id);
    COHORT_ASSIGN_OR_RETURN(out.commitment, commit_forged(model, start, training.delta, hyper, shard.size(),
                                                          seed, task_id, total, k, checkpoint_dir));
  } else {
    Hyperparameters trained_with = hyper;
    if (cheat.kind == CheatKind::kLearningRate) trained_with.learning_rate *= 0.99;
    const uint64_t order_seed = cheat.kind == CheatKind::kBatchOrder ? seed + 1 : seed;
    SgdTrainer trainer(model, shard, trained_with, order_seed);
    const std::vector<uint32_t> faked =
        cheat.kind == CheatKind::kFakeSegments ? faked_segments(cheat.fraction, segments, seed ^ task_id)
                                               : std::vector<uint32_t>{};
    out.commitment = Commitment{{}, total, k, {}};
    for (uint32_t j = 0; j <= segments; ++j) {
      Digest batches{};
      if (j > 0) {
        const uint64_t begin = segment_begin(j, k);
        const uint64_t end = segment_end(j, k, total);
        const bool fake = std::binary_search(faked.begin(), faked.end(), j);
        COHORT_RETURN_IF_ERROR(trainer.run(steps_run(cheat, end - begin, fake)));
        batches = batch_digest(shard.size(), hyper.batch_size, seed, begin, end);
      }
      TrainingState state = trainer.state();
      state.step = j == 0 ? 0 : segment_end(j, k, total);  // the claim
      if (cheat.kind == CheatKind::kBf16States) state = rounded_to_bf16(std::move(state));
      // Carry on from the claim, so later segments start where an honest
      // worker's would (and only the cheated ones fail).
      COHORT_RETURN_IF_ERROR(trainer.load_state(state));
      if (cheat.kind == CheatKind::kForgedMomentum && j > 0 && state.momentum.defined()) {
        state.momentum = at::zeros_like(state.momentum);
      }
      COHORT_RETURN_IF_ERROR(
          commit_state(model.layout(), task_id, checkpoint_dir, state, j, batches, out.commitment));
    }
    training.delta = model.flat_parameters() - start;
    training.metrics.local_loss = trainer.mean_loss();
    training.metrics.local_accuracy = trainer.accuracy();
    if (cheat.kind == CheatKind::kNonFinite) training.delta[0].fill_(std::nan(""));
  }
  out.commitment.root = commitment_root(task_id, out.commitment.leaves);
  if (cheat.kind == CheatKind::kReplayUpdate) memory.last_delta = training.delta.clone();
  training.samples_seen = honest_samples(shard.size(), hyper.batch_size, seed, total);  // a claim
  training.metrics.steps = total;
  training.metrics.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return out;
}

}  // namespace cohort
