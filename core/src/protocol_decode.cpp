// Cap'n Proto envelopes to messages, every field checked: decode_message.
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

// Readers throw kj::Exception on malformed pointers; decode_message catches
// it once. Value checks that Cap'n Proto cannot do (enum ranges, key
// lengths, size limits) throw DecodeError, caught in the same place.

struct DecodeError {
  Status status;
};

[[noreturn]] void fail(Status status) { throw DecodeError{std::move(status)}; }

std::string read_text(capnp::Text::Reader text, const DecodeLimits& limits, const char* field) {
  if (text.size() > limits.max_text_bytes) {
    fail(Status::resource_exhausted(std::string(field) + " is " + std::to_string(text.size()) +
                                    " bytes, limit " + std::to_string(limits.max_text_bytes)));
  }
  return std::string(text.cStr(), text.size());
}

template <size_t N>
std::array<uint8_t, N> read_fixed(capnp::Data::Reader data, const char* field,
                                  bool allow_empty = false) {
  std::array<uint8_t, N> out{};
  if (allow_empty && data.size() == 0) return out;
  if (data.size() != N) {
    fail(Status::corruption(std::string(field) + " must be " + std::to_string(N) + " bytes, got " +
                            std::to_string(data.size())));
  }
  std::memcpy(out.data(), data.begin(), N);
  return out;
}

template <class Enum>
Enum read_enum(uint16_t raw, uint16_t max_value, const char* field) {
  if (raw > max_value) {
    fail(Status::corruption(std::string(field) + " has unknown value " + std::to_string(raw)));
  }
  return static_cast<Enum>(raw);
}

TensorSpec read_tensor_spec(proto::TensorSpec::Reader in, const DecodeLimits& limits) {
  TensorSpec spec;
  spec.name = read_text(in.getName(), limits, "tensor name");
  spec.dtype = read_enum<DType>(static_cast<uint16_t>(in.getDtype()), 3, "tensor dtype");
  auto shape = in.getShape();
  if (shape.size() > limits.max_tensor_rank) {
    fail(Status::resource_exhausted("tensor '" + spec.name + "' has rank " +
                                    std::to_string(shape.size())));
  }
  for (int64_t dim : shape) {
    if (dim < 0) fail(Status::corruption("tensor '" + spec.name + "' has a negative dimension"));
    spec.shape.push_back(dim);
  }
  return spec;
}

PayloadHeader read_payload_header(proto::PayloadHeader::Reader in, const DecodeLimits& limits) {
  PayloadHeader header;
  auto tensors = in.getTensors();
  if (tensors.size() > limits.max_tensors) {
    fail(Status::resource_exhausted("payload lists " + std::to_string(tensors.size()) +
                                    " tensors, limit " + std::to_string(limits.max_tensors)));
  }
  header.tensors.reserve(tensors.size());
  for (auto t : tensors) header.tensors.push_back(read_tensor_spec(t, limits));
  header.total_bytes = in.getTotalBytes();
  header.chunk_count = in.getChunkCount();
  header.digest = read_fixed<32>(in.getDigest(), "payload digest");
  return header;
}

Hello read(proto::Hello::Reader in, const DecodeLimits& limits) {
  Hello out;
  out.worker_key = read_fixed<32>(in.getWorkerKey(), "worker key");
  auto device = in.getDevice();
  out.device.kind = read_enum<DeviceKind>(static_cast<uint16_t>(device.getKind()), 1, "device kind");
  out.device.name = read_text(device.getName(), limits, "device name");
  out.device.threads = device.getThreads();
  out.device.memory_bytes = device.getMemoryBytes();
  auto dataset = in.getDataset();
  out.dataset.kind = read_text(dataset.getKind(), limits, "dataset kind");
  out.dataset.samples = dataset.getSamples();
  out.dataset.classes = dataset.getClasses();
  out.software = read_text(in.getSoftware(), limits, "software");
  return out;
}


template <class List>
void check_list_size(const List& list, const DecodeLimits& limits, const char* field) {
  if (list.size() > limits.max_list_entries) {
    fail(Status::resource_exhausted(std::string(field) + " has " + std::to_string(list.size()) +
                                    " entries, limit " + std::to_string(limits.max_list_entries)));
  }
}

ProofSpec read(proto::ProofSpec::Reader in) {
  ProofSpec out;
  out.params.segment_steps = in.getSegmentSteps();
  out.params.profile =
      read_enum<DeterminismProfile>(static_cast<uint16_t>(in.getProfile()), 1, "determinism profile");
  out.params.tolerance = in.getTolerance();
  out.total_steps = in.getTotalSteps();
  out.secret_commitment = read_fixed<32>(in.getSecretCommitment(), "secret commitment", true);
  out.reveal_seconds = in.getRevealSeconds();
  out.min_stake = in.getMinStake();
  out.dataset_digest = read_fixed<32>(in.getDatasetDigest(), "dataset digest", true);
  out.challenge.audit_probability = in.getAuditProbability();
  out.challenge.segments_per_audit = in.getSegmentsPerAudit();
  out.start_momentum = read_fixed<32>(in.getStartMomentum(), "start momentum", true);
  return out;
}

