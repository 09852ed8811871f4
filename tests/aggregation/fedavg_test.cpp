#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "cohort/aggregation.h"

namespace cohort {
namespace {

std::vector<double> values_of(const at::Tensor& t) {
  at::Tensor c = t.to(at::kDouble).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

at::Tensor rows_1234(at::ScalarType dtype = at::kFloat) {
  return at::tensor({1.0, 2.0, 3.0, 4.0}, at::TensorOptions().dtype(dtype)).reshape({2, 2});
}

TEST(FedAvgTest, WeightedMeanOfTwoRows) {
  // 1/4 * [1, 2] + 3/4 * [3, 4] = [0.25 + 2.25, 0.5 + 3] = [2.5, 3.5].
  const std::vector<double> weights = {1.0, 3.0};
  Result<AggregationResult> r = fedavg(rows_1234(), weights);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.sizes().vec(), (std::vector<int64_t>{2}));
  EXPECT_EQ(r->aggregate.scalar_type(), at::kFloat);
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{2.5, 3.5}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.25, 0.75}));
}

TEST(FedAvgTest, EmptyWeightsGiveThePlainMean) {
  Result<AggregationResult> r = fedavg(rows_1234(), {});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{2.0, 3.0}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.5, 0.5}));
}

TEST(FedAvgTest, ZeroWeightRowIsIgnored) {
  // Rows [0], [100], [4] with weights 2, 0, 2: (0 + 4) / 2 = 2.
  at::Tensor rows = at::tensor({0.0f, 100.0f, 4.0f}).reshape({3, 1});
  const std::vector<double> weights = {2.0, 0.0, 2.0};
  Result<AggregationResult> r = fedavg(rows, weights);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{2.0}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.5, 0.0, 0.5}));
}

TEST(FedAvgTest, RowWeightsSumToOneAndReproduceTheAggregate) {
  at::Tensor rows = at::arange(12, at::kDouble).reshape({4, 3});
  const std::vector<double> weights = {600, 100, 200, 100};
  Result<AggregationResult> r = fedavg(rows, weights);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->row_weights, (std::vector<double>{0.6, 0.1, 0.2, 0.1}));
  EXPECT_DOUBLE_EQ(std::accumulate(r->row_weights.begin(), r->row_weights.end(), 0.0), 1.0);
  // By hand: column j = 0.6*j + 0.1*(3+j) + 0.2*(6+j) + 0.1*(9+j) = j + 2.4.
  std::vector<double> got = values_of(r->aggregate);
  ASSERT_EQ(got.size(), 3u);
  for (int j = 0; j < 3; ++j) EXPECT_NEAR(got[j], j + 2.4, 1e-12) << j;
}

TEST(FedAvgTest, SingleRowIsReturnedUnchanged) {
  at::Tensor rows = at::tensor({-1.5f, 0.25f, 8.0f}).reshape({1, 3});
  const std::vector<double> weights = {17.0};
  Result<AggregationResult> r = fedavg(rows, weights);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{-1.5, 0.25, 8.0}));
  EXPECT_EQ(r->row_weights, (std::vector<double>{1.0}));
}

TEST(FedAvgTest, Float64InputStaysFloat64) {
  // 1/3 * [0.1, 0.2] + 2/3 * [0.4, 0.5], exact to double precision only.
  at::Tensor rows = at::tensor({0.1, 0.2, 0.4, 0.5}, at::kDouble).reshape({2, 2});
  const std::vector<double> weights = {1.0, 2.0};
  Result<AggregationResult> r = fedavg(rows, weights);
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(r->aggregate.scalar_type(), at::kDouble);
  std::vector<double> got = values_of(r->aggregate);
  EXPECT_NEAR(got[0], 0.3, 1e-15);
  EXPECT_NEAR(got[1], 0.4, 1e-15);
}

TEST(FedAvgTest, RuleObjectMatchesFreeFunction) {
  RuleRegistry registry;
  register_builtin_rules(registry);
  Result<std::unique_ptr<AggregationRule>> rule = registry.create("fedavg", RuleParams(0, {}));
  ASSERT_TRUE(rule.ok()) << rule.status().to_string();
  EXPECT_EQ((*rule)->name(), "fedavg");
  const std::vector<double> weights = {1.0, 3.0};
  Result<AggregationResult> r = (*rule)->aggregate(rows_1234(), weights, AggregationContext{});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(values_of(r->aggregate), (std::vector<double>{2.5, 3.5}));
}

void expect_invalid(const at::Tensor& rows, std::vector<double> weights, const char* what) {
  Result<AggregationResult> r = fedavg(rows, weights);
  ASSERT_FALSE(r.ok()) << what;
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << what;
  EXPECT_EQ(check_update_stack(rows, weights).code(), Status::Code::kInvalidArgument) << what;
}

TEST(FedAvgTest, RejectsInputThatIsNotATwoDimensionalFloatStack) {
  expect_invalid(at::tensor({1.0f, 2.0f}), {}, "1-D");
  expect_invalid(at::zeros({2, 2, 2}), {}, "3-D");
  expect_invalid(at::Tensor(), {}, "undefined");
  expect_invalid(at::ones({2, 2}, at::kLong), {}, "integer");
}

TEST(FedAvgTest, RejectsEmptyStack) {
  expect_invalid(at::zeros({0, 3}), {}, "n = 0");
}

TEST(FedAvgTest, RejectsWeightCountMismatch) {
  expect_invalid(rows_1234(), {1.0}, "one weight for two rows");
  expect_invalid(rows_1234(), {1.0, 1.0, 1.0}, "three weights for two rows");
}

TEST(FedAvgTest, RejectsBadWeights) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  expect_invalid(rows_1234(), {-1.0, 3.0}, "negative");
  expect_invalid(rows_1234(), {nan, 3.0}, "NaN");
  expect_invalid(rows_1234(), {inf, 3.0}, "infinite");
  expect_invalid(rows_1234(), {0.0, 0.0}, "zero sum");
}

TEST(FedAvgTest, RejectsWeightsWhoseSumOverflows) {
  // Each weight is finite but the sum is not; normalising would give 0, 0.
  const double big = std::numeric_limits<double>::max();
  expect_invalid(rows_1234(), {big, big}, "sum overflows");
}

TEST(FedAvgTest, CheckUpdateStackAcceptsValidInput) {
  const std::vector<double> weights = {0.0, 2.0};
  EXPECT_TRUE(check_update_stack(rows_1234(), weights).ok());
  EXPECT_TRUE(check_update_stack(rows_1234(at::kDouble), {}).ok());
}

}  // namespace
}  // namespace cohort
