// The coordinator's round policy: selection,
// the quorum, the pipeline's step and state, and the simulated attack as a
// decorator.
#include "cohort/round_policy.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

namespace cohort {
namespace {

JobConfig job_with(int workers_per_round = 0, int min_updates = 1) {
  JobConfig job;
  job.job.seed = 5;
  job.round.workers_per_round = workers_per_round;
  job.round.min_updates = min_updates;
  job.round.min_workers = std::max(min_updates, 1);
  return job;
}

std::unique_ptr<RoundPolicy> policy_of(const JobConfig& job) {
  RuleRegistry rules;
  register_builtin_rules(rules);
  Result<std::unique_ptr<RoundPolicy>> policy = make_round_policy(job, rules, RootSamples{});
  EXPECT_TRUE(policy.ok()) << policy.status().to_string();
  return std::move(policy).value();
}

RoundUpdates updates_of(uint32_t round, std::vector<std::vector<float>> rows) {
  RoundUpdates updates;
  updates.round = round;
  for (const auto& row : rows) {
    updates.rows.push_back(at::tensor(row, at::kFloat));
    updates.weights.push_back(1.0);
  }
  return updates;
}

TEST(RoundPolicyTest, EveryCandidateTakesPartUnlessWorkersPerRoundIsSet) {
  const std::vector<uint32_t> all = {0, 1, 2, 3, 4, 5};
  EXPECT_EQ(policy_of(job_with())->select(1, all), all);
  auto sampled = policy_of(job_with(3));
  std::set<std::vector<uint32_t>> seen;
  for (uint32_t round = 1; round <= 10; ++round) {
    const std::vector<uint32_t> chosen = sampled->select(round, all);
    ASSERT_EQ(chosen.size(), 3u);
    EXPECT_TRUE(std::is_sorted(chosen.begin(), chosen.end()));
    EXPECT_EQ(chosen, sampled->select(round, all)) << "the same round draws the same workers";
    seen.insert(chosen);
  }
  EXPECT_GT(seen.size(), 1u) << "rounds draw different workers";
}

// A model's buffers (BatchNorm statistics) take the aggregate as it is; the
// server optimizer steps only the trained coordinates.
TEST(RoundPolicyTest, BuffersTakeTheAggregateWhateverTheServerOptimizer) {
  JobConfig job = job_with();
  job.aggregation.server_optimizer = "adam";
  RuleRegistry rules;
  register_builtin_rules(rules);
  const at::Tensor buffers = at::tensor(std::vector<int64_t>{0, 1}).to(at::kBool);
  Result<std::unique_ptr<RoundPolicy>> policy = make_round_policy(job, rules, RootSamples{}, buffers);
  ASSERT_TRUE(policy.ok()) << policy.status().to_string();
  at::Tensor global = at::tensor(std::vector<float>{1.0f, 1.0f});
  ASSERT_TRUE((*policy)->aggregate(updates_of(1, {{0.002f, -0.002f}, {0.004f, -0.004f}}), global).ok());
  EXPECT_FLOAT_EQ(global[1].item<float>(), 1.0f - 0.003f);     // the mean, as FedAvg
  EXPECT_GT(std::abs(global[0].item<float>() - 1.003f), 0.1f);  // Adam's step, of about the learning rate
}

TEST(RoundPolicyTest, TooFewUpdatesKeepTheModel) {
  auto policy = policy_of(job_with(0, 3));
  at::Tensor global = at::zeros({2});
  Result<RoundStep> step = policy->aggregate(updates_of(1, {{1, 1}, {3, 3}}), global);
  ASSERT_TRUE(step.ok());
  EXPECT_FALSE(step->model_updated);
  EXPECT_TRUE(at::equal(global, at::zeros({2})));
}

TEST(RoundPolicyTest, TheStepIsTheServerLearningRateTimesTheAggregate) {
  JobConfig job = job_with();
  job.aggregation.server_learning_rate = 0.5;
  auto policy = policy_of(job);
  at::Tensor global = at::ones({2});
  Result<RoundStep> step = policy->aggregate(updates_of(1, {{2, 0}, {4, 2}}), global);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_TRUE(step->model_updated);
  EXPECT_TRUE(at::allclose(global, at::tensor({2.5f, 1.5f})));
  EXPECT_TRUE(at::allclose(policy->state().previous_aggregate, at::tensor({3.0f, 1.0f})))
      << "the state is the last aggregate";
  EXPECT_EQ(policy->state().server.steps, 1u);
  EXPECT_EQ(step->row_weights, (std::vector<double>{0.5, 0.5}));
  ASSERT_TRUE(policy->restore(PolicyState{}).ok());
  EXPECT_FALSE(policy->state().previous_aggregate.defined());
}

// A server optimizer's state restored into a fresh policy (a restarted
// coordinator) gives the same next step as the policy that never stopped.
TEST(RoundPolicyTest, ARestoredServerOptimizerStepsAsIfItHadNeverStopped) {
  for (const char* optimizer : {"momentum", "adagrad", "adam", "yogi"}) {
    JobConfig job = job_with();
    job.aggregation.server_optimizer = optimizer;
    job.aggregation.server_learning_rate = 0.1;
    auto running = policy_of(job);
    at::Tensor global = at::ones({2});
    ASSERT_TRUE(running->aggregate(updates_of(1, {{2, 0}, {4, 2}}), global).ok());
    at::Tensor resumed_global = global.clone();
    auto resumed = policy_of(job);
    ASSERT_TRUE(resumed->restore(running->state()).ok()) << optimizer;
    ASSERT_TRUE(running->aggregate(updates_of(2, {{1, -1}, {3, 1}}), global).ok());
    ASSERT_TRUE(resumed->aggregate(updates_of(2, {{1, -1}, {3, 1}}), resumed_global).ok());
    EXPECT_TRUE(at::equal(global, resumed_global)) << optimizer;
    EXPECT_NE(running->description().find(std::string("server step ") + optimizer), std::string::npos)
        << running->description();
  }
}

TEST(RoundPolicyTest, AnUnknownServerOptimizerOrParameterIsRefused) {
  RuleRegistry rules;
  register_builtin_rules(rules);
  JobConfig job = job_with();
  job.aggregation.server_optimizer = "lamb";
  Result<std::unique_ptr<RoundPolicy>> unknown = make_round_policy(job, rules, RootSamples{});
  EXPECT_NE(unknown.status().message().find("unknown server optimizer 'lamb'"), std::string::npos)
      << unknown.status().to_string();
  job.aggregation.server_optimizer = "adam";
  job.aggregation.server_params = {{"beta3", "0.5"}};
  Result<std::unique_ptr<RoundPolicy>> extra = make_round_policy(job, rules, RootSamples{});
  EXPECT_NE(extra.status().message().find("server optimizer 'adam' has no parameter 'beta3'"), std::string::npos)
      << extra.status().to_string();
}

// The attack is a decorator: its rows are added after the honest ones, and
// the step reports their count and share apart from the honest weights.
TEST(RoundPolicyTest, ASimulatedAttackAddsRowsAndReportsTheirShare) {
  JobConfig job = job_with();
  job.attack.name = "sign-flip";
  job.attack.byzantine = 2;
  auto policy = policy_of(job);
  EXPECT_NE(policy->description().find("2 simulated sign-flip"), std::string::npos) << policy->description();
  at::Tensor global = at::zeros({2});
  Result<RoundStep> step = policy->aggregate(updates_of(1, {{1, 1}, {3, 3}}), global);
  ASSERT_TRUE(step.ok()) << step.status().to_string();
  EXPECT_EQ(step->byzantine, 2);
  ASSERT_EQ(step->row_weights.size(), 2u);
  EXPECT_DOUBLE_EQ(step->row_weights[0] + step->row_weights[1] + step->byzantine_weight, 1.0);
  EXPECT_DOUBLE_EQ(step->byzantine_weight, 0.5);
  EXPECT_TRUE(at::allclose(global, at::zeros({2}))) << "two mean rows and their two sign flips average to zero";
}

TEST(RoundPolicyTest, AFailedRuleLeavesTheModelAsItWas) {
  JobConfig job = job_with();
  job.aggregation.rule = "krum";
  job.aggregation.f = 3;  // krum needs n > 2f + 2
  auto policy = policy_of(job);
  at::Tensor global = at::ones({2});
  Result<RoundStep> step = policy->aggregate(updates_of(1, {{1, 1}, {3, 3}}), global);
  EXPECT_FALSE(step.ok());
  EXPECT_TRUE(at::equal(global, at::ones({2})));
}

TEST(RoundPolicyTest, AnUnknownRuleOrAttackIsAnError) {
  RuleRegistry rules;
  register_builtin_rules(rules);
  JobConfig bad_rule = job_with();
  bad_rule.aggregation.rule = "nope";
  EXPECT_FALSE(make_round_policy(bad_rule, rules, RootSamples{}).ok());
  JobConfig bad_attack = job_with();
  bad_attack.attack.name = "nope";
  bad_attack.attack.byzantine = 1;
  EXPECT_FALSE(make_round_policy(bad_attack, rules, RootSamples{}).ok());
}

}  // namespace
}  // namespace cohort
