#include "auditor.h"

#include <ATen/ATen.h>

#include <chrono>

#include "cohort/partition.h"
#include "cohort/training.h"

namespace cohort {

Auditor::Auditor(AuditOptions options, const LabeledImages& train_split)
    : options_(std::move(options)), train_split_(train_split), dataset_digest_(digest_of(train_split)) {
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { serve_jobs(); });
}

Auditor::~Auditor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

Result<std::shared_ptr<const TensorDataset>> Auditor::shard_for(const DataSelection& selection) {
  for (const auto& [known, shard] : shards_) {
    if (known == selection) return shard;
  }
  if (selection.part_index >= selection.num_parts) {
    return Status::invalid_argument("part index " + std::to_string(selection.part_index) + " out of " +
                                    std::to_string(selection.num_parts));
  }
  PartitionSpec spec{selection.scheme, static_cast<int>(selection.num_parts), selection.alpha, selection.gamma,
                     selection.seed};
  COHORT_ASSIGN_OR_RETURN(auto parts, partition_indices(train_split_.labels, spec));
  auto shard = std::make_shared<const TensorDataset>(
      to_tensors(select_samples(train_split_, parts[selection.part_index])));
  shards_.emplace_back(selection, shard);
  return shard;
}

void Auditor::prepare(Task& task, int64_t shard_size) {
  const Digest secret = random_secret();
  secrets_[task.task_id] = secret;
  ProofSpec& proof = task.proof;
  proof.params = options_.params;
  proof.total_steps = planned_steps(task.hyper, shard_size);
  proof.secret_commitment = secret_commitment(secret);
  proof.reveal_seconds = options_.reveal_seconds;
  proof.dataset_digest = dataset_digest_;
  proof.challenge = options_.challenge;
}

Result<ChallengeMessage> Auditor::challenge(const Task& task, const PublicKey& worker,
                                            const UpdateCommitment& commitment, const Digest& start_momentum) {
  auto secret = secrets_.find(task.task_id);
  if (secret == secrets_.end()) {
    return Status::failed_precondition("task " + std::to_string(task.task_id) + " was already challenged");
  }
  if (commitment.total_steps != task.proof.total_steps ||
      commitment.segment_steps != task.proof.params.segment_steps) {
    return Status::invalid_argument("the commitment covers " + std::to_string(commitment.total_steps) +
                                    " steps in segments of " + std::to_string(commitment.segment_steps) +
                                    "; the task asked for " + std::to_string(task.proof.total_steps) + " in " +
                                    std::to_string(task.proof.params.segment_steps));
  }
  COHORT_RETURN_IF_ERROR(check_anchors(commitment.root, task.task_id, commitment.total_steps,
                                       commitment.segment_steps, task.model.digest, commitment.first,
                                       commitment.last, start_momentum));
  ChallengeMessage message;
  message.round = task.round;
  message.task_id = task.task_id;
  message.secret = secret->second;
  message.challenge = derive_challenge(secret->second, commitment.root, worker, task.task_id,
                                       segment_count(commitment.total_steps, commitment.segment_steps),
                                       task.proof.challenge);
  secrets_.erase(secret);  // revealed: never reused
  return message;
}

Status Auditor::verify_later(const Task& task, const UpdateCommitment& commitment, const Challenge& challenge,
                             std::vector<SegmentOpening> openings, at::Tensor start, at::Tensor delta,
                             const TaskStart& task_start) {
  std::vector<uint32_t> revealed;
  for (const SegmentOpening& opening : openings) revealed.push_back(opening.segment);
  if (revealed != challenge.segments) {
    return Status::invalid_argument("the reveal does not cover exactly the challenged segments");
  }
  COHORT_ASSIGN_OR_RETURN(std::shared_ptr<const TensorDataset> shard, shard_for(task.data));
  Job job;
  job.shard = shard;
  job.context.shard = shard.get();
  job.context.hyper = task.hyper;
  job.context.seed = task.seed;
  job.context.task_id = task.task_id;
  job.context.params = task.proof.params;
  job.context.root = commitment.root;
  job.context.total_steps = commitment.total_steps;
  job.context.start_parameters = std::move(start);
  job.context.submitted_delta = std::move(delta);
  job.context.update_dtype = task_start.update_dtype;
  job.context.start_momentum = task_start.momentum;
  job.openings = std::move(openings);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(job));
    ++busy_;
  }
  wake_.notify_one();
  return Status();
}

std::vector<AuditOutcome> Auditor::finished() {
  std::lock_guard<std::mutex> lock(mutex_);
  return std::exchange(done_, {});
}

size_t Auditor::running() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return busy_;
}

void Auditor::serve_jobs() {
  // Each verifier re-executes on its own copy of the model.
  Result<std::unique_ptr<Model>> scratch = make_model(options_.model, /*seed=*/0);
  while (true) {
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    AuditOutcome outcome = scratch.ok() ? run_guarded(**scratch, job)
                                        : AuditOutcome{job.context.task_id, false, true,
                                                       "the verifier could not build the model: " +
                                                           scratch.status().message(),
                                                       0.0};
    std::lock_guard<std::mutex> lock(mutex_);
    done_.push_back(std::move(outcome));
    --busy_;
  }
}

// An exception on a verifier thread would end the process. Thrown by the
// re-execution itself (LibTorch), it shows nothing against the worker: the
// audit is voided (not paid, not slashed) with the reason.
AuditOutcome Auditor::run_guarded(Model& scratch, const Job& job) const {
  try {
    return run(scratch, job);
  } catch (const std::exception& error) {
    return AuditOutcome{job.context.task_id, false, true,
                        status_of_exception(error, "the re-execution failed").message(), 0.0};
  }
}

AuditOutcome Auditor::run(Model& scratch, const Job& job) const {
  AuditOutcome outcome{job.context.task_id, true, false, "", 0.0};
  for (const SegmentOpening& opening : job.openings) {
    SegmentVerdict verdict = verify_segment(scratch, job.context, opening);
    outcome.seconds += verdict.seconds;
    if (!verdict.passed) {
      outcome.passed = false;
      outcome.reason = verdict.reason;  // names the segment
      // In the tolerant profile honest drift has a heavy tail
      // (docs/PROOF_OF_LEARNING.md): a re-execution off by more than tau
      // but at most kDisputedError is a dispute, not proof of cheating. The
      // update is dropped and not paid, but nobody is slashed. Larger errors
      // (other data, skipped or random work measure near 1) and every other
      // failure (proofs, hashes, anchors, batches) slash.
      outcome.voided = job.context.params.profile == DeterminismProfile::kTolerant &&
                       verdict.relative_error > 0 && verdict.relative_error <= kDisputedError;
      break;
    }
  }
  return outcome;
}

}  // namespace cohort
