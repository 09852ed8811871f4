// Sample messages, one of each kind with every field set, shared by the
// protocol tests (protocol_test.cpp: round trips, signing bytes, names;
// protocol_decode_test.cpp: what the decoder refuses).
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <array>
#include <cstdint>
#include <vector>

#include "cohort/protocol.h"

namespace cohort::protocol_testing {

// 32 bytes first, first+1, ... so that every byte differs from the default 0.
inline std::array<uint8_t, 32> bytes32(uint8_t first) {
  std::array<uint8_t, 32> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(first + i);
  return out;
}

inline PayloadHeader three_tensor_header() {
  PayloadHeader h;
  h.tensors = {
      TensorSpec{"conv1.bias", DType::kFloat16, {20}},
      TensorSpec{"conv1.weight", DType::kBFloat16, {20, 1, 5, 5}},
      TensorSpec{"scalar", DType::kFloat64, {}},
  };
  h.total_bytes = 20 * 2 + 500 * 2 + 8;
  h.chunk_count = 3;
  h.digest = bytes32(0xa0);
  return h;
}

inline Hello sample_hello() {
  Hello m;
  m.worker_key = bytes32(1);
  m.device = DeviceInfo{DeviceKind::kCuda, "NVIDIA H100", 16, uint64_t{80} << 30};
  m.dataset = DatasetInfo{"fashion-mnist", 60000, 10};
  m.software = "cohort 0.1.0";
  return m;
}

inline Task sample_task() {
  Task m;
  m.round = 7;
  m.task_id = 0x1122334455667788ull;
  m.model_name = "cnn";
  m.hyper = Hyperparameters{25, 1.5, 64, 0.125, 0.9, 0.0005, true};
  m.data = DataSelection{PartitionScheme::kDirichlet, 8, 3, 0.3, 0.75, 99};
  m.seed = 123456789;
  m.deadline_unix_ms = -1700000000123;  // signed field: a negative value must survive
  m.model = three_tensor_header();
  m.proof.params = ProofParams{50, DeterminismProfile::kTolerant, 0.004};
  m.proof.total_steps = 470;
  m.proof.secret_commitment = bytes32(0x11);
  m.proof.reveal_seconds = 30.5;
  m.proof.min_stake = 300'000'000;
  m.proof.dataset_digest = bytes32(0x22);
  m.proof.challenge = ChallengeParams{0.375, 4};
  m.proof.start_momentum = bytes32(0x33);
  m.signature.fill(0x5a);
  return m;
}

inline LeafOpening sample_leaf(uint32_t index) {
  LeafOpening opening;
  opening.leaf = LeafData{index, uint64_t{index} * 50, bytes32(0x30), bytes32(0x31), bytes32(0x32)};
  opening.proof = {bytes32(0x33), bytes32(0x34), bytes32(0x35)};
  return opening;
}

inline UpdateCommitment sample_commitment() {
  return UpdateCommitment{bytes32(0x50), 470, 50, sample_leaf(0), sample_leaf(10)};
}

inline Update sample_update() {
  Update m;
  m.round = 9;
  m.task_id = 42;
  m.num_samples = 7500;
  m.metrics = TrainMetrics{0.4375, 0.8125, 25, 3.25};
  m.base_model_hash = bytes32(0x40);
  m.delta = three_tensor_header();
  m.delta.chunk_count = 11;
  m.delta.digest = bytes32(0x70);
  m.commitment = sample_commitment();
  m.signature.fill(0x6b);
  return m;
}

inline ChallengeMessage sample_challenge() {
  ChallengeMessage m;
  m.round = 3;
  m.task_id = 99;
  m.secret = bytes32(0x77);
  m.challenge = Challenge{true, {2, 7, 10}};
  m.signature.fill(0x7c);
  return m;
}

inline Reveal sample_reveal() {
  Reveal m;
  m.round = 3;
  m.task_id = 99;
  m.segments = {SegmentProof{2, sample_leaf(1), sample_leaf(2)}, SegmentProof{10, sample_leaf(9), sample_leaf(10)}};
  m.states = three_tensor_header();
  m.signature.fill(0x8d);
  return m;
}

inline Receipt sample_receipt() {
  Receipt r;
  r.round = 3;
  r.task_id = 99;
  r.worker = bytes32(0x01);
  r.update_hash = bytes32(0x02);
  r.verdict = Verdict::kFailed;
  r.reason = "segment 7: parameters differ after re-execution";
  r.reward = 0;
  r.slashed = 150'000'000;
  r.chain_seq = 41;
  r.chain_hash = bytes32(0x03);
  r.coordinator = bytes32(0x04);
  r.signature.fill(0x9e);
  return r;
}

inline RoundResult sample_round_result() {
  return RoundResult{12, true, "late by 3 s", 0.8867, 0.3125, 5, bytes32(0x90), {}};
}

inline ErrorReply sample_error() {
  return ErrorReply{ErrorCode::kTooLarge, "payload too large", 4, 77};
}

inline std::vector<uint8_t> to_bytes(capnp::MessageBuilder& builder) {
  auto words = capnp::messageToFlatArray(builder);
  auto bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

}  // namespace cohort::protocol_testing
