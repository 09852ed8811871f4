# The Cohort wire protocol: every message between a worker and the
# coordinator. This file is the only definition of the wire; docs/PROTOCOL.md
# explains the exchange.
#
# Framing: one ZeroMQ multipart message = one Envelope frame, followed by the
# raw little-endian bytes of at most one tensor payload (a model or an
# update) split into `PayloadHeader.chunkCount` frames. Tensor bytes never
# travel inside a Cap'n Proto list, so model size is not bounded by Cap'n
# Proto's traversal limit.
#
# Evolution: fields and enumerants are only ever added with higher numbers.
# Never renumber. A breaking change bumps `protocolVersion`.

@0x84908a593e22925d;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("cohort::proto");

const protocolVersion :UInt32 = 4;

enum DType {
  float32 @0;
  float64 @1;
  float16 @2;
  bfloat16 @3;
}

struct TensorSpec {
  name @0 :Text;           # parameter name, e.g. "conv1.weight"
  dtype @1 :DType;         # dtype of the bytes on the wire
  shape @2 :List(Int64);
}

# Describes the tensor bytes that follow the Envelope frame ("model
# transfer"): the tensors in canonical (name-sorted) order, concatenated.
struct PayloadHeader {
  tensors @0 :List(TensorSpec);
  totalBytes @1 :UInt64;   # sum of numel * dtype size over `tensors`
  chunkCount @2 :UInt32;   # number of payload frames after the Envelope
  digest @3 :Data;         # BLAKE2b-256 over the canonical layout and bytes
}

enum DeviceKind {
  cpu @0;
  cuda @1;
}

struct DeviceInfo {
  kind @0 :DeviceKind;
  name @1 :Text;           # e.g. "cpu" or "NVIDIA H100"
  threads @2 :UInt32;      # intra-op threads the worker trains with
  memoryBytes @3 :UInt64;  # device memory (0 if unknown)
}

# What a worker holds, described, never shipped.
struct DatasetInfo {
  kind @0 :Text;           # "fashion-mnist" or "idx"
  samples @1 :UInt64;
  classes @2 :UInt32;
}

struct Hello {
  workerKey @0 :Data;      # the worker's 32-byte Ed25519 public key
  device @1 :DeviceInfo;
  dataset @2 :DatasetInfo;
  software @3 :Text;       # e.g. "cohort 0.1.0"
}

struct Welcome {
  workerIndex @0 :UInt32;  # stable slot of this worker in the job
  jobName @1 :Text;
  rounds @2 :UInt32;
  coordinatorKey @3 :Data; # the coordinator's Ed25519 public key: it signs tasks,
                           # challenges and receipts
  receipts @4 :List(Receipt);  # the worker's latest receipts in the job's ledger (at most
                              # 1024), so that one missed while either side restarted arrives
}

struct Hyperparameters {
  localSteps @0 :UInt32;   # SGD steps per task; 0 = use localEpochs
  localEpochs @1 :Float64;
  batchSize @2 :UInt32;
  learningRate @3 :Float64;
  momentum @4 :Float64;
  weightDecay @5 :Float64;
  keepMomentum @6 :Bool;   # keep SGD momentum buffers from the worker's previous task
  loss @7 :Loss;           # what each step minimises (docs/CONFIG.md, [training] loss)
}

enum Loss {
  crossEntropy @0;
  nll @1;
  mse @2;
  bceWithLogits @3;
}

enum PartitionScheme {
  iid @0;
  dirichlet @1;
  gamma @2;
  none @3;
}

# Which shard of its local dataset the worker trains on.
struct DataSelection {
  scheme @0 :PartitionScheme;
  numParts @1 :UInt32;
  partIndex @2 :UInt32;
  alpha @3 :Float64;
  gamma @4 :Float64;
  seed @5 :UInt64;         # partition seed (the same for every worker)
}

enum DeterminismProfile {
  cpuExact @0;             # re-execution must reproduce the state hashes bitwise
  tolerant @1;             # relative L2 error <= tolerance (GPUs)
}

# What a task requires for proof of learning (docs/PROOF_OF_LEARNING.md).
struct ProofSpec {
  segmentSteps @0 :UInt32;       # k; 0 = this task carries no proof of learning
  totalSteps @1 :UInt32;         # SGD steps the worker must run (N segments of k)
  profile @2 :DeterminismProfile;
  tolerance @3 :Float64;         # tau, tolerant profile only
  secretCommitment @4 :Data;     # H(secret) of this task's challenge secret
  revealSeconds @5 :Float64;     # time allowed between a challenge and its reveal
  minStake @6 :Int64;            # micro-tokens the worker's account must hold
  datasetDigest @7 :Data;        # digest of the training split the shard is cut from
  auditProbability @8 :Float64;  # rho: the chance this task is audited
  segmentsPerAudit @9 :UInt32;   # s: random segments re-executed (plus the last)
  startMomentum @10 :Data;       # keep_momentum: digest of the momentum leaf 0 continues
                                 # (the worker's previous commitment's last leaf, or the
                                 # fresh digest); empty: not pinned. A worker that lost
                                 # those buffers may start fresh instead.
}

# Coordinator -> worker: train from this model; the model follows as payload.
struct Task {
  round @0 :UInt32;
  taskId @1 :UInt64;
  modelName @2 :Text;      # "cnn" | "mlp"
  hyper @3 :Hyperparameters;
  data @4 :DataSelection;
  seed @5 :UInt64;         # batch order and any training randomness
  deadlineUnixMs @6 :Int64;
  model @7 :PayloadHeader;
  proof @8 :ProofSpec;
  signature @9 :Data;      # coordinator's Ed25519 signature (docs/PROTOCOL.md)
  modelArchive @10 :Data;  # BLAKE2b-256 of the TorchScript archive when modelName = "torchscript"; else empty
}

