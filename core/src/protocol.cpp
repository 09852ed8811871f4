#include "cohort/protocol.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "cohort/proto/cohort.capnp.h"

namespace cohort {

static_assert(proto::PROTOCOL_VERSION == kProtocolVersion, "proto/cohort.capnp and protocol.h disagree");
namespace {

// ---------------------------------------------------------------- encoding

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
        else write(body.initBye(), m);
      },
      message);
}

// ---------------------------------------------------------------- decoding
//
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
                              hyper.getKeepMomentum()};
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

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

Result<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    if (name == dtype_name(d)) return d;
  }
  return Status::invalid_argument("unknown dtype '" + std::string(name) +
                                  "' (expected float32, float64, float16 or bfloat16)");
}

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kMalformedMessage: return "malformed message";
    case ErrorCode::kUnsupportedVersion: return "unsupported version";
    case ErrorCode::kNotRegistered: return "not registered";
    case ErrorCode::kWrongRound: return "wrong round";
    case ErrorCode::kUnknownTask: return "unknown task";
    case ErrorCode::kDuplicate: return "duplicate";
    case ErrorCode::kTooLarge: return "too large";
    case ErrorCode::kInvalidUpdate: return "invalid update";
    case ErrorCode::kDeadlineExceeded: return "deadline exceeded";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kBadSignature: return "bad signature";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kRateLimited: return "rate limited";
  }
  return "unknown";
}

std::string_view message_kind(const Message& message) {
  static constexpr std::string_view kNames[] = {"hello", "welcome", "task",      "update", "round-result",
                                                "error", "bye",     "challenge", "reveal"};
  return kNames[message.index()];
}

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
      return Status::failed_precondition(
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

ErrorCode error_code_for(const Status& status) {
  switch (status.code()) {
    case Status::Code::kCorruption: return ErrorCode::kMalformedMessage;
    case Status::Code::kResourceExhausted: return ErrorCode::kTooLarge;
    case Status::Code::kDeadlineExceeded: return ErrorCode::kDeadlineExceeded;
    case Status::Code::kUnavailable: return ErrorCode::kUnavailable;
    case Status::Code::kInvalidArgument: return ErrorCode::kInvalidUpdate;
    case Status::Code::kFailedPrecondition:
      return status.message().starts_with("unsupported protocol version")
                 ? ErrorCode::kUnsupportedVersion
                 : ErrorCode::kWrongRound;
    default: return ErrorCode::kInternal;
  }
}

std::string reveal_tensor_name(uint32_t segment, bool after, bool momentum) {
  char name[64];
  std::snprintf(name, sizeof(name), "s%06u.%s.%s", segment, after ? "after" : "before",
                momentum ? "momentum" : "parameters");
  return name;
}

// ---------------------------------------------------------------- signatures

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
      .f64(h.weight_decay).u32(h.keep_momentum ? 1 : 0);
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

}  // namespace cohort
