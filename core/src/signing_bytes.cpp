// What each signature covers: the canonical bytes of a task, an update, a
// challenge, a reveal and a receipt, each under its own domain string. A
// field added to one of these messages is added here too, or it is not signed.
#include "cohort/crypto.h"
#include "cohort/protocol.h"
#include "cohort/receipt.h"

namespace cohort {

namespace {

std::string signing_domain(std::string_view kind) {
  return "cohort-" + std::string(kind) + "-v" + std::to_string(kProtocolVersion);
}

void add_payload_header(CanonicalBytes& out, const PayloadHeader& header) {
  out.u64(header.tensors.size());
  for (const TensorSpec& spec : header.tensors) {
    out.text(spec.name).u32(static_cast<uint32_t>(spec.dtype)).u64(spec.shape.size());
    for (int64_t dim : spec.shape) out.i64(dim);
  }
  out.u64(header.total_bytes).bytes(header.digest);
}

void add_leaf_opening(CanonicalBytes& out, const LeafOpening& opening) {
  out.u32(opening.leaf.index)
      .u64(opening.leaf.step)
      .bytes(opening.leaf.parameters)
      .bytes(opening.leaf.momentum)
      .bytes(opening.leaf.batches)
      .u64(opening.proof.size());
  for (const Digest& node : opening.proof) out.bytes(node);
}

}  // namespace

std::vector<uint8_t> task_signing_bytes(const Task& task, const PublicKey& worker) {
  CanonicalBytes out(signing_domain("task"));
  out.bytes(worker).u32(task.round).u64(task.task_id).text(task.model_name);
  const Hyperparameters& h = task.hyper;
  out.u32(h.local_steps).f64(h.local_epochs).u32(h.batch_size).f64(h.learning_rate).f64(h.momentum)
      .f64(h.weight_decay).u32(h.keep_momentum ? 1 : 0).u32(static_cast<uint32_t>(h.loss));
  const DataSelection& d = task.data;
  out.u32(static_cast<uint32_t>(d.scheme)).u32(d.num_parts).u32(d.part_index).f64(d.alpha).f64(d.gamma)
      .u64(d.seed);
  out.u64(task.seed).i64(task.deadline_unix_ms);
  add_payload_header(out, task.model);
  const ProofSpec& p = task.proof;
  out.u32(p.params.segment_steps).u32(static_cast<uint32_t>(p.params.profile)).f64(p.params.tolerance)
      .u32(p.total_steps).bytes(p.secret_commitment).f64(p.reveal_seconds).i64(p.min_stake)
      .bytes(p.dataset_digest).f64(p.challenge.audit_probability).u32(p.challenge.segments_per_audit)
      .bytes(p.start_momentum);
  out.bytes(task.model_archive);
  return out.data();
}

std::vector<uint8_t> update_signing_bytes(const Update& update, const PublicKey& worker) {
  CanonicalBytes out(signing_domain("update"));
  out.bytes(worker).u32(update.round).u64(update.task_id).u64(update.num_samples);
  const TrainMetrics& m = update.metrics;
  out.f64(m.local_loss).f64(m.local_accuracy).u32(m.steps).f64(m.train_seconds);
  out.bytes(update.base_model_hash);
  add_payload_header(out, update.delta);
  out.u32(update.commitment ? 1 : 0);
  if (update.commitment) {
    const UpdateCommitment& c = *update.commitment;
    out.bytes(c.root).u32(c.total_steps).u32(c.segment_steps);
    add_leaf_opening(out, c.first);
    add_leaf_opening(out, c.last);
  }
  return out.data();
}

std::vector<uint8_t> challenge_signing_bytes(const ChallengeMessage& challenge, const PublicKey& worker) {
  CanonicalBytes out(signing_domain("challenge"));
  out.bytes(worker).u32(challenge.round).u64(challenge.task_id).bytes(challenge.secret)
      .u32(challenge.challenge.audited ? 1 : 0).u64(challenge.challenge.segments.size());
  for (uint32_t segment : challenge.challenge.segments) out.u32(segment);
  return out.data();
}

std::vector<uint8_t> reveal_signing_bytes(const Reveal& reveal, const PublicKey& worker) {
  CanonicalBytes out(signing_domain("reveal"));
  out.bytes(worker).u32(reveal.round).u64(reveal.task_id).u64(reveal.segments.size());
  for (const SegmentProof& segment : reveal.segments) {
    out.u32(segment.segment);
    add_leaf_opening(out, segment.before);
    add_leaf_opening(out, segment.after);
  }
  add_payload_header(out, reveal.states);
  return out.data();
}

std::vector<uint8_t> Receipt::signed_bytes() const {
  return CanonicalBytes("cohort-receipt-v1")
      .u32(round)
      .u64(task_id)
      .bytes(worker)
      .bytes(update_hash)
      .u32(static_cast<uint32_t>(verdict))
      .text(reason)
      .i64(reward)
      .i64(slashed)
      .u64(chain_seq)
      .bytes(chain_hash)
      .bytes(coordinator)
      .data();
}

}  // namespace cohort