# One Merkle leaf of a training trajectory: the state after `index` segments.
struct ProofLeaf {
  index @0 :UInt32;
  step @1 :UInt64;
  parameters @2 :Data;     # digest of the parameters (as a Task digests its model)
  momentum @3 :Data;       # digest of the optimizer's momentum buffers
  batches @4 :Data;        # digest of the batch indices of the segment
}

struct LeafOpening {
  leaf @0 :ProofLeaf;
  proof @1 :List(Data);    # sibling digests, leaf to root
}

# The worker's commitment to its trajectory, sent with the update: the
# Merkle root and the two anchors (leaf 0 = the announced model, the last
# leaf = the end of training), each proven against the root.
struct Commitment {
  root @0 :Data;
  totalSteps @1 :UInt32;
  segmentSteps @2 :UInt32;
  first @3 :LeafOpening;
  last @4 :LeafOpening;
}

struct TrainMetrics {
  localLoss @0 :Float64;     # mean training loss over the task's steps
  localAccuracy @1 :Float64; # mean training accuracy over the task's steps
  steps @2 :UInt32;
  trainSeconds @3 :Float64;
}

# Worker -> coordinator: the update (trained minus start parameters) follows
# as payload.
struct Update {
  round @0 :UInt32;
  taskId @1 :UInt64;
  numSamples @2 :UInt64;     # samples seen in training (FedAvg weight)
  metrics @3 :TrainMetrics;
  baseModelHash @4 :Data;    # digest of the model the worker started from
  delta @5 :PayloadHeader;
  commitment @6 :Commitment; # present when the task asked for proof of learning
  signature @7 :Data;        # worker's Ed25519 signature (docs/PROTOCOL.md)
}

# Coordinator -> worker, once its update and commitment are in: the task's
# challenge secret, and the segments it selects (the worker can recompute
# them from the secret).
struct Challenge {
  round @0 :UInt32;
  taskId @1 :UInt64;
  secret @2 :Data;
  audited @3 :Bool;
  segments @4 :List(UInt32); # 1-based, ascending
  signature @5 :Data;
}

struct SegmentProof {
  segment @0 :UInt32;
  before @1 :LeafOpening;    # leaf segment - 1
  after @2 :LeafOpening;     # leaf segment
}

# Worker -> coordinator: the states around each challenged segment. They
# follow as payload, tensors named "s<segment>.<before|after>.<parameters|momentum>"
# in name order.
struct Reveal {
  round @0 :UInt32;
  taskId @1 :UInt64;
  segments @2 :List(SegmentProof);
  states @3 :PayloadHeader;
  signature @4 :Data;
}

# Stored in the ledger; never renumber.
enum Verdict {
  pending @0;
  passed @1;                 # audited; re-execution matched; paid
  unaudited @2;              # not selected for audit; paid
  failed @3;                 # the audit failed; slashed and banned
  rejected @4;               # never aggregated; not paid, not slashed
  voided @5;                 # the audit could not finish, through no fault shown; not paid
}

# The coordinator's signed statement of how a task was settled.
struct Receipt {
  round @0 :UInt32;
  taskId @1 :UInt64;
  workerKey @2 :Data;
  updateHash @3 :Data;
  verdict @4 :Verdict;
  reason @5 :Text;
  reward @6 :Int64;          # micro-tokens
  slashed @7 :Int64;
  chainSeq @8 :UInt64;       # the ledger chain head it was issued at
  chainHash @9 :Data;
  coordinatorKey @10 :Data;
  signature @11 :Data;
}

# Coordinator -> participant, after the round closed.
struct RoundResult {
  round @0 :UInt32;
  accepted @1 :Bool;         # whether this worker's update was aggregated
  reason @2 :Text;           # why not, when not
  testAccuracy @3 :Float64;  # of the new global model; NaN in a round not evaluated ([data] eval_every)
  testLoss @4 :Float64;      # likewise
  participants @5 :UInt32;
  modelHash @6 :Data;        # digest of the new global model
  receipt @7 :Receipt;       # present when the job keeps a ledger
}

enum ErrorCode {
  internal @0;
  malformedMessage @1;
  unsupportedVersion @2;
  notRegistered @3;
  wrongRound @4;
  unknownTask @5;
  duplicate @6;
  tooLarge @7;
  invalidUpdate @8;
  deadlineExceeded @9;
  unavailable @10;
  badSignature @11;
  forbidden @12;             # banned key, or not enough stake
  rateLimited @13;           # more messages than [network] messages_per_second allows
}

struct Error {
  code @0 :ErrorCode;
  message @1 :Text;
  round @2 :UInt32;          # the round it refers to, when any
  taskId @3 :UInt64;
}

# Worker -> coordinator: send me the model archive with this digest (a
# Task named it and the worker holds no copy).
struct ModelRequest {
  archive @0 :Data;        # BLAKE2b-256, 32 bytes
}

# Coordinator -> worker: the archive's bytes follow as `chunkCount` raw
# payload frames, in order; their BLAKE2b-256 is `archive`.
struct ModelArchive {
  archive @0 :Data;
  totalBytes @1 :UInt64;
  chunkCount @2 :UInt32;
}

# Either side is leaving; the coordinator sends it when the job is done.
struct Bye {
  reason @0 :Text;
}

struct Envelope {
  version @0 :UInt32;
  body :union {
    hello @1 :Hello;
    welcome @2 :Welcome;
    task @3 :Task;
    update @4 :Update;
    roundResult @5 :RoundResult;
    error @6 :Error;
    bye @7 :Bye;
    challenge @8 :Challenge;
    reveal @9 :Reveal;
    modelRequest @10 :ModelRequest;
    modelArchive @11 :ModelArchive;
  }
}
