// Minimum-diameter averaging (El Mhamdi et al., PODC 2020; ByzFL MDA): the mean of the (n-f)-row
// subset of smallest diameter (largest pairwise L2 distance), by exact search; ties: the
// lexicographically first subset, as ByzFL. Needs n >= 2f+1 and C(n, f) <= max_subsets (default
// 1,000,000). Ignores weights.
#include <ATen/ATen.h>

#include <algorithm>
#include <limits>
#include <sstream>
#include <string>

#include "distance_rules.h"
#include "distances.h"
#include "selection.h"

namespace cohort {
namespace {

// C(n, k) as a double (exact below 2^53; the product of each step is an
// integer multiple of i).
double binomial(int64_t n, int64_t k) {
  double c = 1.0;
  for (int64_t i = 1; i <= k; ++i) c = c * static_cast<double>(n - k + i) / static_cast<double>(i);
  return c;
}

// Depth-first search over the subsets of `size` rows in lexicographic order,
// pruning a branch as soon as its partial diameter reaches the best found:
// only a strictly smaller diameter replaces the best, so the first minimal
// subset in lexicographic order wins.
class MinimumDiameterSearch {
 public:
  MinimumDiameterSearch(const at::Tensor& sq_dist, int64_t size)
      : dist_(sq_dist.accessor<double, 2>()), n_(sq_dist.size(0)), size_(size) {}

  std::vector<int64_t> run() {
    extend(0, 0.0);
    return best_;
  }

 private:
  void extend(int64_t first, double diameter) {
    if (static_cast<int64_t>(current_.size()) == size_) {
      best_diameter_ = diameter;
      best_ = current_;
      return;
    }
    const int64_t last = n_ - (size_ - static_cast<int64_t>(current_.size()));
    for (int64_t i = first; i <= last; ++i) {
      double widened = diameter;
      for (int64_t j : current_) widened = std::max(widened, dist_[i][j]);
      if (widened >= best_diameter_) continue;
      current_.push_back(i);
      extend(i + 1, widened);
      current_.pop_back();
    }
  }

  at::TensorAccessor<double, 2> dist_;
  int64_t n_;
  int64_t size_;
  std::vector<int64_t> current_;
  std::vector<int64_t> best_;
  double best_diameter_ = std::numeric_limits<double>::infinity();
};

class Mda final : public AggregationRule {
 public:
  Mda(int64_t f, int64_t max_subsets) : f_(f), max_subsets_(max_subsets) {}
  std::string_view name() const override { return "mda"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_rows_for_rule(rows, weights, "mda", 2 * f_ + 1, "2f+1", f_));
    const int64_t n = rows.size(0);
    const double subsets = binomial(n, f_);
    if (subsets > static_cast<double>(max_subsets_)) {
      std::ostringstream msg;
      msg.precision(15);
      msg << "mda would enumerate C(" << n << ", " << f_ << ") = " << subsets
          << " subsets, more than max_subsets = " << max_subsets_;
      return Status::invalid_argument(msg.str());
    }
    at::Tensor sq_dist = pairwise_sq_distances(rows);
    return mean_of_selected(rows, MinimumDiameterSearch(sq_dist, n - f_).run(), {}, context, "mda");
  }

 private:
  int64_t f_;
  int64_t max_subsets_;
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_mda(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(int64_t max_subsets, params.get_int("max_subsets", 1'000'000));
  if (max_subsets < 1) {
    return Status::invalid_argument("mda: max_subsets must be >= 1, got " +
                                    std::to_string(max_subsets));
  }
  return std::unique_ptr<AggregationRule>(std::make_unique<Mda>(params.f(), max_subsets));
}

}  // namespace cohort
