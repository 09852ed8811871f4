// The values a proof-of-learning commitment is made of, shared by the wire
// (protocol.h) and the prover/verifier (proof_of_learning.h). Plain values,
// no LibTorch: docs/PROOF_OF_LEARNING.md defines each digest.
#pragma once

#include <cstdint>
#include <vector>

#include "cohort/crypto.h"

namespace cohort {

// Wire values: never renumber.
enum class DeterminismProfile : uint8_t { kCpuExact = 0, kTolerant = 1 };

struct ProofParams {
  uint32_t segment_steps = 50;  // k
  DeterminismProfile profile = DeterminismProfile::kCpuExact;
  double tolerance = 0.0;       // tau (relative L2), tolerant profile only
  bool operator==(const ProofParams&) const = default;
};

// Leaf j commits to the training state after segment j (leaf 0: the start
// state) and to the batches segment j used (zero digest for leaf 0).
struct LeafData {
  uint32_t index = 0;
  uint64_t step = 0;
  Digest parameters{};  // digest_of(model layout, parameters), as a Task digests its model
  Digest momentum{};
  Digest batches{};
  bool operator==(const LeafData&) const = default;
};

// A leaf with its Merkle proof (sibling digests, leaf to root).
struct LeafOpening {
  LeafData leaf;
  std::vector<Digest> proof;
  bool operator==(const LeafOpening&) const = default;
};

// How a task's audit is drawn from the challenge secret.
struct ChallengeParams {
  double audit_probability = 0.25;  // rho
  uint32_t segments_per_audit = 3;  // s random segments, plus always the last
  bool operator==(const ChallengeParams&) const = default;
};

// Which segments of a task the coordinator re-executes (1-based, ascending,
// always including the last one when audited).
struct Challenge {
  bool audited = false;
  std::vector<uint32_t> segments;
  bool operator==(const Challenge&) const = default;
};

}  // namespace cohort
