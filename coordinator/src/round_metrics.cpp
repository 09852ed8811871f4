#include <nlohmann/json.hpp>

#include "cohort/coordinator.h"

namespace cohort {
namespace {

nlohmann::ordered_json phases_json(const PhaseSeconds& s) {
  return {{"announce", s.announce}, {"collect", s.collect},       {"aggregate", s.aggregate},
          {"evaluate", s.evaluate}, {"checkpoint", s.checkpoint}, {"total", s.total}};
}

}  // namespace

std::string RoundMetrics::to_json() const {
  nlohmann::ordered_json weights = nlohmann::ordered_json::array();
  for (const auto& [worker, weight] : worker_weights) {
    weights.push_back({{"worker", worker}, {"weight", weight}});
  }
  nlohmann::ordered_json refused = nlohmann::ordered_json::array();
  for (const auto& [worker, reason] : not_aggregated) refused.push_back({{"worker", worker}, {"reason", reason}});
  nlohmann::ordered_json json = {
      {"round", round},
      {"test_accuracy", test_accuracy},
      {"test_loss", test_loss},
      {"participants", participants},
      {"accepted", accepted},
      {"rejected", rejected},
      {"limits_exceeded", limits_exceeded},
      {"not_aggregated", refused},
      {"model_updated", model_updated},
      {"mean_local_loss", mean_local_loss},
      {"bytes_in", bytes_in},
      {"bytes_out", bytes_out},
      {"worker_weights", weights},
      {"byzantine", byzantine},
      {"byzantine_weight", byzantine_weight},
      {"audited", audited},
      {"audits_failed", audits_failed},
      {"paid", paid},
      {"slashed", slashed},
      {"seconds", phases_json(seconds)},
      {"cpu_seconds", phases_json(cpu_seconds)},
  };
  return json.dump();
}

}  // namespace cohort
