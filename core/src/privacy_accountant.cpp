#include "cohort/privacy_accountant.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "cohort/number_text.h"

namespace cohort {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Where a series term's logarithm falls below this, the rest of the series
// is negligible (e^-30 ~ 1e-13 of the leading terms).
constexpr double kNegligibleLogTerm = -30.0;
// A series that has not converged by then counts as unbounded at that order
// (conservative: the order is then never the minimum).
constexpr int kMaxSeriesTerms = 1'000'000;

constexpr std::array<double, 151> make_default_orders() {
  std::array<double, 151> orders{};
  for (int i = 0; i < 99; ++i) orders[i] = 1.0 + (i + 1) / 10.0;
  for (int i = 0; i < 52; ++i) orders[99 + i] = 12.0 + i;
  return orders;
}
constexpr std::array<double, 151> kDefaultOrders = make_default_orders();

// log(e^a + e^b).
double log_add(double a, double b) {
  if (a == -kInf) return b;
  if (b == -kInf) return a;
  const double high = std::max(a, b);
  return high + std::log1p(std::exp(std::min(a, b) - high));
}

// log(e^a - e^b): -inf when they are equal, NaN when a < b.
double log_sub(double a, double b) {
  if (b == -kInf) return a;
  if (a == b) return -kInf;
  if (a < b) return std::numeric_limits<double>::quiet_NaN();
  const double difference = std::expm1(a - b);
  return std::isinf(difference) ? a : std::log(difference) + b;
}

// log(erfc(x)), accurate where erfc(x) itself underflows: for x >= 20 the
// asymptotic series erfc(x) = e^(-x^2) / (x sqrt(pi)) (1 - 1/(2x^2) +
// 3/(4x^4) - 15/(8x^6) + ...), whose next term is below 3e-10 there.
double log_erfc(double x) {
  if (x < 20.0) return std::log(std::erfc(x));
  const double inverse_square = 1.0 / (x * x);
  const double series = -0.5 * inverse_square + 0.75 * inverse_square * inverse_square -
                        1.875 * inverse_square * inverse_square * inverse_square;
  return -x * x - std::log(x) - 0.5 * std::log(std::numbers::pi) + std::log1p(series);
}

double log_binomial(double n, double k) {
  return std::lgamma(n + 1.0) - std::lgamma(k + 1.0) - std::lgamma(n - k + 1.0);
}

// log(A_a) for an integer order a: the log of
// sum_i C(a, i) q^i (1 - q)^(a - i) exp((i^2 - i) / (2 z^2)).
double log_a_integer(double q, double z, int order) {
  double log_a = -kInf;
  for (int i = 0; i <= order; ++i) {
    const double term = log_binomial(order, i) + i * std::log(q) + (order - i) * std::log1p(-q) +
                        (static_cast<double>(i) * i - i) / (2.0 * z * z);
    log_a = log_add(log_a, term);
  }
  return log_a;
}

// log(A_a) for a fractional order: the two series of the paper's section
// 3.3, summed in log space with the signs of the generalised binomial
// coefficients C(a, i), which alternate once i exceeds a. The coefficients
// are built one from the last (C(a, i+1) = C(a, i) (a - i) / (i + 1)).
double log_a_fractional(double q, double z, double order) {
  const double z0 = z * z * std::log(1.0 / q - 1.0) + 0.5;
  const double scale = std::numbers::sqrt2 * z;
  double log_a0 = -kInf, log_a1 = -kInf;
  double log_coefficient = 0.0;  // log |C(a, 0)|
  bool positive = true;
  for (int i = 0; i < kMaxSeriesTerms; ++i) {
    const double j = order - i;
    const double log_t0 = log_coefficient + i * std::log(q) + j * std::log1p(-q);
    const double log_t1 = log_coefficient + j * std::log(q) + i * std::log1p(-q);
    const double log_e0 = std::log(0.5) + log_erfc((i - z0) / scale);
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / scale);
    const double log_s0 = log_t0 + (static_cast<double>(i) * i - i) / (2.0 * z * z) + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / (2.0 * z * z) + log_e1;
    if (positive) {
      log_a0 = log_add(log_a0, log_s0);
      log_a1 = log_add(log_a1, log_s1);
    } else {
      log_a0 = log_sub(log_a0, log_s0);
      log_a1 = log_sub(log_a1, log_s1);
    }
    if (std::max(log_s0, log_s1) < kNegligibleLogTerm) {
      const double log_a = log_add(log_a0, log_a1);
      // A partial sum below zero (rounding in a subtraction) bounds nothing.
      return std::isnan(log_a) ? kInf : log_a;
    }
    log_coefficient += std::log(std::abs(order - i)) - std::log(i + 1.0);
    if (order - i < 0) positive = !positive;
  }
  return kInf;
}

