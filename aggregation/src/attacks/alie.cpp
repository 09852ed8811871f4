// "alie", a little is enough (Baruch et al. NeurIPS 2019): every Byzantine
// row is mu + z * sigma (sign "+", as ByzFL and Blades) or mu - z * sigma
// (sign "-", as epfml), with mu and sigma (ddof = 1) the coordinate-wise mean
// and sample standard deviation of the h >= 2 honest rows. Parameter z
// (>= 0); by default the paper's z = Phi^-1((n - s) / n) with n = h + f and
// s = floor(n/2 + 1) - f, which needs s >= 1 (0.468 for n = 25, f = 5; epfml
// and Blades use Phi^-1((n - f - s) / (n - f)) = 0.253 instead: pass z).
#include <ATen/ATen.h>

#include <cmath>
#include <limits>
#include <numbers>
#include <optional>
#include <string>

#include "attack_common.h"
#include "attack_factories.h"
#include "cohort/number_text.h"

namespace cohort {
namespace {

// Phi^-1(p) for 0 < p < 1: Acklam's rational approximation (relative error
// below 1.2e-9), then one Halley step on Phi(x) = p, with Phi from erfc,
// which brings it to about 1e-15.
double inverse_normal_cdf(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01,  -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  auto tail = [&](double q) {  // the lower tail, q = sqrt(-2 log p)
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
  };
  constexpr double kTail = 0.02425;
  double x;
  if (p < kTail) {
    x = tail(std::sqrt(-2.0 * std::log(p)));
  } else if (p > 1.0 - kTail) {
    x = -tail(std::sqrt(-2.0 * std::log1p(-p)));
  } else {
    const double q = p - 0.5;
    const double r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
  }
  const double error = 0.5 * std::erfc(-x / std::numbers::sqrt2) - p;
  const double u = error * std::sqrt(2.0 * std::numbers::pi) * std::exp(x * x / 2.0);
  return x - u / (1.0 + x * u / 2.0);
}

// The paper's z for n = h + f workers: the largest z such that s honest
// workers still lie beyond mu + z sigma, s = floor(n/2 + 1) - f.
Result<double> paper_z(int64_t h, int f) {
  const int64_t n = h + f;
  const int64_t s = n / 2 + 1 - f;
  if (s < 1) {
    return Status::failed_precondition("alie's default z needs s = floor(n/2 + 1) - f >= 1, got n=" +
                                       std::to_string(n) + ", f=" + std::to_string(f) + " (pass z)");
  }
  return inverse_normal_cdf(static_cast<double>(n - s) / static_cast<double>(n));
}

class Alie final : public Attack {
 public:
  Alie(std::optional<double> z, double sign) : z_(z), sign_(sign) {}
  std::string_view name() const override { return "alie"; }
  Result<at::Tensor> byzantine_rows(const at::Tensor& honest, int f, uint64_t /*seed*/) const override {
    COHORT_RETURN_IF_ERROR(check_attack_input(name(), honest, f, 2));
    if (f == 0) return at::empty({0, honest.size(1)}, honest.options());
    double z = 0.0;
    if (z_) {
      z = *z_;
    } else {
      COHORT_ASSIGN_OR_RETURN(z, paper_z(honest.size(0), f));
    }
    return identical_rows(honest_mean(honest) + (sign_ * z) * honest_std(honest), f);
  }

 private:
  std::optional<double> z_;  // empty: the paper's formula
  double sign_;              // +1 or -1
};

}  // namespace

Result<double> read_alie_sign(RuleParams& params) {
  COHORT_ASSIGN_OR_RETURN(std::string sign, params.get_string("sign", "+"));
  // Compared by character: GCC 12 misreports == on a moved-in one-character
  // string as "maybe uninitialized".
  if (sign.size() == 1 && sign[0] == '+') return 1.0;
  if (sign.size() == 1 && sign[0] == '-') return -1.0;
  return Status::invalid_argument("alie's sign must be '+' or '-', got '" + sign + "'");
}

Result<std::unique_ptr<Attack>> make_alie_attack(RuleParams& params) {
  // get_double rejects a non-finite value, so NaN can only mean "not given".
  COHORT_ASSIGN_OR_RETURN(double z, params.get_double("z", std::numeric_limits<double>::quiet_NaN()));
  if (z < 0.0) return Status::invalid_argument("alie needs z >= 0, got z=" + number_text(z));
  COHORT_ASSIGN_OR_RETURN(double sign, read_alie_sign(params));
  std::optional<double> given_z = std::isnan(z) ? std::nullopt : std::optional<double>(z);
  return std::unique_ptr<Attack>(std::make_unique<Alie>(given_z, sign));
}

}  // namespace cohort
