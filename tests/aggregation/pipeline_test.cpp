// The pipeline: pre-aggregators in order, then the rule; diagnostics mapped
// back to the input rows; non-finite rows refused.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "cohort/aggregation.h"

namespace cohort {
namespace {

// Replaces rows (a, b, c, ...) by the pairwise means ((a+b)/2, (c+d)/2, ...):
// a linear step whose mixing matrix is easy to write down.
class PairMeans final : public PreAggregator {
 public:
  std::string_view name() const override { return "pair-means"; }
  Result<UpdateStack> apply(UpdateStack stack, const AggregationContext&) const override {
    const int64_t n = stack.rows.size(0);
    at::Tensor step = at::zeros({n / 2, n}, at::kDouble);
    for (int64_t i = 0; i < n / 2; ++i) {
      step[i][2 * i] = 0.5;
      step[i][2 * i + 1] = 0.5;
    }
    UpdateStack out;
    out.rows = at::matmul(step.to(stack.rows.scalar_type()), stack.rows);
    out.mixing = stack.mixing.defined() ? at::matmul(step, stack.mixing) : step;
    return out;
  }
};

// Keeps only the first row (a stand-in for a selection rule).
class FirstRow final : public AggregationRule {
 public:
  std::string_view name() const override { return "first-row"; }
  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double>,
                                      const AggregationContext&) const override {
    AggregationResult out;
    out.aggregate = rows[0].clone();
    out.row_weights.assign(static_cast<size_t>(rows.size(0)), 0.0);
    out.row_weights[0] = 1.0;
    return out;
  }
};

RuleRegistry test_registry() {
  RuleRegistry registry;
  register_builtin_rules(registry);
  registry.add_pre("pair-means", [](RuleParams&) -> Result<std::unique_ptr<PreAggregator>> {
    return std::unique_ptr<PreAggregator>(std::make_unique<PairMeans>());
  });
  registry.add("first-row", [](RuleParams&) -> Result<std::unique_ptr<AggregationRule>> {
    return std::unique_ptr<AggregationRule>(std::make_unique<FirstRow>());
  });
  return registry;
}

at::Tensor four_rows() {
  return at::tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, at::kDouble).view({4, 2});
}

TEST(PipelineTest, PreAggregatorsRunInOrderBeforeTheRule) {
  auto pipeline = test_registry().create_pipeline({"pair-means", "pair-means"}, "mean", RuleParams(0, {}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().to_string();
  EXPECT_EQ(pipeline->description(), "pair-means -> pair-means -> mean");
  auto result = pipeline->run(four_rows(), {}, AggregationContext{});
  ASSERT_TRUE(result.ok()) << result.status().to_string();
  EXPECT_TRUE(at::allclose(result->aggregate, at::tensor({4.0, 5.0}, at::kDouble)));
  // Two pair-means leave one row, the mean of all four: each input has 1/4.
  EXPECT_EQ(result->row_weights, (std::vector<double>{0.25, 0.25, 0.25, 0.25}));
}

TEST(PipelineTest, RowWeightsAreMappedBackToTheInputRows) {
  auto pipeline = test_registry().create_pipeline({"pair-means"}, "first-row", RuleParams(0, {}));
  ASSERT_TRUE(pipeline.ok());
  auto result = pipeline->run(four_rows(), {}, AggregationContext{});
  ASSERT_TRUE(result.ok());
  // The rule kept pair (row 0, row 1) only.
  EXPECT_EQ(result->row_weights, (std::vector<double>{0.5, 0.5, 0.0, 0.0}));
  EXPECT_TRUE(at::allclose(result->aggregate, at::tensor({2.0, 3.0}, at::kDouble)));
}

TEST(PipelineTest, NonFiniteRowsAreRefused) {
  auto pipeline = test_registry().create_pipeline({}, "mean", RuleParams(0, {}));
  ASSERT_TRUE(pipeline.ok());
  for (double bad : {std::nan(""), std::numeric_limits<double>::infinity()}) {
    at::Tensor rows = four_rows();
    rows[2][1] = bad;
    auto result = pipeline->run(rows, {}, AggregationContext{});
    ASSERT_FALSE(result.ok());
    EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(result.status().message().find("NaN or Inf"), std::string::npos);
  }
}

TEST(PipelineTest, UnknownStepsAndUnusedParametersAreRefused) {
  RuleRegistry registry = test_registry();
  auto unknown_pre = registry.create_pipeline({"nope"}, "mean", RuleParams(0, {}));
  EXPECT_NE(unknown_pre.status().message().find("unknown pre-aggregator 'nope'"), std::string::npos);
  EXPECT_NE(unknown_pre.status().message().find("pair-means"), std::string::npos);
  auto unknown_rule = registry.create_pipeline({}, "nope", RuleParams(0, {}));
  EXPECT_NE(unknown_rule.status().message().find("unknown aggregation rule 'nope'"), std::string::npos);
  auto unused = registry.create_pipeline({"pair-means"}, "mean", RuleParams(0, {{"zeta", "1"}}));
  EXPECT_EQ(unused.status().message(), "the pipeline has no parameter 'zeta'");
}

TEST(PipelineTest, MeanIsFedAvgUnderAnotherName) {
  RuleRegistry registry = test_registry();
  auto mean = registry.create("mean", RuleParams(0, {}));
  ASSERT_TRUE(mean.ok());
  EXPECT_EQ((*mean)->name(), "mean");
  const std::vector<double> weights = {1, 1, 1, 5};
  auto result = (*mean)->aggregate(four_rows(), weights, AggregationContext{});
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(at::allclose(result->aggregate, at::tensor({5.5, 6.5}, at::kDouble)));  // (1+3+5+35)/8
}

}  // namespace
}  // namespace cohort
