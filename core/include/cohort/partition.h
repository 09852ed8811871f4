// Splitting a labelled dataset into shards, one per worker, for experiments
// and simulations (ByzFL conventions; see docs/DATA.md).
//
// All schemes are deterministic functions of (labels, spec): the same seed
// gives the same shards on every machine, because randomness comes from a
// SplitMix64/xoshiro-style generator implemented here, not from the standard
// library's implementation-defined distributions.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.h"

namespace cohort {

// The values are the wire's (proto PartitionScheme, cast both ways in the
// codec): never renumber.
enum class PartitionScheme {
  kIid = 0,        // shuffle, then split into near-equal shards
  kDirichlet = 1,  // per class, shard shares drawn from Dirichlet(alpha * 1)
  kGamma = 2,      // a gamma share shuffled IID, the rest label-sorted and split
  kNone = 3,       // one shard holding every sample (num_parts copies)
};

struct PartitionSpec {
  PartitionScheme scheme = PartitionScheme::kIid;
  int num_parts = 1;     // >= 1
  double alpha = 0.5;    // kDirichlet only, > 0
  double gamma = 1.0;    // kGamma only, in [0, 1]
  uint64_t seed = 1;
};

// The schemes' names, in PartitionScheme order: "iid", "dirichlet", "gamma",
// "none". The only list of them: the job config's data.partition accepts
// exactly these. The span refers to static storage.
std::span<const std::string_view> partition_scheme_names();

// One of partition_scheme_names(); errors (InvalidArgument) list them.
Result<PartitionScheme> parse_partition_scheme(std::string_view name);
std::string_view partition_scheme_name(PartitionScheme scheme);

// Returns num_parts lists of sample indices into `labels`. For every scheme
// but kNone the lists are disjoint and together cover every sample exactly
// once. Each list is sorted ascending; kDirichlet lists may be empty.
// Errors (InvalidArgument): num_parts < 1, the chosen scheme's parameter out
// of range or NaN (the other scheme's parameter is ignored), or more parts
// than samples (except for kNone).
Result<std::vector<std::vector<int64_t>>> partition_indices(std::span<const uint8_t> labels,
                                                           const PartitionSpec& spec);

}  // namespace cohort
