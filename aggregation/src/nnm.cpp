// Nearest-neighbour mixing ("nnm", Allouah et al. AISTATS 2023, ByzFL NNM):
// row i becomes the mean of its n - f nearest rows in L2 distance, itself
// included; among rows at equal distance the lower index is taken first.
// Needs 0 <= f < n. Row i keeps its weight; the mean itself is unweighted.
#include <ATen/ATen.h>

#include <optional>

#include "distances.h"
#include "pre_aggregators.h"

namespace cohort {
namespace {

class Nnm final : public PreAggregator {
 public:
  explicit Nnm(int f) : f_(f) {}
  std::string_view name() const override { return "nnm"; }

  Result<UpdateStack> apply(UpdateStack stack, const AggregationContext& /*context*/) const override {
    COHORT_RETURN_IF_ERROR(check_pre_stack(name(), stack));
    const int64_t n = stack.rows.size(0);
    COHORT_RETURN_IF_ERROR(check_f_below_n(name(), f_, n));
    const int64_t neighbours = n - f_;
    at::Tensor dist = pairwise_sq_distances(stack.rows);
    // -1 on the diagonal puts each row first among its own neighbours even
    // when another row equals it; the stable sort keeps lower indices first
    // among equal distances.
    dist.fill_diagonal_(-1.0);
    // (A plain `true` would pick the sort(dim, descending) overload.)
    const std::optional<bool> stable = true;
    at::Tensor nearest = std::get<1>(dist.sort(stable, /*dim=*/1, /*descending=*/false)).narrow(1, 0, neighbours);
    at::Tensor step = at::zeros({n, n}, at::kDouble).scatter_(1, nearest, 1.0 / static_cast<double>(neighbours));
    std::vector<double> weights = std::move(stack.weights);
    return mix_rows(std::move(stack), step, std::move(weights));
  }

 private:
  int f_;
};

}  // namespace

Result<std::unique_ptr<PreAggregator>> make_nnm(RuleParams& params) {
  COHORT_RETURN_IF_ERROR(check_f_nonnegative("nnm", params.f()));
  return std::unique_ptr<PreAggregator>(std::make_unique<Nnm>(params.f()));
}

}  // namespace cohort
