#include "cohort/log.h"

#include <ostream>

namespace cohort {

Logger::Logger(std::ostream& out, LogLevel level, std::string component)
    : out_(out), level_(level), component_(std::move(component)) {}

void Logger::debug(std::string_view line) {
  if (level_ >= LogLevel::kDebug) write("", line);
}

void Logger::info(std::string_view line) {
  if (level_ >= LogLevel::kInfo) write("", line);
}

void Logger::warn(std::string_view line) { write("warning: ", line); }

void Logger::error(std::string_view line) { write("error: ", line); }

void Logger::write(std::string_view tag, std::string_view line) {
  std::lock_guard<std::mutex> lock(mutex_);
  out_ << '[' << component_ << "] " << tag << line << '\n';
  out_.flush();
}

}  // namespace cohort
