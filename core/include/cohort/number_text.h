// Numbers in messages: the shortest text that reads back as the same double
// ("2", "0.1", "1e+300"), where std::to_string would print "0.000000".
#pragma once

#include <charconv>
#include <string>

namespace cohort {

inline std::string number_text(double value) {
  char buffer[32];  // the longest shortest-form double is 24 characters
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof buffer, value);
  return error == std::errc() ? std::string(buffer, end) : std::to_string(value);
}

}  // namespace cohort
