// Proof of learning: the challenge: deterministic, bound to every
// input, distributed as its parameters say, and not to be ground by the
// worker (the fixture is in proof_of_learning_testing.h).
#include "cohort/proof_of_learning.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <set>
#include <vector>

#include "proof_of_learning_testing.h"

namespace cohort::pol_testing {
namespace {

// ---- Challenges ----------------------------------------------------------------------

Digest numbered(uint64_t i) {
  Digest d{};
  for (int b = 0; b < 8; ++b) d[b] = static_cast<uint8_t>(i >> (8 * b));
  return blake2b_256(d);
}

TEST_F(ProofOfLearningTest, ChallengesAreDeterministicAndBoundToEveryInput) {
  const Digest secret = numbered(1), root = numbered(2);
  const PublicKey worker = numbered(3);
  const ChallengeParams always{1.0, 3};
  const Challenge c = derive_challenge(secret, root, worker, kTaskId, 40, always);
  EXPECT_EQ(c, derive_challenge(secret, root, worker, kTaskId, 40, always));
  ASSERT_TRUE(c.audited);
  EXPECT_EQ(c.segments.size(), 4u);
  EXPECT_TRUE(std::is_sorted(c.segments.begin(), c.segments.end()));
  EXPECT_EQ(std::set<uint32_t>(c.segments.begin(), c.segments.end()).size(), c.segments.size());
  EXPECT_EQ(c.segments.back(), 40u);
  EXPECT_GE(c.segments.front(), 1u);
  // Any other input changes the draw (over a few tries, against chance).
  int changed[4] = {0, 0, 0, 0};
  for (uint64_t i = 10; i < 20; ++i) {
    changed[0] += derive_challenge(numbered(i), root, worker, kTaskId, 40, always) != c;
    changed[1] += derive_challenge(secret, numbered(i), worker, kTaskId, 40, always) != c;
    changed[2] += derive_challenge(secret, root, numbered(i), kTaskId, 40, always) != c;
    changed[3] += derive_challenge(secret, root, worker, kTaskId + i, 40, always) != c;
  }
  for (int k = 0; k < 4; ++k) EXPECT_GE(changed[k], 9) << "input " << k;

  EXPECT_EQ(secret_commitment(secret), secret_commitment(secret));
  EXPECT_NE(secret_commitment(secret), secret_commitment(root));
  EXPECT_NE(secret_commitment(secret), blake2b_256(secret));

  EXPECT_FALSE(derive_challenge(secret, root, worker, kTaskId, 40, {0.0, 3}).audited);
  EXPECT_EQ(derive_challenge(secret, root, worker, kTaskId, 0, always), Challenge{});
  EXPECT_EQ(derive_challenge(secret, root, worker, kTaskId, 1, always).segments, std::vector<uint32_t>{1});
  EXPECT_EQ(derive_challenge(secret, root, worker, kTaskId, 3, {1.0, 5}).segments,
            (std::vector<uint32_t>{1, 2, 3}));
}

TEST_F(ProofOfLearningTest, ChallengeDistributionMatchesTheParameters) {
  const Digest root = numbered(2);
  const PublicKey worker = numbered(3);
  const ChallengeParams params{0.25, 3};
  constexpr int kSecrets = 8000;
  constexpr uint32_t kCount = 12;
  int audited = 0;
  std::vector<int> picked(kCount + 1, 0);
  for (int i = 0; i < kSecrets; ++i) {
    const Challenge c = derive_challenge(numbered(1000 + i), root, worker, kTaskId, kCount, params);
    if (!c.audited) {
      EXPECT_TRUE(c.segments.empty());
      continue;
    }
    ++audited;
    ASSERT_EQ(c.segments.size(), 4u);
    ASSERT_EQ(c.segments.back(), kCount);
    for (uint32_t s : c.segments) ++picked[s];
  }
  // Audit rate: 0.25 +- 4 sigma (sigma = sqrt(p (1 - p) / n) = 0.0048).
  EXPECT_NEAR(static_cast<double>(audited) / kSecrets, 0.25, 4 * 0.0048);
  // Each of the 11 non-last segments is drawn with probability 3/11 per
  // audit; the last every time.
  EXPECT_EQ(picked[kCount], audited);
  const double expected = audited * 3.0 / 11.0;
  const double sigma = std::sqrt(audited * (3.0 / 11.0) * (8.0 / 11.0));
  for (uint32_t s = 1; s < kCount; ++s) EXPECT_NEAR(picked[s], expected, 4 * sigma) << "segment " << s;
}

// A cheater that fakes half of segments 1..40 (of 41) and can re-roll its
// root (by perturbing anything it commits to) grinds for a root whose
// challenge misses every faked segment. If the challenge came from what the
// worker knows (here: a secret derived from the root itself, as in a
// self-audit), grinding wins every time; with the coordinator's secret,
// known to the worker only as secret_commitment(secret) until its root is
// in, the best the grinder can do is guess, and it escapes only as often
// as an honest draw lets it: C(20, 2) / C(40, 2) = 0.244 with s = 2.
TEST_F(ProofOfLearningTest, AChallengeCannotBeGroundFromWhatTheWorkerKnows) {
  constexpr uint32_t kCount = 41;
  const ChallengeParams params{1.0, 2};
  const PublicKey worker = numbered(3);
  std::set<uint32_t> faked;
  for (uint32_t j = 1; j < kCount; j += 2) faked.insert(j);  // 20 of the 40 that can be faked
  auto escapes = [&](const Challenge& c) {
    return std::none_of(c.segments.begin(), c.segments.end(), [&](uint32_t j) { return faked.contains(j); });
  };
  // The grinder's search: the first of up to 64 roots that escapes under
  // `predicted_secret(root)`.
  auto grind = [&](uint64_t task, const std::function<Digest(const Digest&)>& predicted_secret) {
    Digest root = numbered(task << 8);
    for (uint64_t nonce = 0; nonce < 64; ++nonce) {
      root = numbered((task << 8) + nonce);
      if (escapes(derive_challenge(predicted_secret(root), root, worker, task, kCount, params))) break;
    }
    return root;
  };
  constexpr int kTasks = 2000;
  int escaped_self_derived = 0, escaped_committed = 0;
  for (uint64_t task = 1; task <= kTasks; ++task) {
    // Strawman: the secret is a function of the root, so the worker computes it.
    auto self_derived = [](const Digest& root) { return blake2b_256(root); };
    const Digest ground = grind(task, self_derived);
    escaped_self_derived += escapes(derive_challenge(self_derived(ground), ground, worker, task, kCount, params));
    // Ours: the real secret is fresh and the worker sees only its commitment;
    // it grinds against that commitment, its best available guess.
    const Digest secret = numbered(900'000 + task);
    const Digest known = secret_commitment(secret);
    const Digest chosen = grind(task, [&](const Digest&) { return known; });
    escaped_committed += escapes(derive_challenge(secret, chosen, worker, task, kCount, params));
  }
  EXPECT_EQ(escaped_self_derived, kTasks);
  // 0.244 +- 5 sigma (sigma = sqrt(p (1 - p) / n) = 0.0096).
  const double p = 20.0 * 19.0 / (40.0 * 39.0);
  EXPECT_NEAR(static_cast<double>(escaped_committed) / kTasks, p, 5 * std::sqrt(p * (1 - p) / kTasks));
}

}  // namespace
}  // namespace cohort::pol_testing