// One round's RDP at `order` (q in (0, 1), z > 0).
double subsampled_rdp(double q, double z, double order) {
  const double log_a = order == std::floor(order) ? log_a_integer(q, z, static_cast<int>(order))
                                                  : log_a_fractional(q, z, order);
  return log_a / (order - 1.0);
}

Status check_mechanism(double q, double z) {
  if (!(q >= 0.0 && q <= 1.0)) {
    return Status::invalid_argument("the sampling rate must be in [0, 1], got " + number_text(q));
  }
  if (!(z >= 0.0) || std::isinf(z)) {
    return Status::invalid_argument("the noise multiplier must be finite and >= 0, got " + number_text(z));
  }
  return Status();
}

}  // namespace

std::span<const double> default_rdp_orders() { return kDefaultOrders; }

Result<std::vector<double>> subsampled_gaussian_rdp(double sampling_rate, double noise_multiplier, uint64_t rounds,
                                                    std::span<const double> orders) {
  COHORT_RETURN_IF_ERROR(check_mechanism(sampling_rate, noise_multiplier));
  std::vector<double> rdp;
  rdp.reserve(orders.size());
  for (double order : orders) {
    if (!(order > 1.0) || std::isinf(order)) {
      return Status::invalid_argument("an RDP order must be finite and > 1, got " + number_text(order));
    }
    double one_round = 0.0;
    if (sampling_rate == 0.0 || rounds == 0) {
      one_round = 0.0;
    } else if (noise_multiplier == 0.0) {
      one_round = kInf;
    } else if (sampling_rate == 1.0) {
      one_round = order / (2.0 * noise_multiplier * noise_multiplier);
    } else {
      one_round = subsampled_rdp(sampling_rate, noise_multiplier, order);
    }
    rdp.push_back(one_round == 0.0 ? 0.0 : one_round * static_cast<double>(rounds));
  }
  return rdp;
}

Result<PrivacySpent> epsilon_from_rdp(std::span<const double> orders, std::span<const double> rdp, double delta) {
  if (!(delta > 0.0 && delta < 1.0)) {
    return Status::invalid_argument("delta must be in (0, 1), got " + number_text(delta));
  }
  if (orders.size() != rdp.size()) {
    return Status::invalid_argument(std::to_string(orders.size()) + " orders but " + std::to_string(rdp.size()) +
                                    " RDP values");
  }
  PrivacySpent best{kInf, 0.0};
  for (size_t i = 0; i < orders.size(); ++i) {
    const double a = orders[i];
    const double epsilon = rdp[i] + std::log((a - 1.0) / a) - (std::log(delta) + std::log(a)) / (a - 1.0);
    if (epsilon < best.epsilon) best = PrivacySpent{epsilon, a};
  }
  return best;
}

Result<PrivacySpent> privacy_spent(double sampling_rate, double noise_multiplier, uint64_t rounds, double delta,
                                   std::span<const double> orders) {
  COHORT_ASSIGN_OR_RETURN(std::vector<double> rdp,
                          subsampled_gaussian_rdp(sampling_rate, noise_multiplier, rounds, orders));
  return epsilon_from_rdp(orders, rdp, delta);
}

Result<double> noise_multiplier_for(double target_epsilon, double sampling_rate, uint64_t rounds, double delta,
                                    std::span<const double> orders) {
  if (!(target_epsilon > 0.0) || std::isinf(target_epsilon)) {
    return Status::invalid_argument("the target epsilon must be finite and > 0, got " + number_text(target_epsilon));
  }
  auto meets = [&](double z) -> Result<bool> {
    COHORT_ASSIGN_OR_RETURN(PrivacySpent spent, privacy_spent(sampling_rate, z, rounds, delta, orders));
    return spent.epsilon <= target_epsilon;
  };
  // Epsilon falls as the noise grows: find a multiplier that meets the
  // target, then halve the interval down to the smallest one.
  constexpr double kLargestNoise = 1e6;
  double low = 0.0, high = 1.0;
  while (true) {
    COHORT_ASSIGN_OR_RETURN(const bool enough, meets(high));
    if (enough) break;
    low = high;
    high *= 2.0;
    if (high > kLargestNoise) {
      return Status::invalid_argument("no noise multiplier up to 1e6 reaches epsilon " + number_text(target_epsilon) +
                                      " at delta " + number_text(delta));
    }
  }
  while (high - low > 1e-6 * high) {
    const double middle = 0.5 * (low + high);
    COHORT_ASSIGN_OR_RETURN(const bool enough, meets(middle));
    (enough ? high : low) = middle;
  }
  return high;
}

}  // namespace cohort
