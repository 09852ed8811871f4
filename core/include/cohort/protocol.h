// The worker <-> coordinator messages as C++ value types, and their
// conversion to and from the Cap'n Proto envelope defined in
// proto/cohort.capnp (the one source of truth for the wire).
//
// Decoding happens at the edge: a received frame becomes one of these types
// or an error, and nothing past this header touches Cap'n Proto. Tensor
// bytes are not part of these messages: a PayloadHeader describes them and
// they travel as separate frames (see wire.h and tensor_codec.h).
//
// All functions are thread-safe (no shared state).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "cohort/commitment.h"
#include "cohort/crypto.h"
#include "cohort/loss.h"
#include "cohort/partition.h"
#include "cohort/receipt.h"
#include "cohort/status.h"

namespace cohort {

// Bumped on any breaking change to proto/cohort.capnp.
inline constexpr uint32_t kProtocolVersion = 4;

// Values match proto DType; never renumber.
enum class DType : uint8_t { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };
size_t dtype_size(DType dtype);
std::string_view dtype_name(DType dtype);
Result<DType> parse_dtype(std::string_view name);  // "float32", "float16", ...

struct TensorSpec {
  std::string name;
  DType dtype = DType::kFloat32;
  std::vector<int64_t> shape;

  int64_t numel() const;  // product of shape; 1 for a scalar
  bool operator==(const TensorSpec&) const = default;
};

struct PayloadHeader {
  std::vector<TensorSpec> tensors;  // canonical order: sorted by name
  uint64_t total_bytes = 0;
  uint32_t chunk_count = 0;
  Digest digest{};
  bool operator==(const PayloadHeader&) const = default;
};

enum class DeviceKind : uint8_t { kCpu = 0, kCuda = 1 };

struct DeviceInfo {
  DeviceKind kind = DeviceKind::kCpu;
  std::string name;
  uint32_t threads = 0;
  uint64_t memory_bytes = 0;
  bool operator==(const DeviceInfo&) const = default;
};

struct DatasetInfo {
  std::string kind;
  uint64_t samples = 0;
  uint32_t classes = 0;
  bool operator==(const DatasetInfo&) const = default;
};

struct Hello {
  PublicKey worker_key{};
  DeviceInfo device;
  DatasetInfo dataset;
  std::string software;
  bool operator==(const Hello&) const = default;
};

inline constexpr size_t kMaxWelcomeReceipts = 1024;  // DecodeLimits::max_list_entries

struct Welcome {
  uint32_t worker_index = 0;
  std::string job_name;
  uint32_t rounds = 0;
  PublicKey coordinator_key{};
  // The worker's latest receipts in the job's ledger (at most
  // kMaxWelcomeReceipts): one missed while either side restarted arrives here.
  std::vector<Receipt> receipts;
  bool operator==(const Welcome&) const = default;
};

struct Hyperparameters {
  uint32_t local_steps = 0;
  double local_epochs = 0.0;
  uint32_t batch_size = 32;
  double learning_rate = 0.05;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool keep_momentum = false;
  LossKind loss = LossKind::kCrossEntropy;
  bool operator==(const Hyperparameters&) const = default;
};

struct DataSelection {
  PartitionScheme scheme = PartitionScheme::kNone;
  uint32_t num_parts = 1;
  uint32_t part_index = 0;
  double alpha = 0.5;
  double gamma = 1.0;
  uint64_t seed = 0;
  bool operator==(const DataSelection&) const = default;
};

// What a task requires for proof of learning; params.segment_steps == 0
// means none.
struct ProofSpec {
  ProofParams params{0, DeterminismProfile::kCpuExact, 0.0};
  uint32_t total_steps = 0;
  Digest secret_commitment{};
  double reveal_seconds = 0.0;
  int64_t min_stake = 0;  // micro-tokens
  Digest dataset_digest{};
  ChallengeParams challenge;
  // With keep_momentum: the momentum digest leaf 0 must carry (the last leaf
  // of the worker's previous commitment, or fresh_momentum_digest()); a
  // worker that no longer holds those buffers may start from fresh momentum
  // instead. Zero: not pinned (keep_momentum off, or no proof).
  Digest start_momentum{};
  bool enabled() const { return params.segment_steps > 0; }
  bool operator==(const ProofSpec&) const = default;
};

struct Task {
  uint32_t round = 0;
  uint64_t task_id = 0;
  std::string model_name;
  Hyperparameters hyper;
  DataSelection data;
  uint64_t seed = 0;
  int64_t deadline_unix_ms = 0;
  PayloadHeader model;
  ProofSpec proof;
  Signature signature{};  // the coordinator's, over task_signing_bytes()
  // BLAKE2b-256 of the TorchScript archive the task trains, when model_name
  // is kTorchScriptModelName (model_names.h); zero for a built-in.
  Digest model_archive{};
  bool operator==(const Task&) const = default;
};

struct TrainMetrics {
  double local_loss = 0.0;
  double local_accuracy = 0.0;
  uint32_t steps = 0;
  double train_seconds = 0.0;
  bool operator==(const TrainMetrics&) const = default;
};

// The worker's commitment to its training trajectory (Merkle root) with
// the two anchors proven against it.
struct UpdateCommitment {
  Digest root{};
  uint32_t total_steps = 0;
  uint32_t segment_steps = 0;
  LeafOpening first;
  LeafOpening last;
  bool operator==(const UpdateCommitment&) const = default;
};

struct Update {
  uint32_t round = 0;
  uint64_t task_id = 0;
  uint64_t num_samples = 0;
  TrainMetrics metrics;
  Digest base_model_hash{};
  PayloadHeader delta;
  std::optional<UpdateCommitment> commitment;  // when the task asked for proof of learning
  Signature signature{};                 // the worker's, over update_signing_bytes()
  bool operator==(const Update&) const = default;
};

// Coordinator -> worker once the commitment is in: the secret behind the
// task's secret commitment and the segments it selects.
struct ChallengeMessage {
  uint32_t round = 0;
  uint64_t task_id = 0;
  Digest secret{};
  Challenge challenge;
  Signature signature{};
  bool operator==(const ChallengeMessage&) const = default;
};

struct SegmentProof {
  uint32_t segment = 0;
  LeafOpening before;  // leaf segment - 1
  LeafOpening after;   // leaf segment
  bool operator==(const SegmentProof&) const = default;
};

// Worker -> coordinator: the states around each challenged segment travel
// as payload, described by `states` (see reveal_tensor_name()).
struct Reveal {
  uint32_t round = 0;
  uint64_t task_id = 0;
  std::vector<SegmentProof> segments;
  PayloadHeader states;
  Signature signature{};
  bool operator==(const Reveal&) const = default;
};

// "s0003.before.parameters": the payload tensor of one revealed state part.
// Zero-padded so that name order is segment order.
std::string reveal_tensor_name(uint32_t segment, bool after, bool momentum);

struct RoundResult {
  uint32_t round = 0;
  bool accepted = false;
  std::string reason;
  double test_accuracy = 0.0;
  double test_loss = 0.0;
  uint32_t participants = 0;
  Digest model_hash{};
  std::optional<Receipt> receipt;  // when the job keeps a ledger
  bool operator==(const RoundResult&) const = default;
};

// Values match proto ErrorCode; never renumber.
enum class ErrorCode : uint16_t {
  kInternal = 0,
  kMalformedMessage = 1,
  kUnsupportedVersion = 2,
  kNotRegistered = 3,
  kWrongRound = 4,
  kUnknownTask = 5,
  kDuplicate = 6,
  kTooLarge = 7,
  kInvalidUpdate = 8,
  kDeadlineExceeded = 9,
  kUnavailable = 10,
  kBadSignature = 11,
  kForbidden = 12,  // a banned key, or not enough stake
  kRateLimited = 13,
};
std::string_view error_code_name(ErrorCode code);

struct ErrorReply {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
  uint32_t round = 0;
  uint64_t task_id = 0;
  bool operator==(const ErrorReply&) const = default;
};

struct Bye {
  std::string reason;
  bool operator==(const Bye&) const = default;
};

// A worker asks for the archive a Task named (it holds no copy).
struct ModelRequest {
  Digest archive{};
  bool operator==(const ModelRequest&) const = default;
};

// The archive's bytes travel as chunk_count payload frames, in order.
struct ModelArchiveMessage {
  Digest archive{};
  uint64_t total_bytes = 0;
  uint32_t chunk_count = 0;
  bool operator==(const ModelArchiveMessage&) const = default;
};

using Message = std::variant<Hello, Welcome, Task, Update, RoundResult, ErrorReply, Bye,
                             ChallengeMessage, Reveal, ModelRequest, ModelArchiveMessage>;

// The bytes each signature covers: a domain tag naming the message kind and
// protocol version, the signer's counterpart key (the worker a task is for,
// the worker who sends an update), and every field but the signature. A
// signature for one round, task, worker or message kind verifies for no
// other.
std::vector<uint8_t> task_signing_bytes(const Task& task, const PublicKey& worker);
std::vector<uint8_t> update_signing_bytes(const Update& update, const PublicKey& worker);
std::vector<uint8_t> challenge_signing_bytes(const ChallengeMessage& challenge, const PublicKey& worker);
std::vector<uint8_t> reveal_signing_bytes(const Reveal& reveal, const PublicKey& worker);

// "hello", "task", ... for logs.
std::string_view message_kind(const Message& message);

// Limits applied while decoding what a peer sent.
struct DecodeLimits {
  size_t max_envelope_bytes = size_t{16} << 20;
  uint64_t traversal_limit_words = uint64_t{8} << 20;  // 64 MiB
  int nesting_limit = 16;
  size_t max_tensors = 100'000;       // entries in one PayloadHeader
  size_t max_tensor_rank = 8;
  size_t max_text_bytes = 4096;       // names, messages, reasons
  size_t max_list_entries = 1024;     // Merkle proof digests, challenged segments
};

// Serialises `message` in an envelope stamped with kProtocolVersion.
std::vector<uint8_t> encode_message(const Message& message);

// Same, with an explicit version (tests use it to speak a wrong version).
std::vector<uint8_t> encode_message_with_version(const Message& message, uint32_t version);

// Parses one envelope. Errors:
//   Corruption          - not a valid Cap'n Proto envelope, an unknown body,
//                         a field out of range (bad key length, enum value).
//   ResourceExhausted   - bigger than a limit.
//   Unsupported         - a protocol version other than kProtocolVersion; the
//                         message says which version was received.
Result<Message> decode_message(std::span<const uint8_t> bytes,
                               const DecodeLimits& limits = DecodeLimits());

// The wire error code that best describes a decode or validation Status.
ErrorCode error_code_for(const Status& status);

}  // namespace cohort
