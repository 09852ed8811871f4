// The tuned attacks against ByzFL's docstring values: honest rows
// [1,2,3], [4,5,6], [7,8,9], one Byzantine row, the server running NNM,
// clipping to norm 2 and the trimmed mean with f = 1 (ByzFL's docstring
// examples, with the Optimal_* defaults: evals 20, start 0, delta 10,
// ratio 0.8).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include "cohort/attacks.h"
#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using pre_testing::byzfl_rows;
using pre_testing::expect_rows_near;
using pre_testing::rows_of;

AggregationPipeline nnm_clip_trimmed_mean() {
  RuleRegistry registry;
  register_builtin_rules(registry);
  Result<AggregationPipeline> pipeline = registry.create_pipeline({"nnm", "clip"}, "trimmed-mean", RuleParams(1, {{"c", "2"}}));
  EXPECT_TRUE(pipeline.ok()) << pipeline.status().to_string();
  return std::move(pipeline).value();
}

at::Tensor tuned_rows(const std::string& name, const AggregationPipeline& target,
                      std::map<std::string, std::string> params = {}) {
  Result<std::unique_ptr<Attack>> attack = make_attack(name, RuleParams(1, std::move(params)), &target);
  EXPECT_TRUE(attack.ok()) << attack.status().to_string();
  if (!attack.ok()) return {};
  Result<at::Tensor> rows = (*attack)->byzantine_rows(byzfl_rows(), 1, 0);
  EXPECT_TRUE(rows.ok()) << rows.status().to_string();
  return rows.ok() ? *rows : at::Tensor();
}

TEST(OptimalAttacksTest, MatchByzflAgainstNnmClippingAndTrimmedMean) {
  const AggregationPipeline target = nnm_clip_trimmed_mean();
  expect_rows_near(tuned_rows("optimal-ipm", target), rows_of({{-2.74877907, -3.43597384, -4.1231686}}), 1e-5);
  expect_rows_near(tuned_rows("optimal-alie", target), rows_of({{12.91985116, 13.91985116, 14.91985116}}), 1e-5);
}

TEST(OptimalAttacksTest, AlieMinusSignMirrorsTheSearch) {
  // On negated honest rows the "-" search sees the mirror image of the "+"
  // one (NNM, clipping and the trimmed mean commute with negation).
  const AggregationPipeline target = nnm_clip_trimmed_mean();
  Result<std::unique_ptr<Attack>> attack =
      make_attack("optimal-alie", RuleParams(1, {{"sign", "-"}}), &target);
  ASSERT_TRUE(attack.ok()) << attack.status().to_string();
  Result<at::Tensor> rows = (*attack)->byzantine_rows(-byzfl_rows(), 1, 0);
  ASSERT_TRUE(rows.ok()) << rows.status().to_string();
  expect_rows_near(*rows, rows_of({{-12.91985116, -13.91985116, -14.91985116}}), 1e-5);
}

TEST(OptimalAttacksTest, OneEvaluationKeepsTheStart) {
  const AggregationPipeline target = nnm_clip_trimmed_mean();
  expect_rows_near(tuned_rows("optimal-ipm", target, {{"evals", "1"}, {"start", "0.5"}}),
                   rows_of({{-2, -2.5, -3}}), 1e-6);
}

TEST(OptimalAttacksTest, NeedThePipelineAndValidParameters) {
  Status missing = make_attack("optimal-ipm", RuleParams(1, {})).status();
  EXPECT_EQ(missing.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(missing.message().find("tuned against the server's aggregation pipeline"), std::string::npos);
  const AggregationPipeline target = nnm_clip_trimmed_mean();
  EXPECT_EQ(make_attack("optimal-ipm", RuleParams(1, {{"ratio", "0.5"}}), &target).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(make_attack("optimal-ipm", RuleParams(1, {{"evals", "0"}}), &target).status().code(),
            Status::Code::kInvalidArgument);
  EXPECT_EQ(make_attack("optimal-ipm", RuleParams(1, {{"sign", "-"}}), &target).status().code(),
            Status::Code::kInvalidArgument);  // only ALIE has a sign
  EXPECT_EQ(make_attack("optimal-alie", RuleParams(1, {{"sign", "x"}}), &target).status().code(),
            Status::Code::kInvalidArgument);
}

}  // namespace
}  // namespace cohort
