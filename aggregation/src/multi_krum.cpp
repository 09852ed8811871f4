// Multi-Krum ("multi-krum"; Blanchard et al., NeurIPS 2017): the mean of the m
// rows with the lowest Krum scores (n-f-2 nearest other rows; score ties: the
// lower index), param m (default n-f, 1 <= m <= n). Needs n >= 2f+3. Uses the
// weights: the mean is sample-weighted over the m rows, as Flower's MultiKrum.
#include <limits>
#include <optional>
#include <string>

#include "distance_rules.h"
#include "krum_scores.h"

namespace cohort {
namespace {

class MultiKrum final : public AggregationRule {
 public:
  MultiKrum(int64_t f, std::optional<int64_t> m) : f_(f), m_(m) {}
  std::string_view name() const override { return "multi-krum"; }

  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext& context) const override {
    return multi_krum(rows, weights, f_, m_, context, "multi-krum");
  }

 private:
  int64_t f_;
  std::optional<int64_t> m_;  // unset: n - f
};

}  // namespace

Result<std::unique_ptr<AggregationRule>> make_multi_krum(RuleParams& params) {
  // RuleParams cannot tell an absent key from a given one, so an impossible
  // value stands for "absent".
  constexpr int64_t kAbsent = std::numeric_limits<int64_t>::min();
  COHORT_ASSIGN_OR_RETURN(int64_t m, params.get_int("m", kAbsent));
  if (m == kAbsent) {
    return std::unique_ptr<AggregationRule>(std::make_unique<MultiKrum>(params.f(), std::nullopt));
  }
  if (m < 1) {
    return Status::invalid_argument("multi-krum: m must be >= 1, got " + std::to_string(m));
  }
  return std::unique_ptr<AggregationRule>(std::make_unique<MultiKrum>(params.f(), m));
}

}  // namespace cohort
