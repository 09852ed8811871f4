// Partition schemes; docs/DATA.md holds the exact definitions these follow.
#include "cohort/partition.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <utility>

#include "cohort/random.h"

namespace cohort {
namespace {

using Shards = std::vector<std::vector<int64_t>>;

// Indexed by PartitionScheme; partition_scheme_names() returns it.
constexpr std::string_view kSchemeNames[] = {"iid", "dirichlet", "gamma", "none"};
static_assert(std::size(kSchemeNames) == static_cast<size_t>(PartitionScheme::kNone) + 1);

Status validate(size_t num_samples, const PartitionSpec& spec) {
  if (spec.num_parts < 1) {
    return Status::invalid_argument("num_parts must be >= 1, got " + std::to_string(spec.num_parts));
  }
  // Written as negated ranges so that NaN fails them too; an infinite alpha
  // would make every gamma draw infinite and the proportions NaN.
  if (spec.scheme == PartitionScheme::kDirichlet && !(spec.alpha > 0 && std::isfinite(spec.alpha))) {
    return Status::invalid_argument("dirichlet alpha must be finite and > 0, got " +
                                    std::to_string(spec.alpha));
  }
  if (spec.scheme == PartitionScheme::kGamma && !(spec.gamma >= 0 && spec.gamma <= 1)) {
    return Status::invalid_argument("gamma must be in [0, 1], got " + std::to_string(spec.gamma));
  }
  if (spec.scheme != PartitionScheme::kNone && static_cast<size_t>(spec.num_parts) > num_samples) {
    return Status::invalid_argument("cannot split " + std::to_string(num_samples) + " samples into " +
                                    std::to_string(spec.num_parts) + " parts");
  }
  return Status();
}

std::vector<int64_t> all_indices(size_t n) {
  std::vector<int64_t> out(n);
  std::iota(out.begin(), out.end(), int64_t{0});
  return out;
}

// Appends `items` to the shards as contiguous runs whose sizes differ by at
// most one; the first (size % shards) runs take the extra item.
void split_even(std::span<const int64_t> items, Shards& shards) {
  const size_t parts = shards.size();
  const size_t base = items.size() / parts;
  const size_t extra = items.size() % parts;
  size_t start = 0;
  for (size_t j = 0; j < parts; ++j) {
    const size_t len = base + (j < extra ? 1 : 0);
    shards[j].insert(shards[j].end(), items.begin() + start, items.begin() + start + len);
    start += len;
  }
}

// log of a Gamma(shape, 1) draw. For shape < 1 it consumes the same draws as
// Rng::gamma but keeps U^(1/shape) in log space: with a small alpha every
// draw can underflow to 0, which would leave nothing to normalise.
double log_gamma_draw(Rng& rng, double shape) {
  if (shape >= 1.0) return std::log(rng.gamma(shape));
  const double log_x = std::log(rng.gamma(shape + 1.0));
  return log_x + std::log(1.0 - rng.uniform_double()) / shape;
}

// Dirichlet(alpha, ..., alpha) over `n` parts as normalised gamma draws.
std::vector<double> dirichlet(Rng& rng, double alpha, size_t n) {
  std::vector<double> logs(n);
  for (double& l : logs) l = log_gamma_draw(rng, alpha);
  const double top = *std::max_element(logs.begin(), logs.end());
  double sum = 0.0;
  for (double& l : logs) sum += (l = std::exp(l - top));
  for (double& l : logs) l /= sum;
  return logs;
}

// Shard j gets items [floor(P_{j-1} * m), floor(P_j * m)) where P_j is the
// cumulative share and m = items.size(); the last shard takes the rest.
void split_at_shares(std::span<const int64_t> items, const std::vector<double>& shares, Shards& shards) {
  const size_t m = items.size();
  double cumulative = 0.0;
  size_t start = 0;
  for (size_t j = 0; j < shards.size(); ++j) {
    size_t end = m;
    if (j + 1 < shards.size()) {
      cumulative += shares[j];
      // min() guards against a cumulative sum that rounds above 1.
      end = std::min(m, static_cast<size_t>(std::floor(cumulative * static_cast<double>(m))));
    }
    shards[j].insert(shards[j].end(), items.begin() + start, items.begin() + end);
    start = end;
  }
}

Shards partition_iid(size_t n, const PartitionSpec& spec) {
  Rng rng(spec.seed);
  std::vector<int64_t> order = all_indices(n);
  rng.shuffle(std::span(order));
  Shards shards(static_cast<size_t>(spec.num_parts));
  split_even(order, shards);
  return shards;
}

Shards partition_dirichlet(std::span<const uint8_t> labels, const PartitionSpec& spec) {
  std::array<std::vector<int64_t>, 256> by_class;
  for (size_t i = 0; i < labels.size(); ++i) by_class[labels[i]].push_back(static_cast<int64_t>(i));
  Rng rng(spec.seed);
  Shards shards(static_cast<size_t>(spec.num_parts));
  for (std::vector<int64_t>& members : by_class) {
    if (members.empty()) continue;  // absent labels draw nothing
    rng.shuffle(std::span(members));
    split_at_shares(members, dirichlet(rng, spec.alpha, shards.size()), shards);
  }
  return shards;
}

Shards partition_gamma(std::span<const uint8_t> labels, const PartitionSpec& spec) {
  Rng rng(spec.seed);
  std::vector<int64_t> order = all_indices(labels.size());
  rng.shuffle(std::span(order));
  const auto num_iid = static_cast<size_t>(std::llround(spec.gamma * static_cast<double>(labels.size())));
  Shards shards(static_cast<size_t>(spec.num_parts));
  split_even(std::span(order).first(num_iid), shards);

  std::span<int64_t> rest = std::span(order).subspan(num_iid);
  std::sort(rest.begin(), rest.end(), [&](int64_t a, int64_t b) {
    return std::pair(labels[static_cast<size_t>(a)], a) < std::pair(labels[static_cast<size_t>(b)], b);
  });
  split_even(rest, shards);
  return shards;
}

Shards build_shards(std::span<const uint8_t> labels, const PartitionSpec& spec) {
  switch (spec.scheme) {
    case PartitionScheme::kIid:
      return partition_iid(labels.size(), spec);
    case PartitionScheme::kDirichlet:
      return partition_dirichlet(labels, spec);
    case PartitionScheme::kGamma:
      return partition_gamma(labels, spec);
    case PartitionScheme::kNone:
      break;
  }
  // kNone: every shard holds every sample. Outside the switch so that the
  // compiler sees a return on every path.
  return Shards(static_cast<size_t>(spec.num_parts), all_indices(labels.size()));
}

}  // namespace

std::span<const std::string_view> partition_scheme_names() { return kSchemeNames; }

Result<PartitionScheme> parse_partition_scheme(std::string_view name) {
  for (size_t i = 0; i < std::size(kSchemeNames); ++i) {
    if (name == kSchemeNames[i]) return static_cast<PartitionScheme>(i);
  }
  std::string valid;
  for (std::string_view known : kSchemeNames) {
    if (!valid.empty()) valid += ", ";
    valid += known;
  }
  return Status::invalid_argument("unknown partition scheme \"" + std::string(name) + "\" (valid: " +
                                  valid + ")");
}

std::string_view partition_scheme_name(PartitionScheme scheme) {
  const auto index = static_cast<size_t>(scheme);
  return index < std::size(kSchemeNames) ? kSchemeNames[index] : "unknown";
}

Result<std::vector<std::vector<int64_t>>> partition_indices(std::span<const uint8_t> labels,
                                                            const PartitionSpec& spec) {
  COHORT_RETURN_IF_ERROR(validate(labels.size(), spec));
  Shards shards = build_shards(labels, spec);
  for (std::vector<int64_t>& shard : shards) std::sort(shard.begin(), shard.end());
  return shards;
}

}  // namespace cohort
