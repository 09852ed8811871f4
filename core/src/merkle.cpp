// RFC 6962 Merkle tree hash and audit paths over BLAKE2b-256.
#include "cohort/merkle.h"

#include <bit>
#include <stdexcept>
#include <string>

namespace cohort {
namespace {

constexpr uint8_t kLeafPrefix = 0x00;
constexpr uint8_t kNodePrefix = 0x01;

// The largest power of two strictly below n (n >= 2).
size_t split_point(size_t n) { return std::bit_floor(n - 1); }

Digest subtree_root(std::span<const Digest> leaves) {
  if (leaves.size() == 1) return leaves[0];
  const size_t k = split_point(leaves.size());
  return merkle_node_hash(subtree_root(leaves.first(k)), subtree_root(leaves.subspan(k)));
}

// PATH(m, D[n]) of RFC 6962 section 2.1.1, appended leaf-first to `out`.
void audit_path(std::span<const Digest> leaves, size_t m, std::vector<Digest>& out) {
  if (leaves.size() <= 1) return;
  const size_t k = split_point(leaves.size());
  if (m < k) {
    audit_path(leaves.first(k), m, out);
    out.push_back(subtree_root(leaves.subspan(k)));
  } else {
    audit_path(leaves.subspan(k), m - k, out);
    out.push_back(subtree_root(leaves.first(k)));
  }
}

}  // namespace

Digest merkle_leaf_hash(std::span<const uint8_t> leaf_bytes) {
  Hasher hasher;
  const uint8_t prefix = kLeafPrefix;
  hasher.update({&prefix, 1});
  hasher.update(leaf_bytes);
  return hasher.finish();
}

Digest merkle_node_hash(const Digest& left, const Digest& right) {
  Hasher hasher;
  const uint8_t prefix = kNodePrefix;
  hasher.update({&prefix, 1});
  hasher.update(left);
  hasher.update(right);
  return hasher.finish();
}

MerkleTree::MerkleTree(std::vector<Digest> leaf_hashes) : leaves_(std::move(leaf_hashes)) {
  root_ = leaves_.empty() ? blake2b_256({}) : subtree_root(leaves_);
}

std::vector<Digest> MerkleTree::proof(size_t index) const {
  if (index >= leaves_.size()) {
    throw std::out_of_range("Merkle proof for leaf " + std::to_string(index) + " of a tree of " +
                            std::to_string(leaves_.size()));
  }
  std::vector<Digest> out;
  audit_path(leaves_, index, out);
  return out;
}

bool verify_merkle_proof(const Digest& root, size_t index, size_t leaf_count,
                         const Digest& leaf_hash, std::span<const Digest> proof) {
  if (index >= leaf_count) return false;
  // fn walks the leaf's position up the tree and sn the last leaf's; where
  // fn is a right child, or the rightmost node of a level whose sibling
  // does not exist, the levels without a sibling are skipped.
  size_t fn = index;
  size_t sn = leaf_count - 1;
  Digest r = leaf_hash;
  for (const Digest& p : proof) {
    if (sn == 0) return false;  // the proof is longer than the tree is deep
    if ((fn & 1) == 1 || fn == sn) {
      r = merkle_node_hash(p, r);
      while ((fn & 1) == 0 && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      r = merkle_node_hash(r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn == 0 && r == root;
}

}  // namespace cohort
