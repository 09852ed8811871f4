// The server step (cohort/server_optimizer.h), against the formulas worked
// out here in double precision, two steps each so that the state counts.
#include "cohort/server_optimizer.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace cohort {
namespace {

std::unique_ptr<ServerOptimizer> make(std::string_view name, double lr,
                                      const std::map<std::string, std::string>& params = {}) {
  Result<std::unique_ptr<ServerOptimizer>> made = make_server_optimizer(name, lr, params);
  EXPECT_TRUE(made.ok()) << made.status().to_string();
  return made.ok() ? std::move(made).value() : nullptr;
}

at::Tensor step(ServerOptimizer& optimizer, const at::Tensor& global, std::vector<float> aggregate) {
  Result<at::Tensor> next = optimizer.step(global, at::tensor(aggregate, at::kFloat));
  EXPECT_TRUE(next.ok()) << next.status().to_string();
  return next.ok() ? *next : global;
}

// One coordinate through two steps with deltas d1, d2 from x0 = 1.
double expected_adaptive(double lr, double beta1, double tau, double d1, double d2,
                         const std::function<double(double v, double squared)>& update_v) {
  double x = 1.0, m = 0.0, v = tau * tau;
  for (double d : {d1, d2}) {
    m = beta1 * m + (1 - beta1) * d;
    v = update_v(v, d * d);
    x += lr * m / (std::sqrt(v) + tau);
  }
  return x;
}

TEST(ServerOptimizerTest, SgdIsTheLearningRateTimesTheAggregateBitForBit) {
  auto sgd = make("sgd", 0.5);
  const at::Tensor global = at::tensor({1.0f, -2.0f});
  const at::Tensor aggregate = at::tensor({0.3f, 0.7f});
  Result<at::Tensor> next = sgd->step(global, aggregate);
  ASSERT_TRUE(next.ok());
  EXPECT_TRUE(at::equal(*next, global.add(aggregate, 0.5)));
  EXPECT_NE(next->data_ptr(), global.data_ptr()) << "a new tensor, never the old model's memory";
  EXPECT_EQ(sgd->state().steps, 1u);
  EXPECT_TRUE(sgd->state().buffers.empty());
}

TEST(ServerOptimizerTest, MomentumStartsWithTheAggregateThenAccumulates) {
  auto momentum = make("momentum", 0.1, {{"momentum", "0.5"}});
  at::Tensor x = step(*momentum, at::ones({1}), {2.0f});  // m = 2
  EXPECT_FLOAT_EQ(x.item<float>(), 1.2f);
  x = step(*momentum, x, {4.0f});  // m = 0.5 * 2 + 4 = 5
  EXPECT_FLOAT_EQ(x.item<float>(), 1.7f);
  ASSERT_EQ(momentum->state().buffers.size(), 1u);
  EXPECT_EQ(momentum->state().buffers[0].first, "m");
}

TEST(ServerOptimizerTest, TheAdaptiveOnesFollowReddiEtAlAlgorithm2) {
  const double lr = 0.1, beta1 = 0.9, beta2 = 0.99, tau = 1e-3;
  const std::map<std::string, std::string> params = {{"beta1", "0.9"}, {"tau", "0.001"}};
  struct Case {
    const char* name;
    std::function<double(double, double)> update_v;
  };
  for (const Case& c : {Case{"adagrad", [](double v, double s) { return v + s; }},
                        Case{"adam", [&](double v, double s) { return beta2 * v + (1 - beta2) * s; }},
                        Case{"yogi", [&](double v, double s) {
                               return v - (1 - beta2) * s * (v - s > 0 ? 1.0 : v - s < 0 ? -1.0 : 0.0);
                             }}}) {
    auto optimizer = make(c.name, lr, params);
    at::Tensor x = step(*optimizer, at::ones({2}), {0.5f, -0.02f});
    x = step(*optimizer, x, {0.25f, 0.04f});
    EXPECT_NEAR(x[0].item<double>(), expected_adaptive(lr, beta1, tau, 0.5, 0.25, c.update_v), 1e-6) << c.name;
    EXPECT_NEAR(x[1].item<double>(), expected_adaptive(lr, beta1, tau, -0.02, 0.04, c.update_v), 1e-6) << c.name;
    const ServerOptimizerState state = optimizer->state();
    EXPECT_EQ(state.steps, 2u);
    ASSERT_EQ(state.buffers.size(), 2u);
    EXPECT_EQ(state.buffers[0].first, "m");
    EXPECT_EQ(state.buffers[1].first, "v");
  }
}

TEST(ServerOptimizerTest, BadNamesParametersAndShapesAreRefused) {
  auto message = [](std::string_view name, double lr, std::map<std::string, std::string> params) {
    return make_server_optimizer(name, lr, params).status().message();
  };
  EXPECT_NE(message("lamb", 1.0, {}).find("unknown server optimizer 'lamb' (known: sgd, momentum, adagrad, adam, yogi)"),
            std::string::npos);
  EXPECT_NE(message("adam", 1.0, {{"beta1", "1"}}).find("'beta1' must be in [0, 1), got 1"), std::string::npos);
  EXPECT_NE(message("yogi", 1.0, {{"tau", "0"}}).find("'tau' must be > 0"), std::string::npos);
  EXPECT_NE(message("momentum", 1.0, {{"momentum", "fast"}}).find("expected a finite number"), std::string::npos);
  EXPECT_NE(message("adagrad", 1.0, {{"beta2", "0.9"}}).find("has no parameter 'beta2'"), std::string::npos);
  EXPECT_NE(message("sgd", 0.0, {}).find("learning rate must be > 0"), std::string::npos);

  auto adam = make("adam", 1.0);
  EXPECT_FALSE(adam->step(at::ones({3}), at::ones({2})).ok());
}

TEST(ServerOptimizerTest, AStateThatIsNotTheOptimizersIsRefused) {
  auto adam = make("adam", 1.0);
  ServerOptimizerState one_buffer{3, {{"m", at::zeros({2})}}};
  EXPECT_FALSE(adam->restore(one_buffer).ok());
  ServerOptimizerState misnamed{3, {{"m", at::zeros({2})}, {"w", at::zeros({2})}}};
  EXPECT_FALSE(adam->restore(misnamed).ok());
  ServerOptimizerState uneven{3, {{"m", at::zeros({2})}, {"v", at::zeros({3})}}};
  EXPECT_FALSE(adam->restore(uneven).ok());
  ServerOptimizerState good{3, {{"m", at::zeros({2})}, {"v", at::ones({2})}}};
  ASSERT_TRUE(adam->restore(good).ok());
  EXPECT_EQ(adam->state().steps, 3u);
  EXPECT_FALSE(make("sgd", 1.0)->restore(good).ok()) << "sgd keeps no buffers";
}

}  // namespace
}  // namespace cohort
