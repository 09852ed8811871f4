#include "cohort/protocol.h"

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <kj/exception.h>

#include <algorithm>
#include <cstring>
#include <limits>

#include "cohort/proto/cohort.capnp.h"

namespace cohort {
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

void write(proto::Welcome::Builder out, const Welcome& in) {
  out.setWorkerIndex(in.worker_index);
  out.setJobName(in.job_name);
  out.setRounds(in.rounds);
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
}

void write(proto::RoundResult::Builder out, const RoundResult& in) {
  out.setRound(in.round);
  out.setAccepted(in.accepted);
  out.setReason(in.reason);
  out.setTestAccuracy(in.test_accuracy);
  out.setTestLoss(in.test_loss);
  out.setParticipants(in.participants);
  out.setModelHash(as_capnp_bytes(in.model_hash));
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

Welcome read(proto::Welcome::Reader in, const DecodeLimits& limits) {
  return Welcome{in.getWorkerIndex(), read_text(in.getJobName(), limits, "job name"),
                 in.getRounds()};
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
  return out;
}

ErrorReply read(proto::Error::Reader in, const DecodeLimits& limits) {
  return ErrorReply{read_enum<ErrorCode>(static_cast<uint16_t>(in.getCode()), 10, "error code"),
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
  }
  return "unknown";
}

std::string_view message_kind(const Message& message) {
  static constexpr std::string_view kNames[] = {"hello",        "welcome", "task", "update",
                                                "round-result", "error",   "bye"};
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

}  // namespace cohort
