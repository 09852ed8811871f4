// Divide-and-Conquer (Shejwalkar & Houmansadr, NDSS 2021; fedlib DnC): niters (5) times, sample b
// (10000, at most d) coordinates from context.seed, centre them, score ((x_i - mu) . v)^2 along
// the top right singular vector v, keep the n - floor(c f) lowest (c = 1; ties: lower index);
// output the mean of the rows kept every time (zeros if none). Needs n > c f; no weights.
#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include "cohort/random.h"
#include "distance_rules.h"
#include "selection.h"

namespace cohort {
namespace {

// `count` distinct coordinates of [0, d), count < d, ascending, as an index
// tensor on `device` (Floyd's algorithm: O(count) draws, whatever d is).
at::Tensor sample_coordinates(Rng& rng, int64_t d, int64_t count, at::Device device) {
  std::vector<int64_t> chosen;
  std::unordered_set<int64_t> seen;
  for (int64_t j = d - count; j < d; ++j) {
    int64_t t = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(j) + 1));
    if (!seen.insert(t).second) {
      t = j;
      seen.insert(t);
    }
    chosen.push_back(t);
  }
  std::sort(chosen.begin(), chosen.end());
  return at::tensor(at::ArrayRef<int64_t>(chosen), at::TensorOptions().dtype(at::kLong)).to(device);
}

// The squared projections of the centred rows on their top right singular
// vector.
at::Tensor outlier_scores(const at::Tensor& sampled) {
  at::Tensor centred = sampled - sampled.mean(0, /*keepdim=*/true);
  at::Tensor top = std::get<2>(at::linalg_svd(centred, /*full_matrices=*/false)).select(0, 0);
  return at::matmul(centred, top).square();
}

class Dnc final : public AggregationRule {
 public:
  Dnc(int64_t f, int64_t iters, int64_t b, double c) : f_(f), iters_(iters), b_(b), c_(c) {}
  std::string_view name() const override { return "dnc"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    const int64_t n = rows.size(0);
    const int64_t d = rows.size(1);
    const int64_t keep = n - static_cast<int64_t>(std::floor(c_ * static_cast<double>(f_)));
    if (keep < 1) {
      std::ostringstream msg;
      msg << "dnc needs n > c*f, got n=" << n << ", f=" << f_ << ", c=" << c_;
      return Status::failed_precondition(msg.str());
    }
    Rng rng(context.seed);
    // With b >= d every iteration sees all coordinates and keeps the same rows.
    const int64_t iters = b_ >= d ? 1 : iters_;
    std::vector<int64_t> times_kept(n, 0);
    for (int64_t it = 0; it < iters; ++it) {
      at::Tensor sampled =
          b_ >= d ? rows : rows.index_select(1, sample_coordinates(rng, d, b_, rows.device()));
      for (int64_t i : lowest_entries(outlier_scores(sampled), keep)) ++times_kept[i];
    }
    std::vector<int64_t> good;
    for (int64_t i = 0; i < n; ++i) {
      if (times_kept[i] == iters) good.push_back(i);
    }
    return mean_of_selected(rows, std::move(good), {}, context, "dnc");
  }

 private:
  int64_t f_;
  int64_t iters_;
  int64_t b_;
  double c_;
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_dnc(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(int64_t iters, params.get_int("niters", 5));
  COHORT_ASSIGN_OR_RETURN(int64_t b, params.get_int("b", 10000));
  COHORT_ASSIGN_OR_RETURN(double c, params.get_double("c", 1.0));
  if (iters < 1) {
    return Status::invalid_argument("dnc: niters must be >= 1, got " + std::to_string(iters));
  }
  if (b < 1) return Status::invalid_argument("dnc: b must be >= 1, got " + std::to_string(b));
  if (c < 0.0) {
    std::ostringstream msg;
    msg << "dnc: c must be >= 0, got " << c;
    return Status::invalid_argument(msg.str());
  }
  return std::unique_ptr<AggregationRule>(std::make_unique<Dnc>(params.f(), iters, b, c));
}

}  // namespace cohort
