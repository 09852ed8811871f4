// `cohort privacy`: the (epsilon, delta) a job's differential privacy would
// spend, or the noise it needs for a target epsilon, before running it
// (cohort/privacy_accountant.h; docs/PRIVACY.md).
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cohort/number_text.h"
#include "cohort/privacy_accountant.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {
namespace {

struct Plan {
  double sampling_rate = 1.0;
  uint64_t rounds = 0;
  double delta = 0.0;
  std::vector<double> orders;
};

// "2,3,4.5": the RDP orders to search. Errors name the bad entry.
Result<std::vector<double>> parse_orders(const std::string& text) {
  std::vector<double> orders;
  std::stringstream list(text);
  for (std::string item; std::getline(list, item, ',');) {
    size_t used = 0;
    double order = 0.0;
    try {
      order = std::stod(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size()) return Status::invalid_argument("--orders: '" + item + "' is not a number");
    orders.push_back(order);
  }
  if (orders.empty()) return Status::invalid_argument("--orders: no orders given");
  return orders;
}

void print(const Plan& plan, double noise, const PrivacySpent& spent, bool json, bool solved) {
  if (json) {
    nlohmann::json out = {{"epsilon", spent.epsilon}, {"order", spent.order}};
    if (solved) out["noise_multiplier"] = noise;
    std::cout << out.dump() << "\n";
    return;
  }
  std::cout << (solved ? "noise multiplier " + number_text(noise) + " spends " : "") << "epsilon "
            << number_text(spent.epsilon) << " at delta " << number_text(plan.delta) << " over " << plan.rounds
            << " round(s) with sampling rate " << number_text(plan.sampling_rate)
            << (solved ? "" : " and noise multiplier " + number_text(noise)) << " (RDP order "
            << number_text(spent.order) << ")\n";
}

}  // namespace

int privacy_command(const std::vector<std::string>& args) {
  po::options_description options("options");
  options.add_options()
      ("help,h", "show this help")
      ("noise-multiplier", po::value<double>(), "z: the noise's standard deviation over the clipping norm")
      ("sampling-rate", po::value<double>()->default_value(1.0, "1"),
       "q: the chance that a worker takes part in a round (1: everyone, every round)")
      ("rounds", po::value<uint64_t>()->required(), "rounds the mechanism runs")
      ("delta", po::value<double>()->required(), "the delta of (epsilon, delta)")
      ("target-epsilon", po::value<double>(), "instead of --noise-multiplier: find the smallest one that spends at "
       "most this epsilon")
      ("orders", po::value<std::string>(), "the RDP orders to search, comma-separated (default: Opacus' 1.1, "
       "1.2, ..., 10.9, 12, ..., 63)")
      ("json", "print {\"epsilon\", \"order\"} (and \"noise_multiplier\" with --target-epsilon) as JSON");
  int exit_code = kExitOk;
  auto vm = parse_args("privacy",
                       "Prints the epsilon the Gaussian mechanism spends over subsampled rounds (RDP accounting, "
                       "as Opacus does), or the noise multiplier a target epsilon needs.",
                       options, args, exit_code);
  if (!vm) return exit_code;
  const bool solve = vm->count("target-epsilon") > 0;
  if (solve == (vm->count("noise-multiplier") > 0)) {
    std::cerr << "cohort privacy: give exactly one of --noise-multiplier and --target-epsilon\n";
    return kExitUsage;
  }
  Plan plan{(*vm)["sampling-rate"].as<double>(), (*vm)["rounds"].as<uint64_t>(), (*vm)["delta"].as<double>(),
            {default_rdp_orders().begin(), default_rdp_orders().end()}};
  if (vm->count("orders")) {
    Result<std::vector<double>> orders = parse_orders((*vm)["orders"].as<std::string>());
    if (!orders.ok()) {
      std::cerr << "cohort privacy: " << orders.status().message() << "\n";
      return kExitUsage;
    }
    plan.orders = std::move(*orders);
  }
  double noise = 0.0;
  if (solve) {
    Result<double> found = noise_multiplier_for((*vm)["target-epsilon"].as<double>(), plan.sampling_rate,
                                                plan.rounds, plan.delta, plan.orders);
    if (!found.ok()) {
      std::cerr << "cohort privacy: " << found.status().message() << "\n";
      return kExitUsage;
    }
    noise = *found;
  } else {
    noise = (*vm)["noise-multiplier"].as<double>();
  }
  Result<PrivacySpent> spent = privacy_spent(plan.sampling_rate, noise, plan.rounds, plan.delta, plan.orders);
  if (!spent.ok()) {
    std::cerr << "cohort privacy: " << spent.status().message() << "\n";
    return kExitUsage;
  }
  print(plan, noise, *spent, vm->count("json") > 0, solve);
  return kExitOk;
}

}  // namespace cohort::cli
