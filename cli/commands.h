// The `cohort` subcommands. Each takes the arguments after its name and
// returns the process exit code: 0 success, 1 the job failed, 2 bad usage,
// bad configuration or bad input.
#pragma once

#include <string>
#include <vector>

namespace cohort::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

int coordinator_command(const std::vector<std::string>& args);
int worker_command(const std::vector<std::string>& args);
int simulate_command(const std::vector<std::string>& args);
int demo_command(const std::vector<std::string>& args);
int aggregate_command(const std::vector<std::string>& args);
int keygen_command(const std::vector<std::string>& args);
int ledger_command(const std::vector<std::string>& args);
int privacy_command(const std::vector<std::string>& args);

}  // namespace cohort::cli
