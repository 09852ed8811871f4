// Differential-privacy accounting for the Gaussian mechanism applied to
// (Poisson-)subsampled rounds: each round, every worker takes part with
// probability q (q = 1: every round sees everyone), the aggregate of
// updates clipped to L2 norm S gets Gaussian noise of standard deviation
// z * S, and the privacy spent over the rounds is tracked in Renyi
// differential privacy (RDP) and converted to (epsilon, delta).
//
//   RDP of one round at order a (Mironov, Talwar, Zhang, "Renyi Differential
//   Privacy of the Sampled Gaussian Mechanism", arXiv 1908.10530, section
//   3.3): log(A_a) / (a - 1), with A_a a binomial sum for integer a and two
//   erfc-weighted series for fractional a; a / (2 z^2) when q = 1.
//   Rounds compose by adding RDP at each order.
//   Conversion (Balle et al., "Hypothesis Testing Interpretations and Renyi
//   Differential Privacy", arXiv 1905.09982, Theorem 21):
//   epsilon = min over a of rdp(a) + log((a - 1) / a) - (log(delta) + log(a)) / (a - 1).
//
// The orders searched are Opacus' defaults (1.1, 1.2, ..., 10.9, then 12,
// 13, ..., 63), so the numbers agree with Opacus' and Google's
// dp-accounting RDP accountants (tests/privacy). Pure functions of their
// arguments; thread-safe.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "cohort/status.h"

namespace cohort {

// 1.1 to 10.9 in steps of 0.1, then 12 to 63: 151 orders.
std::span<const double> default_rdp_orders();

// The RDP of `rounds` rounds of the mechanism with sampling rate
// `sampling_rate` and noise multiplier `noise_multiplier`, at each of
// `orders` (+inf where it is unbounded: z = 0). Errors (InvalidArgument,
// naming the value): q outside [0, 1], z negative or not finite, an order
// not above 1.
Result<std::vector<double>> subsampled_gaussian_rdp(double sampling_rate, double noise_multiplier, uint64_t rounds,
                                                    std::span<const double> orders = default_rdp_orders());

struct PrivacySpent {
  double epsilon = 0.0;  // +inf when nothing bounds it
  double order = 0.0;    // the order the minimum came from (0 with an infinite epsilon)
};

// (epsilon, delta) from RDP values at `orders`. Errors (InvalidArgument):
// delta outside (0, 1), lengths that differ.
Result<PrivacySpent> epsilon_from_rdp(std::span<const double> orders, std::span<const double> rdp, double delta);

// The privacy `rounds` rounds spend: subsampled_gaussian_rdp, then
// epsilon_from_rdp, over `orders`.
Result<PrivacySpent> privacy_spent(double sampling_rate, double noise_multiplier, uint64_t rounds, double delta,
                                   std::span<const double> orders = default_rdp_orders());

// The smallest noise multiplier (to a relative 1e-6) whose `rounds` rounds
// spend at most `target_epsilon`. Errors (InvalidArgument): a target not
// above 0, or one no noise multiplier up to 1e6 reaches.
Result<double> noise_multiplier_for(double target_epsilon, double sampling_rate, uint64_t rounds, double delta,
                                    std::span<const double> orders = default_rdp_orders());

}  // namespace cohort
