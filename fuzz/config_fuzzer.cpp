// Fuzzes parse_job_config, the TOML job description's parser. It must return
// a config or an error for any text, never throw or crash.
//
// Invariants of a config that parses: a finite, non-negative minimum
// slashable stake (parse_job_config already compares the ledger's stake
// against it); every duration in (0, a year] (cohort/duration.h), so no
// deadline can overflow; every amount a non-negative number of
// micro-tokens that prints and parses back to itself; a listen endpoint
// that check_endpoint accepts.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cohort/config.h"
#include "cohort/duration.h"
#include "cohort/endpoint.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cohort::Result<cohort::JobConfig> config = cohort::parse_job_config(text, "<fuzz>");
  if (!config.ok()) return 0;
  const double stake = cohort::minimum_slashable_stake(*config);
  cohort::fuzz::check(std::isfinite(stake) && stake >= 0, "the minimum slashable stake is finite and >= 0");
  for (double seconds : {config->round.deadline_seconds, config->round.registration_timeout_seconds,
                         config->proof.reveal_seconds}) {
    cohort::fuzz::check(cohort::duration_problem(seconds).empty(), "every duration is in (0, a year]");
  }
  for (cohort::Amount amount : {config->ledger.reward_per_round, config->ledger.min_stake,
                                config->ledger.registration_grant}) {
    cohort::Result<cohort::Amount> again = cohort::parse_amount(cohort::format_amount(amount));
    cohort::fuzz::check(amount >= 0 && again.ok() && *again == amount, "every amount is >= 0 and round-trips");
  }
  cohort::fuzz::check(cohort::check_endpoint(config->network.listen, cohort::EndpointUse::kBind).ok(),
                      "the listen endpoint is well-formed");
  return 0;
}
