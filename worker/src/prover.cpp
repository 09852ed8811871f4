#include "prover.h"

#include <nlohmann/json.hpp>

#include "cohort/durable_file.h"

namespace cohort {
namespace {

// Written last, after the checkpoints and the commitment: a task directory
// without it holds a training that did not finish.
constexpr char kTaskFile[] = "task.msg";
constexpr char kCommitmentFile[] = "commitment.json";

std::string commitment_json(const Commitment& c) {
  nlohmann::json leaves = nlohmann::json::array();
  for (const LeafData& leaf : c.leaves) {
    leaves.push_back({{"index", leaf.index},
                      {"step", leaf.step},
                      {"parameters", to_hex(leaf.parameters)},
                      {"momentum", to_hex(leaf.momentum)},
                      {"batches", to_hex(leaf.batches)}});
  }
  return nlohmann::json{{"root", to_hex(c.root)},
                        {"total_steps", c.total_steps},
                        {"segment_steps", c.segment_steps},
                        {"leaves", leaves}}
      .dump();
}

Result<Digest> digest_field(const nlohmann::json& object, const char* name) {
  return parse_digest(object.at(name).get<std::string>());
}

// The commitment commitment_json() wrote for `task_id`, checked against its root.
Result<Commitment> parse_commitment(const std::string& text, uint64_t task_id) {
  Commitment c;
  try {
    const nlohmann::json json = nlohmann::json::parse(text);
    COHORT_ASSIGN_OR_RETURN(c.root, digest_field(json, "root"));
    c.total_steps = json.at("total_steps").get<uint32_t>();
    c.segment_steps = json.at("segment_steps").get<uint32_t>();
    for (const auto& entry : json.at("leaves")) {
      LeafData leaf;
      leaf.index = entry.at("index").get<uint32_t>();
      leaf.step = entry.at("step").get<uint64_t>();
      COHORT_ASSIGN_OR_RETURN(leaf.parameters, digest_field(entry, "parameters"));
      COHORT_ASSIGN_OR_RETURN(leaf.momentum, digest_field(entry, "momentum"));
      COHORT_ASSIGN_OR_RETURN(leaf.batches, digest_field(entry, "batches"));
      c.leaves.push_back(leaf);
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::corruption(std::string("a stored commitment: ") + e.what());
  }
  if (c.leaves.empty() || commitment_root(task_id, c.leaves) != c.root) {
    return Status::corruption("a stored commitment whose leaves do not hash to its root");
  }
  return c;
}

Status store_pending(const Task& task, const Commitment& commitment, const std::filesystem::path& dir) {
  const std::string json = commitment_json(commitment);
  const std::string_view commitment_parts[] = {json};
  COHORT_RETURN_IF_ERROR(write_file_atomically(dir / kCommitmentFile, commitment_parts));
  const std::vector<uint8_t> bytes = encode_message(task);
  const std::string_view task_parts[] = {{reinterpret_cast<const char*>(bytes.data()), bytes.size()}};
  return write_file_atomically(dir / kTaskFile, task_parts);
}

struct Stored {
  Task task;
  Commitment commitment;
};

Result<Stored> load_pending(const std::filesystem::path& dir) {
  COHORT_ASSIGN_OR_RETURN(const std::string bytes, read_whole_file(dir / kTaskFile));
  COHORT_ASSIGN_OR_RETURN(Message message, decode_message(std::span<const uint8_t>(
                                               reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size())));
  Task* task = std::get_if<Task>(&message);
  if (task == nullptr) return Status::corruption(dir.string() + "/" + kTaskFile + " holds no task");
  COHORT_ASSIGN_OR_RETURN(const std::string json, read_whole_file(dir / kCommitmentFile));
  COHORT_ASSIGN_OR_RETURN(Commitment commitment, parse_commitment(json, task->task_id));
  return Stored{std::move(*task), std::move(commitment)};
}

}  // namespace

Result<ProvenTraining> Misbehaviour::train_with_proof(Model& model, const TensorDataset& shard,
                                                      const Hyperparameters& hyper, uint64_t seed, uint64_t task_id,
                                                      const ProofParams& params,
                                                      const std::filesystem::path& checkpoint_dir,
                                                      MomentumBuffers* momentum) {
  return cohort::train_with_proof(model, shard, hyper, seed, task_id, params, checkpoint_dir, momentum);
}

Prover::Prover(const Identity& identity, std::filesystem::path state_dir, Misbehaviour* misbehaviour)
    : identity_(identity), state_dir_(std::move(state_dir)), misbehaviour_(misbehaviour) {
  std::error_code ignored;
  for (const auto& entry : std::filesystem::directory_iterator(state_dir_, ignored)) {
    if (!entry.is_directory() || !entry.path().filename().string().starts_with("task-")) continue;
    Result<Stored> stored = load_pending(entry.path());
    if (stored.ok()) {
      const uint64_t task_id = stored->task.task_id;
      pending_[task_id] = Pending{std::move(stored->task), std::move(stored->commitment), entry.path()};
    } else {
      std::filesystem::remove_all(entry.path(), ignored);  // its training never finished
    }
  }
  while (pending_.size() > kMaxPendingTasks) settle(pending_.begin()->first);
}

std::vector<uint64_t> Prover::pending_tasks() const {
  std::vector<uint64_t> ids;
  for (const auto& [task_id, _] : pending_) ids.push_back(task_id);
  return ids;
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
                          misbehaviour_ != nullptr
                              ? misbehaviour_->train_with_proof(model, shard, task.hyper, task.seed, task.task_id,
                                                                task.proof.params, dir, momentum)
                              : train_with_proof(model, shard, task.hyper, task.seed, task.task_id,
                                                 task.proof.params, dir, momentum));
  const Commitment& c = proven.commitment;
  const auto last = static_cast<uint32_t>(c.leaves.size() - 1);
  Trained out{std::move(proven.training),
              UpdateCommitment{c.root, c.total_steps, c.segment_steps, open_leaf(c, task.task_id, 0),
                               open_leaf(c, task.task_id, last)}};
  COHORT_RETURN_IF_ERROR(store_pending(task, c, dir));
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
