// A small logger that is passed down explicitly (no global logger).
//
// Human-readable lines go to the given stream with a component prefix, e.g.
// "[coordinator] round 3: accuracy 0.861". Quiet mode keeps warnings and
// errors only. Thread-safe: one line is written atomically.
#pragma once

#include <iosfwd>
#include <mutex>
#include <string>
#include <string_view>

namespace cohort {

enum class LogLevel { kQuiet = 0, kInfo = 1, kDebug = 2 };

class Logger {
 public:
  Logger(std::ostream& out, LogLevel level, std::string component);
  Logger(const Logger&) = delete;
  Logger& operator=(const Logger&) = delete;

  void debug(std::string_view line);
  void info(std::string_view line);
  void warn(std::string_view line);
  void error(std::string_view line);

  LogLevel level() const { return level_; }

 private:
  void write(std::string_view tag, std::string_view line);

  std::mutex mutex_;
  std::ostream& out_;
  LogLevel level_;
  std::string component_;
};

}  // namespace cohort
