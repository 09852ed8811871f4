// Fuzzes parse_job_config, the TOML job description's parser. It must return
// a config or an error for any text, never throw or crash.
//
// Invariant: a config that parses yields a finite, non-negative minimum
// slashable stake (parse_job_config already compares the ledger's stake
// against it).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cohort/config.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  cohort::Result<cohort::JobConfig> config = cohort::parse_job_config(text, "<fuzz>");
  if (!config.ok()) return 0;
  const double stake = cohort::minimum_slashable_stake(*config);
  cohort::fuzz::check(std::isfinite(stake) && stake >= 0, "the minimum slashable stake is finite and >= 0");
  return 0;
}
