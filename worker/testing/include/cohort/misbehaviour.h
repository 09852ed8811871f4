// The misbehaviours of `cohort worker --flip-labels`, `--cheat NAME` and
// `--crash-before-reveal`, as one Misbehaviour (worker.h) to install in
// WorkerOptions::misbehaviour. For tests, demos and experiments: part of
// the worker_testing library, which the production worker never links.
//
// Thread safety: one worker's thread (a cheater remembers its last update).
#pragma once

#include "cohort/cheats.h"
#include "cohort/worker.h"

namespace cohort {

struct MisbehaviourOptions {
  // A Byzantine behaviour for robustness experiments: train honestly on
  // flipped labels (y -> 9 - y), as ByzFL, Blades and epfml define it. The
  // worker still announces the digest of its true data.
  bool flip_labels = false;
  // A dishonest prover, for tests and demos of the audits (cheats.h). A
  // cheater also sends updates with NaN or Inf instead of refusing them.
  Cheat cheat;
  // Crash-safety tests: on the first challenge of an audited task, exit at
  // once (status 137, no cleanup), as a worker killed between its update
  // and its reveal would. Restarted without it, the worker must still reveal.
  bool crash_before_reveal = false;

  // Whether any of the above is asked for.
  bool any() const { return flip_labels || cheat.kind != CheatKind::kNone || crash_before_reveal; }
};

class ScriptedMisbehaviour final : public Misbehaviour {
 public:
  explicit ScriptedMisbehaviour(MisbehaviourOptions options) : options_(options) {}

  void on_data_loaded(LabeledImages& data) override;
  Result<ProvenTraining> train_with_proof(Model& model, const TensorDataset& shard, const Hyperparameters& hyper,
                                          uint64_t seed, uint64_t task_id, const ProofParams& params,
                                          const std::filesystem::path& checkpoint_dir,
                                          MomentumBuffers* momentum) override;
  bool sends_non_finite_updates() const override { return options_.cheat.kind != CheatKind::kNone; }
  void before_reveal(uint64_t task_id, Logger& log) override;

 private:
  MisbehaviourOptions options_;
  CheatMemory memory_;
};

}  // namespace cohort
