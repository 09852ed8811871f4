// RFC 6962 Merkle tree: hand-built roots, every audit path of every size
// from 1 to 33 verifies, and every kind of tampering fails.
#include "cohort/merkle.h"

#include <gtest/gtest.h>

#include <bit>
#include <string>

namespace cohort {
namespace {

std::vector<uint8_t> bytes_of(std::string_view text) { return {text.begin(), text.end()}; }

std::vector<Digest> leaves(size_t n) {
  std::vector<Digest> out;
  for (size_t i = 0; i < n; ++i) out.push_back(merkle_leaf_hash(bytes_of("leaf " + std::to_string(i))));
  return out;
}

std::vector<uint8_t> concat(const Digest& a, const Digest& b) {
  std::vector<uint8_t> out(a.begin(), a.end());
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

class MerkleTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(init_crypto().ok()); }
};

TEST_F(MerkleTest, LeafAndNodeHashesAreDomainSeparated) {
  const std::vector<uint8_t> data = bytes_of("x");
  EXPECT_NE(merkle_leaf_hash(data), blake2b_256(data));
  const std::vector<uint8_t> prefixed = {0x00, 'x'};
  EXPECT_EQ(merkle_leaf_hash(data), blake2b_256(prefixed));
  const Digest a = merkle_leaf_hash(bytes_of("a")), b = merkle_leaf_hash(bytes_of("b"));
  std::vector<uint8_t> node = {0x01};
  const std::vector<uint8_t> ab = concat(a, b);
  node.insert(node.end(), ab.begin(), ab.end());
  EXPECT_EQ(merkle_node_hash(a, b), blake2b_256(node));
  EXPECT_NE(merkle_node_hash(a, b), merkle_leaf_hash(ab));
}

TEST_F(MerkleTest, RootsFollowTheLargestPowerOfTwoSplit) {
  const std::vector<Digest> l = leaves(7);
  auto node = [](const Digest& x, const Digest& y) { return merkle_node_hash(x, y); };
  EXPECT_EQ(MerkleTree({l[0]}).root(), l[0]);
  EXPECT_EQ(MerkleTree({l[0], l[1]}).root(), node(l[0], l[1]));
  EXPECT_EQ(MerkleTree({l[0], l[1], l[2]}).root(), node(node(l[0], l[1]), l[2]));
  const Digest four = node(node(l[0], l[1]), node(l[2], l[3]));
  EXPECT_EQ(MerkleTree({l.begin(), l.begin() + 4}).root(), four);
  EXPECT_EQ(MerkleTree({l.begin(), l.begin() + 5}).root(), node(four, l[4]));
  EXPECT_EQ(MerkleTree(l).root(), node(four, node(node(l[4], l[5]), l[6])));
  EXPECT_EQ(MerkleTree({}).root(), blake2b_256({}));
  EXPECT_EQ(MerkleTree({}).size(), 0u);
}

TEST_F(MerkleTest, AuditPathsAreSiblingsFromLeafToRoot) {
  const std::vector<Digest> l = leaves(5);
  const MerkleTree tree(l);
  const Digest left01 = merkle_node_hash(l[0], l[1]);
  const Digest right23 = merkle_node_hash(l[2], l[3]);
  EXPECT_EQ(tree.proof(0), (std::vector<Digest>{l[1], right23, l[4]}));
  EXPECT_EQ(tree.proof(3), (std::vector<Digest>{l[2], left01, l[4]}));
  EXPECT_EQ(tree.proof(4), (std::vector<Digest>{merkle_node_hash(left01, right23)}));
  EXPECT_TRUE(MerkleTree({l[0]}).proof(0).empty());
  EXPECT_THROW(tree.proof(5), std::out_of_range);
}

TEST_F(MerkleTest, EveryProofOfEverySizeVerifiesAndEveryTamperingFails) {
  const Digest stranger = merkle_leaf_hash(bytes_of("not a leaf"));
  for (size_t n = 1; n <= 33; ++n) {
    const std::vector<Digest> l = leaves(n);
    const MerkleTree tree(l);
    ASSERT_EQ(tree.size(), n);
    Digest wrong_root = tree.root();
    wrong_root[0] ^= 1;
    for (size_t i = 0; i < n; ++i) {
      SCOPED_TRACE("n=" + std::to_string(n) + " i=" + std::to_string(i));
      const std::vector<Digest> proof = tree.proof(i);
      ASSERT_TRUE(verify_merkle_proof(tree.root(), i, n, l[i], proof));
      // Another leaf, or this leaf at another index.
      EXPECT_FALSE(verify_merkle_proof(tree.root(), i, n, stranger, proof));
      for (size_t j = 0; j < n; ++j) {
        if (j == i) continue;
        EXPECT_FALSE(verify_merkle_proof(tree.root(), j, n, l[i], proof)) << "index " << j;
        EXPECT_FALSE(verify_merkle_proof(tree.root(), i, n, l[j], proof)) << "leaf " << j;
      }
      EXPECT_FALSE(verify_merkle_proof(tree.root(), i + n, n, l[i], proof));
      EXPECT_FALSE(verify_merkle_proof(wrong_root, i, n, l[i], proof));
      // Each sibling flipped, the path cut short or padded.
      for (size_t k = 0; k < proof.size(); ++k) {
        std::vector<Digest> bad = proof;
        bad[k][31] ^= 0x80;
        EXPECT_FALSE(verify_merkle_proof(tree.root(), i, n, l[i], bad)) << "sibling " << k;
      }
      if (!proof.empty()) {
        EXPECT_FALSE(verify_merkle_proof(tree.root(), i, n, l[i],
                                         std::span<const Digest>(proof).first(proof.size() - 1)));
      }
      std::vector<Digest> longer = proof;
      longer.push_back(stranger);
      EXPECT_FALSE(verify_merkle_proof(tree.root(), i, n, l[i], longer));
      // (The leaf count is not covered: a path can be valid for several
      // counts, e.g. leaf 0 of 3 and of 4 leaves. Verifiers take the count
      // from what they know, never from the prover.)
    }
  }
}

// An inner node is H(0x01 || left || right). Offering left || right as the
// bytes of one leaf gives H(0x00 || left || right), a different digest, so
// the node cannot be passed off as a leaf of a shallower tree.
TEST_F(MerkleTest, InnerNodePresentedAsALeafFails) {
  for (size_t n = 2; n <= 33; ++n) {
    SCOPED_TRACE("n=" + std::to_string(n));
    const std::vector<Digest> l = leaves(n);
    const MerkleTree tree(l);
    const size_t k = std::bit_floor(n - 1);
    const Digest left = MerkleTree({l.begin(), l.begin() + static_cast<ptrdiff_t>(k)}).root();
    const Digest right = MerkleTree({l.begin() + static_cast<ptrdiff_t>(k), l.end()}).root();
    ASSERT_EQ(merkle_node_hash(left, right), tree.root());
    // The root's preimage as a one-leaf tree.
    EXPECT_FALSE(verify_merkle_proof(tree.root(), 0, 1, merkle_leaf_hash(concat(left, right)), {}));
    // The left subtree's preimage as leaf 0 of a two-leaf tree (left, right).
    if (k >= 2) {
      const size_t half = std::bit_floor(k - 1);
      const Digest ll = MerkleTree({l.begin(), l.begin() + static_cast<ptrdiff_t>(half)}).root();
      const Digest lr =
          MerkleTree({l.begin() + static_cast<ptrdiff_t>(half), l.begin() + static_cast<ptrdiff_t>(k)}).root();
      ASSERT_EQ(merkle_node_hash(ll, lr), left);
      const std::vector<Digest> proof = {right};
      EXPECT_FALSE(verify_merkle_proof(tree.root(), 0, 2, merkle_leaf_hash(concat(ll, lr)), proof));
      // Only a verifier that accepted the node digest itself as a leaf hash
      // (and the prover's leaf count) would be fooled: that is why callers
      // hash leaf bytes themselves and fix the count.
      EXPECT_TRUE(verify_merkle_proof(tree.root(), 0, 2, left, proof));
    }
  }
}

}  // namespace
}  // namespace cohort