LeafOpening read(proto::LeafOpening::Reader in, const DecodeLimits& limits) {
  LeafOpening out;
  auto leaf = in.getLeaf();
  out.leaf.index = leaf.getIndex();
  out.leaf.step = leaf.getStep();
  out.leaf.parameters = read_fixed<32>(leaf.getParameters(), "leaf parameters digest");
  out.leaf.momentum = read_fixed<32>(leaf.getMomentum(), "leaf momentum digest");
  out.leaf.batches = read_fixed<32>(leaf.getBatches(), "leaf batches digest");
  auto proof = in.getProof();
  check_list_size(proof, limits, "Merkle proof");
  for (auto node : proof) out.proof.push_back(read_fixed<32>(node, "Merkle proof node"));
  return out;
}

UpdateCommitment read(proto::Commitment::Reader in, const DecodeLimits& limits) {
  UpdateCommitment out;
  out.root = read_fixed<32>(in.getRoot(), "commitment root");
  out.total_steps = in.getTotalSteps();
  out.segment_steps = in.getSegmentSteps();
  out.first = read(in.getFirst(), limits);
  out.last = read(in.getLast(), limits);
  return out;
}

Task read(proto::Task::Reader in, const DecodeLimits& limits) {
  Task out;
  out.round = in.getRound();
  out.task_id = in.getTaskId();
  out.model_name = read_text(in.getModelName(), limits, "model name");
  auto hyper = in.getHyper();
  out.hyper = Hyperparameters{hyper.getLocalSteps(),   hyper.getLocalEpochs(),
                              hyper.getBatchSize(),    hyper.getLearningRate(),
                              hyper.getMomentum(),     hyper.getWeightDecay(),
                              hyper.getKeepMomentum(),
                              read_enum<LossKind>(static_cast<uint16_t>(hyper.getLoss()), 3, "loss")};
  auto data = in.getData();
  out.data.scheme =
      read_enum<PartitionScheme>(static_cast<uint16_t>(data.getScheme()), 3, "partition scheme");
  out.data.num_parts = data.getNumParts();
  out.data.part_index = data.getPartIndex();
  out.data.alpha = data.getAlpha();
  out.data.gamma = data.getGamma();
  out.data.seed = data.getSeed();
  out.seed = in.getSeed();
  out.deadline_unix_ms = in.getDeadlineUnixMs();
  out.model = read_payload_header(in.getModel(), limits);
  out.proof = read(in.getProof());
  out.signature = read_fixed<64>(in.getSignature(), "task signature", true);
  out.model_archive = read_fixed<32>(in.getModelArchive(), "task model archive digest", true);
  return out;
}

Update read(proto::Update::Reader in, const DecodeLimits& limits) {
  Update out;
  out.round = in.getRound();
  out.task_id = in.getTaskId();
  out.num_samples = in.getNumSamples();
  auto metrics = in.getMetrics();
  out.metrics = TrainMetrics{metrics.getLocalLoss(), metrics.getLocalAccuracy(),
                             metrics.getSteps(), metrics.getTrainSeconds()};
  out.base_model_hash = read_fixed<32>(in.getBaseModelHash(), "base model hash");
  out.delta = read_payload_header(in.getDelta(), limits);
  if (in.hasCommitment()) out.commitment = read(in.getCommitment(), limits);
  out.signature = read_fixed<64>(in.getSignature(), "update signature", true);
  return out;
}

ChallengeMessage read(proto::Challenge::Reader in, const DecodeLimits& limits) {
  ChallengeMessage out;
  out.round = in.getRound();
  out.task_id = in.getTaskId();
  out.secret = read_fixed<32>(in.getSecret(), "challenge secret");
  out.challenge.audited = in.getAudited();
  auto segments = in.getSegments();
  check_list_size(segments, limits, "challenged segments");
  for (uint32_t segment : segments) out.challenge.segments.push_back(segment);
  out.signature = read_fixed<64>(in.getSignature(), "challenge signature", true);
  return out;
}

Reveal read(proto::Reveal::Reader in, const DecodeLimits& limits) {
  Reveal out;
  out.round = in.getRound();
  out.task_id = in.getTaskId();
  auto segments = in.getSegments();
  check_list_size(segments, limits, "revealed segments");
  for (auto segment : segments) {
    out.segments.push_back(SegmentProof{segment.getSegment(), read(segment.getBefore(), limits),
                                        read(segment.getAfter(), limits)});
  }
  out.states = read_payload_header(in.getStates(), limits);
  out.signature = read_fixed<64>(in.getSignature(), "reveal signature", true);
  return out;
}

