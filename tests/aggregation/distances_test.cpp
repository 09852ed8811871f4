// pairwise_sq_distances (aggregation/src/distances.h), which Krum, Bulyan,
// NNM, MDA and the tuned attacks share: checked against distances computed
// directly in float64, on stacks wide enough to span many column blocks.
#include "distances.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace cohort {
namespace {

// ||x_i - x_j||^2 computed pair by pair in float64.
at::Tensor direct_sq_distances(const at::Tensor& rows) {
  at::Tensor x = rows.to(at::kDouble);
  const int64_t n = x.size(0);
  at::Tensor out = at::zeros({n, n}, x.options());
  for (int64_t i = 0; i < n; ++i) {
    out[i] = (x - x[i]).square().sum(1);
  }
  return out;
}

TEST(DistancesTest, ManyColumnBlocksMatchDirectFloat64Distances) {
  at::manual_seed(3);
  // 300,001 columns: several blocks for every n here, the last one partial.
  for (int64_t n : {2, 7, 40}) {
    at::Tensor rows = at::randn({n, 300001}, at::kFloat);
    at::Tensor got = pairwise_sq_distances(rows);
    ASSERT_EQ(got.scalar_type(), at::kDouble);
    ASSERT_EQ(got.sizes(), (at::IntArrayRef{n, n}));
    at::Tensor want = direct_sq_distances(rows);
    // Relative to distances of about 2 x 300,001: float32 products summed
    // in float64 per block.
    EXPECT_LT((got - want).abs().max().item<double>() / want.max().item<double>(), 1e-6) << "n=" << n;
    EXPECT_TRUE(at::equal(got, got.t())) << "n=" << n;
    EXPECT_EQ(got.diagonal().abs().max().item<double>(), 0.0) << "n=" << n;
  }
}

TEST(DistancesTest, RowsFarFromTheOriginAndCloseTogetherKeepTheirDistances) {
  // Every row is 1000 + small noise: without centring, float32 would cancel
  // |x|^2 ~ 1e6 per coordinate against 2 x.y and lose the noise.
  at::manual_seed(4);
  at::Tensor rows = 1000.0 + 0.01 * at::randn({5, 200000}, at::kFloat);
  at::Tensor got = pairwise_sq_distances(rows);
  at::Tensor want = direct_sq_distances(rows);
  at::Tensor off_diagonal = at::ones({5, 5}, at::kBool).logical_xor_(at::eye(5, at::kBool));
  at::Tensor relative = ((got - want).abs() / want.clamp_min(1e-300)).masked_select(off_diagonal);
  EXPECT_LT(relative.max().item<double>(), 1e-3);
}

TEST(DistancesTest, Float64RowsAndASingleRow) {
  at::Tensor rows = at::tensor({0.0, 3.0, 4.0, 0.0}, at::kDouble).reshape({2, 2});
  at::Tensor got = pairwise_sq_distances(rows);
  EXPECT_DOUBLE_EQ(got[0][1].item<double>(), 25.0);
  EXPECT_DOUBLE_EQ(got[1][0].item<double>(), 25.0);
  EXPECT_EQ(pairwise_sq_distances(at::ones({1, 10}, at::kFloat)).item<double>(), 0.0);
}

}  // namespace
}  // namespace cohort
