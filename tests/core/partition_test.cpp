#include "cohort/partition.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

namespace cohort {
namespace {

using Shards = std::vector<std::vector<int64_t>>;

// `classes` x `per_class` samples, labels interleaved 0, 1, ..., 0, 1, ...
std::vector<uint8_t> balanced_labels(int classes, int per_class) {
  std::vector<uint8_t> labels;
  for (int i = 0; i < classes * per_class; ++i) labels.push_back(static_cast<uint8_t>(i % classes));
  return labels;
}

Shards partition_or_die(std::span<const uint8_t> labels, const PartitionSpec& spec) {
  Result<Shards> r = partition_indices(labels, spec);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  return r.ok() ? std::move(r).value() : Shards{};
}

PartitionSpec spec_for(PartitionScheme scheme, int parts, uint64_t seed = 1) {
  PartitionSpec spec;
  spec.scheme = scheme;
  spec.num_parts = parts;
  spec.seed = seed;
  spec.alpha = 0.5;
  spec.gamma = 0.5;
  return spec;
}

void expect_disjoint_cover(const Shards& shards, size_t n) {
  std::vector<int> seen(n, 0);
  size_t total = 0;
  for (const auto& shard : shards) {
    EXPECT_TRUE(std::is_sorted(shard.begin(), shard.end()));
    total += shard.size();
    for (int64_t i : shard) {
      ASSERT_GE(i, 0);
      ASSERT_LT(static_cast<size_t>(i), n);
      ++seen[static_cast<size_t>(i)];
    }
  }
  EXPECT_EQ(total, n);
  for (int count : seen) EXPECT_EQ(count, 1);
}

// Share of its most common label, averaged over non-empty shards.
double mean_max_class_share(const Shards& shards, std::span<const uint8_t> labels) {
  double sum = 0.0;
  int counted = 0;
  for (const auto& shard : shards) {
    if (shard.empty()) continue;
    std::array<int, 256> hist{};
    for (int64_t i : shard) ++hist[labels[static_cast<size_t>(i)]];
    sum +=
        static_cast<double>(*std::max_element(hist.begin(), hist.end())) / static_cast<double>(shard.size());
    ++counted;
  }
  return sum / counted;
}

size_t distinct_labels(const std::vector<int64_t>& shard, std::span<const uint8_t> labels) {
  std::set<uint8_t> seen;
  for (int64_t i : shard) seen.insert(labels[static_cast<size_t>(i)]);
  return seen.size();
}

constexpr std::array kSplittingSchemes = {PartitionScheme::kIid, PartitionScheme::kDirichlet,
                                          PartitionScheme::kGamma};

TEST(PartitionTest, EverySplittingSchemeIsADisjointCover) {
  const std::vector<uint8_t> labels = balanced_labels(10, 37);
  for (PartitionScheme scheme : kSplittingSchemes) {
    for (int parts : {1, 3, 10, 370}) {
      SCOPED_TRACE(std::string(partition_scheme_name(scheme)) + " parts=" + std::to_string(parts));
      const Shards shards = partition_or_die(labels, spec_for(scheme, parts));
      ASSERT_EQ(shards.size(), static_cast<size_t>(parts));
      expect_disjoint_cover(shards, labels.size());
    }
  }
}

TEST(PartitionTest, NoneGivesEveryPartEverySample) {
  const std::vector<uint8_t> labels = balanced_labels(3, 2);
  // More parts than samples is fine when nothing is split.
  const Shards shards = partition_or_die(labels, spec_for(PartitionScheme::kNone, 8));
  ASSERT_EQ(shards.size(), 8u);
  for (const auto& shard : shards) EXPECT_EQ(shard, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST(PartitionTest, SameSeedSameShardsDifferentSeedDifferentShards) {
  const std::vector<uint8_t> labels = balanced_labels(10, 50);
  for (PartitionScheme scheme : kSplittingSchemes) {
    SCOPED_TRACE(partition_scheme_name(scheme));
    const Shards a = partition_or_die(labels, spec_for(scheme, 7, 99));
    EXPECT_EQ(a, partition_or_die(labels, spec_for(scheme, 7, 99)));
    EXPECT_NE(a, partition_or_die(labels, spec_for(scheme, 7, 100)));
  }
}

TEST(PartitionTest, IidShardSizesDifferByAtMostOne) {
  const std::vector<uint8_t> labels = balanced_labels(10, 103);  // 1030 samples
  const Shards shards = partition_or_die(labels, spec_for(PartitionScheme::kIid, 7));
  size_t smallest = labels.size(), largest = 0;
  for (const auto& shard : shards) {
    smallest = std::min(smallest, shard.size());
    largest = std::max(largest, shard.size());
  }
  EXPECT_EQ(smallest, 147u);
  EXPECT_EQ(largest, 148u);
}

TEST(PartitionTest, IidMixesLabelSortedData) {
  std::vector<uint8_t> labels = balanced_labels(10, 100);
  std::sort(labels.begin(), labels.end());  // an unshuffled split would give one label per shard
  const Shards shards = partition_or_die(labels, spec_for(PartitionScheme::kIid, 10));
  EXPECT_LT(mean_max_class_share(shards, labels), 0.22);
  for (const auto& shard : shards) EXPECT_EQ(distinct_labels(shard, labels), 10u);
}

TEST(PartitionTest, GammaZeroIsFullyLabelSorted) {
  const std::vector<uint8_t> labels = balanced_labels(10, 100);
  PartitionSpec spec = spec_for(PartitionScheme::kGamma, 10);
  spec.gamma = 0.0;
  const Shards shards = partition_or_die(labels, spec);
  for (const auto& shard : shards) {
    EXPECT_EQ(shard.size(), 100u);
    EXPECT_EQ(distinct_labels(shard, labels), 1u);
  }
  // Sorting by (label, index) makes shard c hold exactly class c.
  EXPECT_EQ(labels[static_cast<size_t>(shards[3].front())], 3);
}

TEST(PartitionTest, GammaOneIsNearlyUniformPerShard) {
  const std::vector<uint8_t> labels = balanced_labels(10, 100);
  PartitionSpec spec = spec_for(PartitionScheme::kGamma, 10);
  spec.gamma = 1.0;
  const Shards shards = partition_or_die(labels, spec);
  for (const auto& shard : shards) {
    ASSERT_EQ(shard.size(), 100u);
    std::array<int, 10> hist{};
    for (int64_t i : shard) ++hist[labels[static_cast<size_t>(i)]];
    // Expected 10 per class; a hypergeometric count stays well within [1, 22].
    for (int h : hist) {
      EXPECT_GE(h, 1);
      EXPECT_LE(h, 22);
    }
  }
  EXPECT_LT(mean_max_class_share(shards, labels), 0.22);
}

TEST(PartitionTest, GammaHalfMixesBothParts) {
  const std::vector<uint8_t> labels = balanced_labels(10, 100);
  PartitionSpec spec = spec_for(PartitionScheme::kGamma, 10);
  spec.gamma = 0.5;
  const Shards shards = partition_or_die(labels, spec);
  for (const auto& shard : shards) EXPECT_EQ(shard.size(), 100u);
  const double share = mean_max_class_share(shards, labels);
  // Between gamma=1 (about 0.17) and gamma=0 (1.0): half of each shard is
  // label-sorted, spanning one or two classes.
  EXPECT_GT(share, 0.3);
  EXPECT_LT(share, 0.65);
}

TEST(PartitionTest, SmallDirichletAlphaIsMoreSkewed) {
  const std::vector<uint8_t> labels = balanced_labels(10, 200);
  PartitionSpec skewed = spec_for(PartitionScheme::kDirichlet, 10);
  skewed.alpha = 0.1;
  PartitionSpec even = skewed;
  even.alpha = 100.0;
  const double skewed_share = mean_max_class_share(partition_or_die(labels, skewed), labels);
  const double even_share = mean_max_class_share(partition_or_die(labels, even), labels);
  EXPECT_GT(skewed_share, 0.5);
  EXPECT_LT(even_share, 0.2);
}

TEST(PartitionTest, DirichletSurvivesTinyAlpha) {
  // At this alpha most raw gamma draws underflow to 0. Nearly every class
  // must still land whole in one shard, chosen at random: if all P draws of
  // a class were 0 the proportions would be NaN and the class would pile
  // into one fixed shard.
  constexpr int kClasses = 40;
  constexpr size_t kParts = 5;
  const std::vector<uint8_t> labels = balanced_labels(kClasses, 10);
  PartitionSpec spec = spec_for(PartitionScheme::kDirichlet, kParts);
  spec.alpha = 1e-4;
  const Shards shards = partition_or_die(labels, spec);
  expect_disjoint_cover(shards, labels.size());

  std::array<int, kParts> classes_mostly_in{};
  int whole = 0;
  for (int c = 0; c < kClasses; ++c) {
    std::array<int, kParts> count{};
    for (size_t j = 0; j < kParts; ++j) {
      for (int64_t i : shards[j]) count[j] += labels[static_cast<size_t>(i)] == c;
    }
    const auto top = std::max_element(count.begin(), count.end());
    whole += *top == 10;
    ++classes_mostly_in[static_cast<size_t>(top - count.begin())];
  }
  EXPECT_GE(whole, kClasses - 2);
  for (int held : classes_mostly_in) EXPECT_LT(held, 20);  // about 8 each
}

TEST(PartitionTest, RejectsBadSpecs) {
  const std::vector<uint8_t> labels = balanced_labels(2, 5);
  auto expect_invalid = [&](const PartitionSpec& spec, const std::string& word) {
    const Result<Shards> r = partition_indices(labels, spec);
    ASSERT_FALSE(r.ok()) << word;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find(word), std::string::npos) << r.status().to_string();
  };
  const double nan = std::numeric_limits<double>::quiet_NaN();

  expect_invalid(spec_for(PartitionScheme::kIid, 0), "num_parts");
  expect_invalid(spec_for(PartitionScheme::kNone, -1), "num_parts");
  expect_invalid(spec_for(PartitionScheme::kIid, 11), "11 parts");
  expect_invalid(spec_for(PartitionScheme::kGamma, 11), "11 parts");
  expect_invalid(spec_for(PartitionScheme::kDirichlet, 11), "11 parts");

  for (double alpha : {0.0, -1.0, nan, std::numeric_limits<double>::infinity()}) {
    PartitionSpec spec = spec_for(PartitionScheme::kDirichlet, 2);
    spec.alpha = alpha;
    expect_invalid(spec, "alpha");
  }
  for (double gamma : {-0.1, 1.5, nan}) {
    PartitionSpec spec = spec_for(PartitionScheme::kGamma, 2);
    spec.gamma = gamma;
    expect_invalid(spec, "gamma");
  }
  // Parameters of other schemes are not checked.
  PartitionSpec iid = spec_for(PartitionScheme::kIid, 2);
  iid.alpha = nan;
  iid.gamma = 7;
  EXPECT_TRUE(partition_indices(labels, iid).ok());
}

TEST(PartitionTest, EmptyLabels) {
  EXPECT_FALSE(partition_indices({}, spec_for(PartitionScheme::kIid, 1)).ok());
  const Result<Shards> none = partition_indices({}, spec_for(PartitionScheme::kNone, 2));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none.value(), Shards(2));
}

TEST(PartitionSchemeTest, NamesRoundTrip) {
  for (PartitionScheme scheme : {PartitionScheme::kIid, PartitionScheme::kDirichlet, PartitionScheme::kGamma,
                                 PartitionScheme::kNone}) {
    const Result<PartitionScheme> parsed = parse_partition_scheme(partition_scheme_name(scheme));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(parsed.value(), scheme);
  }
  EXPECT_EQ(partition_scheme_name(PartitionScheme::kDirichlet), "dirichlet");
}

TEST(PartitionSchemeTest, UnknownNameListsValidOnes) {
  const Result<PartitionScheme> r = parse_partition_scheme("IID");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("\"IID\""), std::string::npos);
  EXPECT_NE(r.status().message().find("iid, dirichlet, gamma, none"), std::string::npos)
      << r.status().to_string();
}

}  // namespace
}  // namespace cohort
