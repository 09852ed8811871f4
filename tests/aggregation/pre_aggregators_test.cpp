// The pre-aggregators through the registry and a pipeline.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <string>
#include <vector>

#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using namespace pre_testing;

RuleRegistry builtin_registry() {
  RuleRegistry registry;
  register_builtin_rules(registry);
  return registry;
}

TEST(PreAggregatorsTest, AllFourAreRegistered) {
  EXPECT_EQ(builtin_registry().pre_names(), (std::vector<std::string>{"arc", "bucketing", "clip", "nnm"}));
}

TEST(PreAggregatorsTest, ByzflClipNnmTrimmedMeanPipeline) {
  // ByzFL: Clipping(2) -> NNM(1) -> TrMean(1) on the 5F rows.
  Result<AggregationPipeline> pipeline =
      builtin_registry().create_pipeline({"clip", "nnm"}, "trimmed-mean", RuleParams(1, {{"c", "2"}}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().to_string();
  EXPECT_EQ(pipeline->description(), "clip -> nnm -> trimmed-mean");
  Result<AggregationResult> r = pipeline->run(byzfl_rows(), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  expect_rows_near(r->aggregate, at::tensor({0.95841302, 1.14416941, 1.3299258}), 1e-6);
  ASSERT_EQ(r->row_weights.size(), 3u);
  EXPECT_NEAR(std::accumulate(r->row_weights.begin(), r->row_weights.end(), 0.0), 1.0, 1e-12);
}

TEST(PreAggregatorsTest, RowWeightsMapBackThroughNnm) {
  // NNM(1) mixing [[.5,.5,0],[.5,.5,0],[0,.5,.5]]; the mean gives each mixed
  // row 1/3, so the input rows get (1/3) * column sums = 1/3, 1/2, 1/6.
  Result<AggregationPipeline> pipeline = builtin_registry().create_pipeline({"nnm"}, "mean", RuleParams(1, {}));
  ASSERT_TRUE(pipeline.ok()) << pipeline.status().to_string();
  Result<AggregationResult> r = pipeline->run(byzfl_rows(at::kDouble), {}, AggregationContext{});
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  const std::vector<double> want = {1.0 / 3, 0.5, 1.0 / 6};
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(r->row_weights[i], want[i], 1e-15) << i;
  // (2.5 + 2.5 + 5.5) / 3 = 3.5 in the first coordinate.
  expect_rows_near(r->aggregate, at::tensor({3.5, 4.5, 5.5}, at::kDouble), 1e-14);
}

TEST(PreAggregatorsTest, ChainedStepsComposeTheirMixing) {
  at::Tensor rows = rows_of({{0, 0}, {1, 0}, {0, 3}, {5, 5}, {-2, 2}, {40, -30}}, at::kDouble);
  UpdateStack stack{rows, {}, at::Tensor()};
  AggregationContext context;
  context.seed = 4;
  for (auto* factory : {make_clip, make_arc, make_nnm, make_bucketing}) {
    Result<UpdateStack> next = make_step(factory, 1)->apply(std::move(stack), context);
    ASSERT_TRUE(next.ok()) << next.status().to_string();
    stack = std::move(next).value();
  }
  EXPECT_EQ(stack.rows.size(0), 3);  // bucketing halves the 6 rows
  expect_mixing_reproduces(stack, rows, 1e-13);
}

TEST(PreAggregatorsTest, PipelineRejectsUnknownStepsAndParameters) {
  RuleRegistry registry = builtin_registry();
  Result<AggregationPipeline> unknown = registry.create_pipeline({"clamp"}, "mean", RuleParams(0, {}));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("known: arc, bucketing, clip, nnm"), std::string::npos)
      << unknown.status().message();
  // "c" belongs to clip, which is not in this pipeline.
  Result<AggregationPipeline> unused = registry.create_pipeline({"nnm"}, "mean", RuleParams(0, {{"c", "2"}}));
  ASSERT_FALSE(unused.ok());
  EXPECT_NE(unused.status().message().find("'c'"), std::string::npos) << unused.status().message();
  Result<AggregationPipeline> bad = registry.create_pipeline({"bucketing"}, "mean", RuleParams(0, {{"s", "0"}}));
  EXPECT_EQ(bad.status().code(), Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
