// Command-line parsing shared by the subcommands (Boost.Program_options).
#pragma once

#include <boost/program_options.hpp>
#include <optional>
#include <span>
#include <string_view>
#include <string>
#include <vector>

#include "cohort/log.h"
#include "cohort/status.h"

namespace cohort::cli {

namespace po = boost::program_options;

// Parses `args` against `options`. Prints --help or the error (naming the
// option) and returns nullopt with `exit_code` set when the command should
// stop; returns the parsed values otherwise.
std::optional<po::variables_map> parse_args(const std::string& command, const std::string& summary,
                                            const po::options_description& options,
                                            const std::vector<std::string>& args, int& exit_code);

// The exit code of a command stopped by `status` (docs/OPERATIONS.md, "Exit
// codes"): 2 when the input is at fault (bad usage, configuration, file,
// data or key: InvalidArgument, NotFound, Corruption, FailedPrecondition,
// ResourceExhausted, Unavailable), 1 when the work failed (IoError,
// DeadlineExceeded, Internal).
int exit_code_for(const Status& status);

// "a, b or c": the choices of a flag, for its help text.
std::string choices_text(std::span<const std::string_view> names);

// --quiet / --verbose into a level (both flags must be declared).
LogLevel log_level_of(const po::variables_map& vm);

}  // namespace cohort::cli
