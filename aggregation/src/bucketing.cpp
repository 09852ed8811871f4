// Bucketing ("bucketing", Karimireddy et al. ICLR 2022; ByzFL Bucketing):
// shuffle the rows with Rng(context.seed), then replace each run of s
// consecutive shuffled rows by its mean, giving ceil(n/s) rows (the last
// bucket may be smaller). With weights, a bucket's mean is weighted by its
// members' weights and the bucket's weight is their sum (a bucket whose
// weights sum to 0 takes the plain mean and keeps weight 0). Parameter s
// (default 2) must be >= 1.
#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <span>

#include "cohort/random.h"
#include "pre_aggregators.h"

namespace cohort {
namespace {

class Bucketing final : public PreAggregator {
 public:
  explicit Bucketing(int64_t bucket_size) : bucket_size_(bucket_size) {}
  std::string_view name() const override { return "bucketing"; }

  Result<UpdateStack> apply(UpdateStack stack, const AggregationContext& context) const override {
    COHORT_RETURN_IF_ERROR(check_pre_stack(name(), stack));
    const int64_t n = stack.rows.size(0);
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), int64_t{0});
    Rng rng(context.seed);
    rng.shuffle(std::span<int64_t>(order));

    const std::vector<double> member_weights =
        stack.weights.empty() ? std::vector<double>(n, 1.0) : stack.weights;
    const int64_t buckets = (n + bucket_size_ - 1) / bucket_size_;
    std::vector<double> bucket_weights(buckets, 0.0);
    for (int64_t pos = 0; pos < n; ++pos) bucket_weights[pos / bucket_size_] += member_weights[order[pos]];

    at::Tensor step = at::zeros({buckets, n}, at::kDouble);
    auto entry = step.accessor<double, 2>();
    for (int64_t pos = 0; pos < n; ++pos) {
      const int64_t bucket = pos / bucket_size_;
      const int64_t members = std::min(bucket_size_, n - bucket * bucket_size_);
      entry[bucket][order[pos]] = bucket_weights[bucket] > 0.0
                                      ? member_weights[order[pos]] / bucket_weights[bucket]
                                      : 1.0 / static_cast<double>(members);
    }
    if (stack.weights.empty()) bucket_weights.clear();
    return mix_rows(std::move(stack), step, std::move(bucket_weights));
  }

 private:
  int64_t bucket_size_;
};

}  // namespace

Result<std::unique_ptr<PreAggregator>> make_bucketing(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(int64_t s, params.get_int("s", 2));
  if (s < 1) return Status::invalid_argument("bucketing needs s >= 1, got s=" + std::to_string(s));
  return std::unique_ptr<PreAggregator>(std::make_unique<Bucketing>(s));
}

}  // namespace cohort
