// Messages to Cap'n Proto envelopes (proto/cohort.capnp): encode_message.
#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "cohort/proto/cohort.capnp.h"
#include "cohort/protocol.h"

namespace cohort {
namespace {

kj::ArrayPtr<const kj::byte> as_capnp_bytes(std::span<const uint8_t> bytes) {
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size());
}

void write_tensor_spec(proto::TensorSpec::Builder out, const TensorSpec& spec) {
  out.setName(spec.name);
  out.setDtype(static_cast<proto::DType>(spec.dtype));
  auto shape = out.initShape(static_cast<unsigned>(spec.shape.size()));
  for (unsigned i = 0; i < spec.shape.size(); ++i) shape.set(i, spec.shape[i]);
}

void write_payload_header(proto::PayloadHeader::Builder out, const PayloadHeader& header) {
  auto tensors = out.initTensors(static_cast<unsigned>(header.tensors.size()));
  for (unsigned i = 0; i < header.tensors.size(); ++i) write_tensor_spec(tensors[i], header.tensors[i]);
  out.setTotalBytes(header.total_bytes);
  out.setChunkCount(header.chunk_count);
  out.setDigest(as_capnp_bytes(header.digest));
}

void write(proto::Hello::Builder out, const Hello& in) {
  out.setWorkerKey(as_capnp_bytes(in.worker_key));
  auto device = out.initDevice();
  device.setKind(static_cast<proto::DeviceKind>(in.device.kind));
  device.setName(in.device.name);
  device.setThreads(in.device.threads);
  device.setMemoryBytes(in.device.memory_bytes);
  auto dataset = out.initDataset();
  dataset.setKind(in.dataset.kind);
  dataset.setSamples(in.dataset.samples);
  dataset.setClasses(in.dataset.classes);
  out.setSoftware(in.software);
}

void write(proto::ProofSpec::Builder out, const ProofSpec& in) {
  out.setSegmentSteps(in.params.segment_steps);
  out.setTotalSteps(in.total_steps);
  out.setProfile(static_cast<proto::DeterminismProfile>(in.params.profile));
  out.setTolerance(in.params.tolerance);
  out.setSecretCommitment(as_capnp_bytes(in.secret_commitment));
  out.setRevealSeconds(in.reveal_seconds);
  out.setMinStake(in.min_stake);
  out.setDatasetDigest(as_capnp_bytes(in.dataset_digest));
  out.setAuditProbability(in.challenge.audit_probability);
  out.setSegmentsPerAudit(in.challenge.segments_per_audit);
  out.setStartMomentum(as_capnp_bytes(in.start_momentum));
}

void write(proto::LeafOpening::Builder out, const LeafOpening& in) {
  auto leaf = out.initLeaf();
  leaf.setIndex(in.leaf.index);
  leaf.setStep(in.leaf.step);
  leaf.setParameters(as_capnp_bytes(in.leaf.parameters));
  leaf.setMomentum(as_capnp_bytes(in.leaf.momentum));
  leaf.setBatches(as_capnp_bytes(in.leaf.batches));
  auto proof = out.initProof(static_cast<unsigned>(in.proof.size()));
  for (unsigned i = 0; i < in.proof.size(); ++i) proof.set(i, as_capnp_bytes(in.proof[i]));
}

void write(proto::Commitment::Builder out, const UpdateCommitment& in) {
  out.setRoot(as_capnp_bytes(in.root));
  out.setTotalSteps(in.total_steps);
  out.setSegmentSteps(in.segment_steps);
  write(out.initFirst(), in.first);
  write(out.initLast(), in.last);
}

void write(proto::Task::Builder out, const Task& in) {
  out.setRound(in.round);
  out.setTaskId(in.task_id);
  out.setModelName(in.model_name);
  auto hyper = out.initHyper();
  hyper.setLocalSteps(in.hyper.local_steps);
  hyper.setLocalEpochs(in.hyper.local_epochs);
  hyper.setBatchSize(in.hyper.batch_size);
  hyper.setLearningRate(in.hyper.learning_rate);
  hyper.setMomentum(in.hyper.momentum);
  hyper.setWeightDecay(in.hyper.weight_decay);
  hyper.setKeepMomentum(in.hyper.keep_momentum);
  hyper.setLoss(static_cast<proto::Loss>(in.hyper.loss));
  auto data = out.initData();
  data.setScheme(static_cast<proto::PartitionScheme>(in.data.scheme));
  data.setNumParts(in.data.num_parts);
  data.setPartIndex(in.data.part_index);
  data.setAlpha(in.data.alpha);
  data.setGamma(in.data.gamma);
  data.setSeed(in.data.seed);
  out.setSeed(in.seed);
  out.setDeadlineUnixMs(in.deadline_unix_ms);
  write_payload_header(out.initModel(), in.model);
  write(out.initProof(), in.proof);
  out.setSignature(as_capnp_bytes(in.signature));
  if (in.model_archive != Digest{}) out.setModelArchive(as_capnp_bytes(in.model_archive));
}

void write(proto::Update::Builder out, const Update& in) {
  out.setRound(in.round);
  out.setTaskId(in.task_id);
  out.setNumSamples(in.num_samples);
  auto metrics = out.initMetrics();
  metrics.setLocalLoss(in.metrics.local_loss);
  metrics.setLocalAccuracy(in.metrics.local_accuracy);
  metrics.setSteps(in.metrics.steps);
  metrics.setTrainSeconds(in.metrics.train_seconds);
  out.setBaseModelHash(as_capnp_bytes(in.base_model_hash));
  write_payload_header(out.initDelta(), in.delta);
  if (in.commitment) write(out.initCommitment(), *in.commitment);
  out.setSignature(as_capnp_bytes(in.signature));
}

void write(proto::Challenge::Builder out, const ChallengeMessage& in) {
  out.setRound(in.round);
  out.setTaskId(in.task_id);
  out.setSecret(as_capnp_bytes(in.secret));
  out.setAudited(in.challenge.audited);
  auto segments = out.initSegments(static_cast<unsigned>(in.challenge.segments.size()));
  for (unsigned i = 0; i < in.challenge.segments.size(); ++i) segments.set(i, in.challenge.segments[i]);
  out.setSignature(as_capnp_bytes(in.signature));
}

void write(proto::Reveal::Builder out, const Reveal& in) {
  out.setRound(in.round);
  out.setTaskId(in.task_id);
  auto segments = out.initSegments(static_cast<unsigned>(in.segments.size()));
  for (unsigned i = 0; i < in.segments.size(); ++i) {
    segments[i].setSegment(in.segments[i].segment);
    write(segments[i].initBefore(), in.segments[i].before);
    write(segments[i].initAfter(), in.segments[i].after);
  }
  write_payload_header(out.initStates(), in.states);
  out.setSignature(as_capnp_bytes(in.signature));
}

void write(proto::Receipt::Builder out, const Receipt& in) {
  out.setRound(in.round);
  out.setTaskId(in.task_id);
  out.setWorkerKey(as_capnp_bytes(in.worker));
  out.setUpdateHash(as_capnp_bytes(in.update_hash));
  out.setVerdict(static_cast<proto::Verdict>(in.verdict));
  out.setReason(in.reason);
  out.setReward(in.reward);
  out.setSlashed(in.slashed);
  out.setChainSeq(in.chain_seq);
  out.setChainHash(as_capnp_bytes(in.chain_hash));
  out.setCoordinatorKey(as_capnp_bytes(in.coordinator));
  out.setSignature(as_capnp_bytes(in.signature));
}

void write(proto::Welcome::Builder out, const Welcome& in) {
  out.setWorkerIndex(in.worker_index);
  out.setJobName(in.job_name);
  out.setRounds(in.rounds);
  out.setCoordinatorKey(as_capnp_bytes(in.coordinator_key));
  auto receipts = out.initReceipts(static_cast<unsigned>(in.receipts.size()));
  for (size_t i = 0; i < in.receipts.size(); ++i) write(receipts[static_cast<unsigned>(i)], in.receipts[i]);
}

void write(proto::RoundResult::Builder out, const RoundResult& in) {
  out.setRound(in.round);
  out.setAccepted(in.accepted);
  out.setReason(in.reason);
  out.setTestAccuracy(in.test_accuracy);
  out.setTestLoss(in.test_loss);
  out.setParticipants(in.participants);
  out.setModelHash(as_capnp_bytes(in.model_hash));
  if (in.receipt) write(out.initReceipt(), *in.receipt);
}

void write(proto::Error::Builder out, const ErrorReply& in) {
  out.setCode(static_cast<proto::ErrorCode>(in.code));
  out.setMessage(in.message);
  out.setRound(in.round);
  out.setTaskId(in.task_id);
}

void write(proto::Bye::Builder out, const Bye& in) { out.setReason(in.reason); }

void write(proto::ModelRequest::Builder out, const ModelRequest& in) { out.setArchive(as_capnp_bytes(in.archive)); }

void write(proto::ModelArchive::Builder out, const ModelArchiveMessage& in) {
  out.setArchive(as_capnp_bytes(in.archive));
  out.setTotalBytes(in.total_bytes);
  out.setChunkCount(in.chunk_count);
}

void write_body(proto::Envelope::Body::Builder body, const Message& message) {
  std::visit(
      [&](const auto& m) {
        using T = std::decay_t<decltype(m)>;
        if constexpr (std::is_same_v<T, Hello>) write(body.initHello(), m);
        else if constexpr (std::is_same_v<T, Welcome>) write(body.initWelcome(), m);
        else if constexpr (std::is_same_v<T, Task>) write(body.initTask(), m);
        else if constexpr (std::is_same_v<T, Update>) write(body.initUpdate(), m);
        else if constexpr (std::is_same_v<T, RoundResult>) write(body.initRoundResult(), m);
        else if constexpr (std::is_same_v<T, ErrorReply>) write(body.initError(), m);
        else if constexpr (std::is_same_v<T, ChallengeMessage>) write(body.initChallenge(), m);
        else if constexpr (std::is_same_v<T, Reveal>) write(body.initReveal(), m);
        else if constexpr (std::is_same_v<T, ModelRequest>) write(body.initModelRequest(), m);
        else if constexpr (std::is_same_v<T, ModelArchiveMessage>) write(body.initModelArchive(), m);
        else write(body.initBye(), m);
      },
      message);
}

}  // namespace

std::vector<uint8_t> encode_message_with_version(const Message& message, uint32_t version) {
  capnp::MallocMessageBuilder builder;
  auto envelope = builder.initRoot<proto::Envelope>();
  envelope.setVersion(version);
  write_body(envelope.getBody(), message);
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

std::vector<uint8_t> encode_message(const Message& message) {
  return encode_message_with_version(message, kProtocolVersion);
}

}  // namespace cohort
