// The RDP accountant of the subsampled Gaussian mechanism: its closed form
// at q = 1, the two series for fractional orders against the binomial sum
// at integer ones, how epsilon moves with rounds, noise and sampling, the
// inverse (noise for a target epsilon), and its errors. Agreement with
// Opacus and Google's dp-accounting is tests/privacy/test_accountant.py.
#include "cohort/privacy_accountant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cohort {
namespace {

TEST(PrivacyAccountant, TheOrdersAreOpacusDefaults) {
  const auto orders = default_rdp_orders();
  ASSERT_EQ(orders.size(), 151u);
  EXPECT_DOUBLE_EQ(orders.front(), 1.1);
  EXPECT_DOUBLE_EQ(orders[98], 10.9);
  EXPECT_EQ(orders[99], 12.0);
  EXPECT_EQ(orders.back(), 63.0);
}

// Without subsampling one round is the Gaussian mechanism: a / (2 z^2).
TEST(PrivacyAccountant, EveryoneEveryRoundIsTheGaussianMechanismsClosedForm) {
  const double z = 1.3, delta = 1e-5;
  const uint64_t rounds = 40;
  auto rdp = subsampled_gaussian_rdp(1.0, z, rounds);
  ASSERT_TRUE(rdp.ok());
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < rdp->size(); ++i) {
    const double a = default_rdp_orders()[i];
    EXPECT_DOUBLE_EQ((*rdp)[i], rounds * a / (2 * z * z));
    best = std::min(best, (*rdp)[i] + std::log((a - 1) / a) - (std::log(delta) + std::log(a)) / (a - 1));
  }
  auto spent = privacy_spent(1.0, z, rounds, delta);
  ASSERT_TRUE(spent.ok());
  EXPECT_DOUBLE_EQ(spent->epsilon, best);
}

// The fractional-order series and the integer-order sum describe one
// function of the order: just below an integer they must meet it.
TEST(PrivacyAccountant, FractionalOrdersMeetTheIntegerSum) {
  for (double q : {0.001, 0.05, 0.5}) {
    for (double z : {0.7, 1.0, 3.0}) {
      for (double order : {2.0, 3.0, 8.0, 20.0}) {
        const double near[] = {order - 1e-7, order};
        auto rdp = subsampled_gaussian_rdp(q, z, 1, near);
        ASSERT_TRUE(rdp.ok());
        EXPECT_NEAR((*rdp)[0], (*rdp)[1], 1e-5 * (*rdp)[1] + 1e-12) << "q " << q << " z " << z << " a " << order;
      }
    }
  }
}

TEST(PrivacyAccountant, EpsilonGrowsWithRoundsAndSamplingAndFallsWithNoise) {
  auto eps = [](double q, double z, uint64_t t) { return privacy_spent(q, z, t, 1e-5)->epsilon; };
  EXPECT_LT(eps(0.01, 1.0, 100), eps(0.01, 1.0, 1000));
  EXPECT_LT(eps(0.01, 1.0, 100), eps(0.1, 1.0, 100));
  EXPECT_LT(eps(0.01, 2.0, 100), eps(0.01, 1.0, 100));
  EXPECT_LT(eps(0.1, 1.0, 100), eps(1.0, 1.0, 100));  // sampling amplifies privacy
  EXPECT_TRUE(std::isinf(eps(0.5, 0.0, 10)));          // no noise, no bound
  EXPECT_GT(eps(0.0, 1.0, 10), 0.0);                    // nothing spent: the conversion's floor
  EXPECT_EQ(privacy_spent(0.5, 0.0, 10, 1e-5)->order, 0.0);
}

TEST(PrivacyAccountant, TheNoiseForATargetIsTheSmallestThatMeetsIt) {
  const double q = 0.02, delta = 1e-5, target = 2.0;
  const uint64_t rounds = 500;
  auto z = noise_multiplier_for(target, q, rounds, delta);
  ASSERT_TRUE(z.ok()) << z.status().to_string();
  EXPECT_LE(privacy_spent(q, *z, rounds, delta)->epsilon, target);
  EXPECT_GT(privacy_spent(q, *z * (1 - 1e-5), rounds, delta)->epsilon, target);
}

TEST(PrivacyAccountant, BadParametersAreNamed) {
  EXPECT_NE(privacy_spent(1.5, 1.0, 1, 1e-5).status().message().find("sampling rate must be in [0, 1], got 1.5"),
            std::string::npos);
  EXPECT_NE(privacy_spent(0.5, -1.0, 1, 1e-5).status().message().find("noise multiplier must be finite and >= 0"),
            std::string::npos);
  EXPECT_NE(privacy_spent(0.5, 1.0, 1, 0.0).status().message().find("delta must be in (0, 1), got 0"),
            std::string::npos);
  const double bad_order[] = {1.0};
  EXPECT_FALSE(subsampled_gaussian_rdp(0.5, 1.0, 1, bad_order).ok());
  EXPECT_FALSE(noise_multiplier_for(0.0, 0.5, 10, 1e-5).ok());
  EXPECT_NE(noise_multiplier_for(1e-9, 1.0, 1000000, 1e-5).status().message().find("no noise multiplier up to 1e6"),
            std::string::npos);
}

}  // namespace
}  // namespace cohort