Receipt read(proto::Receipt::Reader in, const DecodeLimits& limits) {
  Receipt out;
  out.round = in.getRound();
  out.task_id = in.getTaskId();
  out.worker = read_fixed<32>(in.getWorkerKey(), "receipt worker key");
  out.update_hash = read_fixed<32>(in.getUpdateHash(), "receipt update hash", true);
  out.verdict = read_enum<Verdict>(static_cast<uint16_t>(in.getVerdict()), 5, "receipt verdict");
  out.reason = read_text(in.getReason(), limits, "receipt reason");
  out.reward = in.getReward();
  out.slashed = in.getSlashed();
  out.chain_seq = in.getChainSeq();
  out.chain_hash = read_fixed<32>(in.getChainHash(), "receipt chain hash");
  out.coordinator = read_fixed<32>(in.getCoordinatorKey(), "receipt coordinator key");
  out.signature = read_fixed<64>(in.getSignature(), "receipt signature");
  return out;
}

Welcome read(proto::Welcome::Reader in, const DecodeLimits& limits) {
  Welcome out{in.getWorkerIndex(), read_text(in.getJobName(), limits, "job name"), in.getRounds(),
              read_fixed<32>(in.getCoordinatorKey(), "coordinator key"), {}};
  check_list_size(in.getReceipts(), limits, "welcome receipts");
  for (auto receipt : in.getReceipts()) out.receipts.push_back(read(receipt, limits));
  return out;
}

RoundResult read(proto::RoundResult::Reader in, const DecodeLimits& limits) {
  RoundResult out;
  out.round = in.getRound();
  out.accepted = in.getAccepted();
  out.reason = read_text(in.getReason(), limits, "reason");
  out.test_accuracy = in.getTestAccuracy();
  out.test_loss = in.getTestLoss();
  out.participants = in.getParticipants();
  out.model_hash = read_fixed<32>(in.getModelHash(), "model hash", /*allow_empty=*/true);
  if (in.hasReceipt()) out.receipt = read(in.getReceipt(), limits);
  return out;
}

ErrorReply read(proto::Error::Reader in, const DecodeLimits& limits) {
  return ErrorReply{read_enum<ErrorCode>(static_cast<uint16_t>(in.getCode()), 13, "error code"),
                    read_text(in.getMessage(), limits, "error message"), in.getRound(),
                    in.getTaskId()};
}

Bye read(proto::Bye::Reader in, const DecodeLimits& limits) {
  return Bye{read_text(in.getReason(), limits, "reason")};
}

ModelRequest read(proto::ModelRequest::Reader in) {
  return ModelRequest{read_fixed<32>(in.getArchive(), "model archive digest")};
}

ModelArchiveMessage read(proto::ModelArchive::Reader in) {
  return ModelArchiveMessage{read_fixed<32>(in.getArchive(), "model archive digest"), in.getTotalBytes(),
                             in.getChunkCount()};
}

Message read_body(proto::Envelope::Body::Reader body, const DecodeLimits& limits) {
  using Which = proto::Envelope::Body::Which;
  switch (body.which()) {
    case Which::HELLO: return read(body.getHello(), limits);
    case Which::WELCOME: return read(body.getWelcome(), limits);
    case Which::TASK: return read(body.getTask(), limits);
    case Which::UPDATE: return read(body.getUpdate(), limits);
    case Which::ROUND_RESULT: return read(body.getRoundResult(), limits);
    case Which::ERROR: return read(body.getError(), limits);
    case Which::BYE: return read(body.getBye(), limits);
    case Which::CHALLENGE: return read(body.getChallenge(), limits);
    case Which::REVEAL: return read(body.getReveal(), limits);
    case Which::MODEL_REQUEST: return read(body.getModelRequest());
    case Which::MODEL_ARCHIVE: return read(body.getModelArchive());
  }
  fail(Status::corruption("envelope body of unknown kind " +
                          std::to_string(static_cast<int>(body.which()))));
}

// Cap'n Proto reads words; a frame from the network may be unaligned.
kj::Array<capnp::word> copy_to_words(std::span<const uint8_t> bytes) {
  auto words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  return words;
}

}  // namespace

Result<Message> decode_message(std::span<const uint8_t> bytes, const DecodeLimits& limits) {
  if (bytes.size() > limits.max_envelope_bytes) {
    return Status::resource_exhausted("envelope of " + std::to_string(bytes.size()) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(limits.max_envelope_bytes));
  }
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return Status::corruption("envelope of " + std::to_string(bytes.size()) +
                              " bytes is not a whole number of 8-byte words");
  }
  auto words = copy_to_words(bytes);
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = limits.nesting_limit;
  try {
    capnp::FlatArrayMessageReader reader(words, options);
    auto envelope = reader.getRoot<proto::Envelope>();
    if (envelope.getVersion() != kProtocolVersion) {
      return Status::unsupported(
          "unsupported protocol version " + std::to_string(envelope.getVersion()) +
          " (this build speaks version " + std::to_string(kProtocolVersion) + ")");
    }
    return read_body(envelope.getBody(), limits);
  } catch (const DecodeError& e) {
    return e.status;
  } catch (const kj::Exception& e) {
    return Status::corruption("malformed envelope: " + std::string(e.getDescription().cStr()));
  }
}

}  // namespace cohort
