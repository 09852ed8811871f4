#include "cohort/attacks.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "pre_aggregator_testing.h"

namespace cohort {
namespace {

using pre_testing::byzfl_rows;
using pre_testing::expect_rows_near;
using pre_testing::rows_of;
using pre_testing::values_of;

std::unique_ptr<Attack> attack(const std::string& name, std::map<std::string, std::string> params = {}) {
  Result<std::unique_ptr<Attack>> made = make_attack(name, RuleParams(0, std::move(params)));
  EXPECT_TRUE(made.ok()) << made.status().to_string();
  return made.ok() ? std::move(made).value() : nullptr;
}

at::Tensor rows_from(const std::string& name, const at::Tensor& honest, int f,
                     std::map<std::string, std::string> params = {}, uint64_t seed = 0) {
  auto byzantine = attack(name, std::move(params));
  if (!byzantine) return at::Tensor();
  Result<at::Tensor> rows = byzantine->byzantine_rows(honest, f, seed);
  EXPECT_TRUE(rows.ok()) << name << ": " << rows.status().to_string();
  return rows.ok() ? *rows : at::Tensor();
}

Status attack_error(const std::string& name, const at::Tensor& honest, int f,
                    std::map<std::string, std::string> params = {}) {
  auto byzantine = attack(name, std::move(params));
  return byzantine ? byzantine->byzantine_rows(honest, f, 0).status() : Status::internal("no attack");
}

Status factory_error(const std::string& name, std::map<std::string, std::string> params) {
  return make_attack(name, RuleParams(0, std::move(params))).status();
}

// Two identical rows of `row`.
at::Tensor twice(std::initializer_list<double> row, at::ScalarType dtype = at::kFloat) {
  return rows_of({row, row}, dtype);
}

TEST(AttacksTest, NamesAreTheTenAttacksSorted) {
  EXPECT_EQ(attack_names(), (std::vector<std::string>{"alie", "gaussian", "inf", "ipm", "large-norm", "mimic",
                                                       "min-max", "min-sum", "sign-flip", "zero"}));
  for (const std::string& name : attack_names()) {
    auto byzantine = attack(name);
    ASSERT_NE(byzantine, nullptr) << name;
    EXPECT_EQ(byzantine->name(), name);
  }
}

TEST(AttacksTest, ByzflVectors) {
  // Honest rows [1,2,3], [4,5,6], [7,8,9]: mu = [4,5,6], sigma (ddof 1) = 3.
  expect_rows_near(rows_from("sign-flip", byzfl_rows(), 2), twice({-4, -5, -6}), 1e-6);
  expect_rows_near(rows_from("ipm", byzfl_rows(), 2, {{"epsilon", "2"}}), twice({-8, -10, -12}), 1e-6);
  // mu + 1.5 * 3.
  expect_rows_near(rows_from("alie", byzfl_rows(), 2, {{"z", "1.5"}}), twice({8.5, 9.5, 10.5}), 1e-6);
}

TEST(AttacksTest, IpmDefaultEpsilonAndAlieMinusSign) {
  expect_rows_near(rows_from("ipm", byzfl_rows(), 1), rows_of({{-0.4, -0.5, -0.6}}), 1e-6);
  // mu - 1.5 * 3.
  expect_rows_near(rows_from("alie", byzfl_rows(), 1, {{"z", "1.5"}, {"sign", "-"}}),
                   rows_of({{-0.5, 0.5, 1.5}}), 1e-6);
}

// z as the attack applies it: honest values +1, -1, +1, ... (mu = 0, sample
// std sqrt(h / (h - 1)) for even h), so the Byzantine value is z * that std.
double default_alie_z(int64_t h, int f) {
  at::Tensor honest = at::ones({h, 1}, at::kDouble);
  honest.index_put_({at::indexing::Slice(1, at::indexing::None, 2)}, -1.0);
  at::Tensor rows = rows_from("alie", honest, f);
  return rows.defined() ? values_of(rows)[0] / std::sqrt(static_cast<double>(h) / (h - 1))
                        : std::numeric_limits<double>::quiet_NaN();
}

TEST(AttacksTest, AlieDefaultZIsThePapersFormula) {
  // n = 25, f = 5: s = floor(25/2 + 1) - 5 = 8, z = Phi^-1((25 - 8)/25) =
  // Phi^-1(0.68) = 0.4676987991 (the note's 0.468; the epfml/Blades form
  // Phi^-1((n-f-s)/(n-f)) = Phi^-1(0.6) would give 0.2533).
  EXPECT_NEAR(default_alie_z(20, 5), 0.46769879911450835, 1e-9);
  // n = 51, f = 25: s = floor(26.5) - 25 = 1, z = Phi^-1(50/51) = 2.0619165008 (the
  // approximation's tail branch; reference from Python's statistics.NormalDist).
  EXPECT_NEAR(default_alie_z(26, 25), 2.061916500809461, 1e-9);
  // n = 3, f = 1: s = 2 - 1 = 1, z = Phi^-1(2/3) = 0.4307272993.
  EXPECT_NEAR(default_alie_z(2, 1), 0.43072729929545733, 1e-9);
}

TEST(AttacksTest, AlieDefaultZNeedsASupporterToWin) {
  // n = 5, f = 3: s = floor(3.5) - 3 = 0.
  Status status = attack_error("alie", rows_of({{0}, {1}}), 3);
  EXPECT_EQ(status.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(status.message().find("s = floor(n/2 + 1) - f >= 1, got n=5, f=3"), std::string::npos)
      << status.message();
  EXPECT_TRUE(rows_from("alie", rows_of({{0}, {1}}), 3, {{"z", "1"}}).defined());
}

TEST(AttacksTest, MinMaxAndMinSumInOneDimension) {
  // Honest 0, 0, 3: mu = 1. With p = sign(mu) = 1, x = 1 - g.
  // min-max: max_i (x - x_i)^2 = (2 + g)^2 <= max pairwise 9  ->  g = 1, x = 0.
  // min-sum: sum_i (x - x_i)^2 = 6 + 3 g^2 <= max_i sum_j = 9 + 9 = 18  ->
  //          g = 2, x = -1.
  at::Tensor honest = rows_of({{0}, {0}, {3}}, at::kDouble);
  expect_rows_near(rows_from("min-max", honest, 1, {{"perturbation", "sign"}}), rows_of({{0}}), 2e-5);
  expect_rows_near(rows_from("min-sum", honest, 1, {{"perturbation", "sign"}}), rows_of({{-1}}), 2e-5);
  // In 1-D the bound is on x itself, so p = std (sqrt 3) and p = unit (1)
  // reach the same x.
  for (const char* p : {"std", "unit"}) {
    expect_rows_near(rows_from("min-max", honest, 2, {{"perturbation", p}}), rows_of({{0}, {0}}), 4e-5);
    expect_rows_near(rows_from("min-sum", honest, 1, {{"perturbation", p}}), rows_of({{-1}}), 4e-5);
  }
}

TEST(AttacksTest, MinMaxInTwoDimensions) {
  // Honest corners of [0,2]^2: mu = [1,1], unit p = [1,1]/sqrt 2, max
  // pairwise 8 (a diagonal). The farthest corner [2,2] is at squared distance
  // 2 (1 + g/sqrt 2)^2 <= 8  ->  g = sqrt 2, x = [0,0]; the search stops
  // within 1e-5 below it.
  at::Tensor honest = rows_of({{0, 0}, {2, 0}, {0, 2}, {2, 2}}, at::kDouble);
  at::Tensor x = rows_from("min-max", honest, 1, {{"perturbation", "unit"}});
  expect_rows_near(x, rows_of({{0, 0}}, at::kDouble), 2e-5);
  std::vector<double> v = values_of(x);
  EXPECT_GE(v[0], 0.0);  // never past the bound
  // Default p = std = [2/sqrt 3, 2/sqrt 3], the same direction: same x.
  expect_rows_near(rows_from("min-max", honest, 1), rows_of({{0, 0}}, at::kDouble), 2e-5);
}

// Squared distances from x [d] to each honest row, computed directly.
at::Tensor sq_distances_to(const at::Tensor& honest, const at::Tensor& x) {
  return (honest - x).square().sum(1);
}

TEST(AttacksTest, MinMaxAndMinSumTakeTheLargestGammaWithinTheBound) {
  // Random rows: x = mu - gamma p meets the bound, and gamma + 3e-5 would not
  // (the search stops within 1e-5 of the boundary). gamma is read back from
  // x as (mu - x).p / |p|^2.
  at::Tensor honest =
      at::randn({7, 5}, at::detail::createCPUGenerator(3), at::TensorOptions().dtype(at::kDouble)).mul_(3).add_(1);
  at::Tensor mu = honest.mean(0);
  at::Tensor p = honest.std(0, /*unbiased=*/true);
  at::Tensor pairwise = (honest.unsqueeze(1) - honest.unsqueeze(0)).square().sum(2);  // [h, h]
  const double max_pair = pairwise.max().item<double>();
  const double max_row_sum = pairwise.sum(1).max().item<double>();
  for (const char* name : {"min-max", "min-sum"}) {
    const bool is_max = std::string(name) == "min-max";
    auto statistic = [&](const at::Tensor& x) {
      at::Tensor d = sq_distances_to(honest, x);
      return (is_max ? d.max() : d.sum()).item<double>();
    };
    const double bound = is_max ? max_pair : max_row_sum;
    at::Tensor x = rows_from(name, honest, 1)[0];
    const double gamma = ((mu - x) * p).sum().item<double>() / p.square().sum().item<double>();
    EXPECT_GT(gamma, 0.0) << name;
    EXPECT_LE(statistic(x), bound * (1 + 1e-12)) << name;
    EXPECT_GT(statistic(mu - (gamma + 3e-5) * p), bound) << name;
  }
}

TEST(AttacksTest, GaussianIsSeededAndIndependentPerRow) {
  at::Tensor honest = at::zeros({2, 200}, at::kDouble);
  at::Tensor a = rows_from("gaussian", honest, 3, {{"sigma", "2"}}, 17);
  at::Tensor b = rows_from("gaussian", honest, 3, {{"sigma", "2"}}, 17);
  at::Tensor c = rows_from("gaussian", honest, 3, {{"sigma", "2"}}, 18);
  ASSERT_EQ(a.sizes().vec(), (std::vector<int64_t>{3, 200}));
  EXPECT_EQ(a.scalar_type(), at::kDouble);
  EXPECT_TRUE(at::equal(a, b));
  EXPECT_FALSE(at::equal(a, c));
  EXPECT_FALSE(at::equal(a[0], a[1]));
  // 600 draws of N(0, 4): the sample std is 2 within a few percent.
  EXPECT_NEAR(a.std().item<double>(), 2.0, 0.2);
  EXPECT_NEAR(a.mean().item<double>(), 0.0, 0.3);
  at::Tensor shifted = rows_from("gaussian", honest, 1, {{"mean", "5"}, {"sigma", "0.001"}}, 1);
  EXPECT_NEAR(shifted.mean().item<double>(), 5.0, 0.01);
}

TEST(AttacksTest, MimicZeroInfAndLargeNorm) {
  expect_rows_near(rows_from("mimic", byzfl_rows(), 2, {{"index", "1"}}), twice({4, 5, 6}), 0.0);
  expect_rows_near(rows_from("mimic", byzfl_rows(), 1), rows_of({{1, 2, 3}}), 0.0);
  expect_rows_near(rows_from("zero", byzfl_rows(), 2), twice({0, 0, 0}), 0.0);
  at::Tensor inf = rows_from("inf", byzfl_rows(), 2);
  ASSERT_EQ(inf.sizes().vec(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(at::isposinf(inf).all().item<bool>());
  // mu = [2, 0], largest honest norm 3: [3e6, 0] at the default scale 1e6.
  at::Tensor honest = rows_of({{1, 0}, {3, 0}}, at::kDouble);
  expect_rows_near(rows_from("large-norm", honest, 1), rows_of({{3e6, 0}}, at::kDouble), 1e-6);
  // mu = [3, 4] (norm 5), largest norm 5, scale 2: [6, 8].
  expect_rows_near(rows_from("large-norm", twice({3, 4}, at::kDouble), 1, {{"scale", "2"}}),
                   rows_of({{6, 8}}, at::kDouble), 1e-12);
  EXPECT_EQ(attack_error("large-norm", rows_of({{1, 1}, {-1, -1}}), 1).code(),
            Status::Code::kFailedPrecondition);
  EXPECT_EQ(attack_error("mimic", byzfl_rows(), 1, {{"index", "3"}}).code(), Status::Code::kFailedPrecondition);
}

TEST(AttacksTest, EveryAttackKeepsDtypeAndHandlesFZero) {
  at::Tensor honest = byzfl_rows(at::kDouble);
  for (const std::string& name : attack_names()) {
    at::Tensor rows = rows_from(name, honest, 2);
    ASSERT_TRUE(rows.defined()) << name;
    EXPECT_EQ(rows.scalar_type(), at::kDouble) << name;
    EXPECT_EQ(rows.sizes().vec(), (std::vector<int64_t>{2, 3})) << name;
    at::Tensor none = rows_from(name, honest, 0);
    ASSERT_TRUE(none.defined()) << name;
    EXPECT_EQ(none.sizes().vec(), (std::vector<int64_t>{0, 3})) << name;
  }
}

TEST(AttacksTest, UnknownAttackListsTheKnownOnes) {
  Status status = factory_error("label-flip", {});
  EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(status.message().find("unknown attack 'label-flip' (known: alie, gaussian, inf, ipm, large-norm, "
                                  "mimic, min-max, min-sum, sign-flip, zero)"),
            std::string::npos)
      << status.message();
}

TEST(AttacksTest, RejectsBadAndUnknownParameters) {
  const std::vector<std::pair<std::string, std::map<std::string, std::string>>> bad = {
      {"ipm", {{"epsilon", "0"}}},      {"ipm", {{"epsilon", "x"}}},        {"gaussian", {{"sigma", "-1"}}},
      {"gaussian", {{"sigma", "0"}}},   {"alie", {{"z", "-0.5"}}},          {"alie", {{"sign", "plus"}}},
      {"min-max", {{"perturbation", "gauss"}}}, {"min-sum", {{"perturbation", ""}}},
      {"large-norm", {{"scale", "0"}}}, {"mimic", {{"index", "-1"}}},       {"mimic", {{"index", "0.5"}}},
      {"sign-flip", {{"epsilon", "1"}}}, {"zero", {{"z", "1"}}}};
  for (const auto& [name, params] : bad) {
    EXPECT_EQ(factory_error(name, params).code(), Status::Code::kInvalidArgument) << name;
  }
  EXPECT_NE(factory_error("sign-flip", {{"epsilon", "1"}}).message().find("attack 'sign-flip' has no parameter 'epsilon'"),
            std::string::npos);
  EXPECT_NE(factory_error("alie", {{"z", "-0.5"}}).message().find("alie needs z >= 0, got z=-0.5"),
            std::string::npos);
}

TEST(AttacksTest, RejectsNegativeFFewHonestRowsAndMalformedInput) {
  for (const std::string& name : attack_names()) {
    EXPECT_EQ(attack_error(name, byzfl_rows(), -1).code(), Status::Code::kInvalidArgument) << name;
    EXPECT_EQ(attack_error(name, at::ones({3}), 1).code(), Status::Code::kInvalidArgument) << name;
    EXPECT_EQ(attack_error(name, at::ones({2, 2}, at::kInt), 1).code(), Status::Code::kInvalidArgument) << name;
  }
  // A standard deviation needs h >= 2.
  at::Tensor one = rows_of({{1, 2}});
  Status alie = attack_error("alie", one, 1, {{"z", "1"}});
  EXPECT_EQ(alie.code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(alie.message().find("alie needs h >= 2 honest updates, got h=1"), std::string::npos) << alie.message();
  EXPECT_EQ(attack_error("min-max", one, 1).code(), Status::Code::kFailedPrecondition);
  EXPECT_EQ(attack_error("min-sum", one, 1).code(), Status::Code::kFailedPrecondition);
  EXPECT_TRUE(attack_error("min-max", one, 1, {{"perturbation", "unit"}}).ok());
  EXPECT_TRUE(attack_error("sign-flip", one, 1).ok());
}

}  // namespace
}  // namespace cohort
