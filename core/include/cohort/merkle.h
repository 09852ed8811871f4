// A Merkle tree over BLAKE2b-256 in the shape of RFC 6962 (Certificate
// Transparency) section 2.1, which proof of learning uses to commit to a
// training trajectory (docs/PROOF_OF_LEARNING.md).
//
//   leaf hash  = H(0x00 || leaf bytes)
//   inner node = H(0x01 || left || right)
//   MTH(D[n])  = H(0x01 || MTH(D[0:k]) || MTH(D[k:n])), k the largest power
//                of two < n; MTH of one leaf is its leaf hash.
//
// Any n >= 1 works and no leaf is duplicated. The two prefixes keep leaves
// and inner nodes apart, so an inner node cannot be passed off as a leaf
// (second preimage) as long as the verifier hashes the leaf bytes itself and
// knows the leaf count from its own side (never from the prover).
//
// MerkleTree is a value type; its const methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "cohort/crypto.h"

namespace cohort {

// H(0x00 || leaf_bytes).
Digest merkle_leaf_hash(std::span<const uint8_t> leaf_bytes);
// H(0x01 || left || right).
Digest merkle_node_hash(const Digest& left, const Digest& right);

class MerkleTree {
 public:
  // Takes leaf hashes (merkle_leaf_hash of each leaf), in leaf order. An
  // empty tree has RFC 6962's root H() (the hash of no bytes) and no proofs.
  explicit MerkleTree(std::vector<Digest> leaf_hashes);

  const Digest& root() const { return root_; }
  size_t size() const { return leaves_.size(); }

  // The audit path of leaf `index` (RFC 6962 section 2.1.1): sibling
  // digests from the leaf up to the root; empty for a one-leaf tree.
  // `index` must be < size() (std::out_of_range otherwise: a caller bug).
  std::vector<Digest> proof(size_t index) const;

 private:
  std::vector<Digest> leaves_;
  Digest root_{};
};

// True when `proof` is the audit path of a leaf with `leaf_hash` at `index`
// in a tree of `leaf_count` leaves whose root is `root` (RFC 9162 section
// 2.1.3.2). False for index >= leaf_count, and for a proof of the wrong
// length. Thread-safe.
bool verify_merkle_proof(const Digest& root, size_t index, size_t leaf_count,
                         const Digest& leaf_hash, std::span<const Digest> proof);

}  // namespace cohort
