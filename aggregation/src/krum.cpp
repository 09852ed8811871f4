// Krum ("krum"; Blanchard et al., NeurIPS 2017): score(i) = sum of the squared
// L2 distances from row i to its n-f-2 nearest other rows; the output is the
// row with the lowest score (ties: the lowest index). Needs n >= 2f+3.
// Ignores the weights. Diagnostics: scores (all n), selected = {winner}.
#include "distance_rules.h"
#include "krum_scores.h"

namespace cohort {
namespace {

class Krum final : public AggregationRule {
 public:
  explicit Krum(int64_t f) : f_(f) {}
  std::string_view name() const override { return "krum"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    // Multi-Krum keeping one row; the weights are checked, then ignored.
    COHORT_RETURN_IF_ERROR(check_update_stack(rows, weights));
    return multi_krum(rows, {}, f_, 1, context, "krum");
  }

 private:
  int64_t f_;
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_krum(RuleParams& params) {
  return std::unique_ptr<AggregationRule>(std::make_unique<Krum>(params.f()));
}

}  // namespace cohort
