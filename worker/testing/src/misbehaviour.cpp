#include "cohort/misbehaviour.h"

#include <cstdlib>
#include <string>

namespace cohort {

void ScriptedMisbehaviour::on_data_loaded(LabeledImages& data) {
  if (!options_.flip_labels) return;
  constexpr uint8_t kClasses = 10;
  for (uint8_t& label : data.labels) label = label < kClasses ? kClasses - 1 - label : label;
}

Result<ProvenTraining> ScriptedMisbehaviour::train_with_proof(Model& model, const TensorDataset& shard,
                                                              const Hyperparameters& hyper, uint64_t seed,
                                                              uint64_t task_id, const ProofParams& params,
                                                              const std::filesystem::path& checkpoint_dir,
                                                              MomentumBuffers* momentum) {
  if (options_.cheat.kind == CheatKind::kNone) {
    return Misbehaviour::train_with_proof(model, shard, hyper, seed, task_id, params, checkpoint_dir, momentum);
  }
  return train_dishonestly(options_.cheat, model, shard, hyper, seed, task_id, params, checkpoint_dir, memory_);
}

void ScriptedMisbehaviour::before_reveal(uint64_t task_id, Logger& log) {
  if (!options_.crash_before_reveal) return;
  log.warn("task " + std::to_string(task_id) + " audited: crashing before the reveal (--crash-before-reveal)");
  std::_Exit(137);
}

}  // namespace cohort
