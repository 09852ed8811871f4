#include "options.h"

#include <iostream>

#include "commands.h"

namespace cohort::cli {

std::optional<po::variables_map> parse_args(const std::string& command, const std::string& summary,
                                            const po::options_description& options,
                                            const std::vector<std::string>& args, int& exit_code) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(args).options(options).run(), vm);
    if (vm.count("help")) {
      std::cout << "usage: cohort " << command << " [options]\n" << summary << "\n\n" << options;
      exit_code = kExitOk;
      return std::nullopt;
    }
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "cohort " << command << ": " << e.what() << "\n(see cohort " << command
              << " --help)\n";
    exit_code = kExitUsage;
    return std::nullopt;
  }
  return vm;
}

std::string choices_text(std::span<const std::string_view> names) {
  std::string text;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) text += i + 1 == names.size() ? " or " : ", ";
    text += names[i];
  }
  return text;
}

int exit_code_for(const Status& status) {
  switch (status.code()) {
    case Status::Code::kOk:
      return kExitOk;
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotFound:
    case Status::Code::kCorruption:
    case Status::Code::kFailedPrecondition:
    case Status::Code::kResourceExhausted:
    case Status::Code::kUnavailable:
    case Status::Code::kUnsupported:
      return kExitUsage;
    case Status::Code::kIoError:
    case Status::Code::kDeadlineExceeded:
    case Status::Code::kInternal:
      return kExitFailure;
  }
  return kExitFailure;
}

LogLevel log_level_of(const po::variables_map& vm) {
  if (vm.count("quiet")) return LogLevel::kQuiet;
  if (vm.count("verbose")) return LogLevel::kDebug;
  return LogLevel::kInfo;
}

}  // namespace cohort::cli
