#include "prover.h"


namespace cohort {

Prover::Prover(const Identity& identity, std::filesystem::path state_dir, Cheat cheat)
    : identity_(identity), state_dir_(std::move(state_dir)), cheat_(cheat) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir_, ignored)) {
    if (entry.is_directory() && entry.path().filename().string().starts_with("task-")) {
      std::filesystem::remove_all(entry.path(), ignored);
    }
  }
}

Result<Prover::Trained> Prover::train(const Task& task, Model& model, const TensorDataset& shard,
                                      MomentumBuffers* momentum) {
  const uint32_t steps = planned_steps(task.hyper, shard.size());
  if (steps != task.proof.total_steps) {
    return Status::invalid_argument("the task asks for " + std::to_string(task.proof.total_steps) +
                                    " steps but its shard of " + std::to_string(shard.size()) +
                                    " samples gives " + std::to_string(steps));
  }
  while (pending_.size() >= kMaxPendingTasks) settle(pending_.begin()->first);
  const std::filesystem::path dir = state_dir_ / ("task-" + std::to_string(task.task_id));
  COHORT_ASSIGN_OR_RETURN(ProvenTraining proven,
                          cheat_.kind != CheatKind::kNone
                              ? train_dishonestly(cheat_, model, shard, task.hyper, task.seed, task.task_id,
                                                  task.proof.params, dir, cheat_memory_)
                              : train_with_proof(model, shard, task.hyper, task.seed, task.task_id,
                                                 task.proof.params, dir, momentum));
  const Commitment& c = proven.commitment;
  const auto last = static_cast<uint32_t>(c.leaves.size() - 1);
  Trained out{std::move(proven.training),
              UpdateCommitment{c.root, c.total_steps, c.segment_steps, open_leaf(c, task.task_id, 0),
                               open_leaf(c, task.task_id, last)}};
  pending_[task.task_id] = Pending{task, c, dir};
  return out;
}

Result<std::optional<Prover::Answer>> Prover::answer(const ChallengeMessage& message) {
  auto it = pending_.find(message.task_id);
  if (it == pending_.end()) {
    return Status::not_found("a challenge for task " + std::to_string(message.task_id) +
                             ", which has no pending commitment here");
  }
  const Pending& pending = it->second;
  if (secret_commitment(message.secret) != pending.task.proof.secret_commitment) {
    return Status::invalid_argument("the challenge secret does not match the task's secret commitment");
  }
  const Challenge expected =
      derive_challenge(message.secret, pending.commitment.root, identity_.public_key(), message.task_id,
                       static_cast<uint32_t>(pending.commitment.leaves.size() - 1),
                       pending.task.proof.challenge);
  if (expected != message.challenge) {
    return Status::invalid_argument("the challenged segments are not the ones the secret selects");
  }
  if (!expected.audited) return std::optional<Answer>();

  Answer answer;
  answer.reveal.round = message.round;
  answer.reveal.task_id = message.task_id;
  std::vector<SegmentOpening> openings;
  for (uint32_t segment : expected.segments) {
    COHORT_ASSIGN_OR_RETURN(SegmentOpening opening,
                            open_segment(pending.commitment, message.task_id, pending.dir, segment));
    answer.reveal.segments.push_back(SegmentProof{segment, LeafOpening{opening.before, opening.before_proof},
                                                  LeafOpening{opening.after, opening.after_proof}});
    openings.push_back(std::move(opening));
  }
  answer.states = pack_reveal_states(openings);
  return std::optional<Answer>(std::move(answer));
}

void Prover::settle(uint64_t task_id) {
  auto it = pending_.find(task_id);
  if (it == pending_.end()) return;
  std::error_code ignored;  // a leftover directory only costs disk space
  std::filesystem::remove_all(it->second.dir, ignored);
  pending_.erase(it);
}

}  // namespace cohort
