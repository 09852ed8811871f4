// Token amounts as text, exactly (no floating point).
#include "cohort/amount.h"

namespace cohort {
namespace {

constexpr int kDecimals = 6;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// value = value * 10 + digit, false on overflow.
bool append_digit(Amount& value, char digit) {
  return !__builtin_mul_overflow(value, 10, &value) && !__builtin_add_overflow(value, digit - '0', &value);
}

}  // namespace

Result<Amount> parse_amount(std::string_view tokens) {
  auto invalid = [&](std::string_view why) {
    return Status::invalid_argument("amount '" + std::string(tokens) + "': " + std::string(why));
  };
  const size_t dot = tokens.find('.');
  const std::string_view whole = tokens.substr(0, dot);
  const std::string_view fraction = dot == std::string_view::npos ? std::string_view() : tokens.substr(dot + 1);
  if (!tokens.empty() && tokens.front() == '-') return invalid("must not be negative");
  if (whole.empty() || (dot != std::string_view::npos && fraction.empty())) {
    return invalid("expected tokens as digits, e.g. 12 or 12.5");
  }
  if (fraction.size() > kDecimals) return invalid("at most 6 decimals (1 micro-token)");
  Amount value = 0;
  for (char c : whole) {
    if (!is_digit(c)) return invalid("expected tokens as digits, e.g. 12 or 12.5");
    if (!append_digit(value, c)) return invalid("too large");
  }
  for (size_t i = 0; i < kDecimals; ++i) {
    const char c = i < fraction.size() ? fraction[i] : '0';
    if (!is_digit(c)) return invalid("expected tokens as digits, e.g. 12 or 12.5");
    if (!append_digit(value, c)) return invalid("too large");
  }
  return value;
}

std::string format_amount(Amount amount) {
  // Work on the magnitude as unsigned so that the lowest int64 has one too.
  const bool negative = amount < 0;
  const uint64_t magnitude = negative ? 0 - static_cast<uint64_t>(amount) : static_cast<uint64_t>(amount);
  const uint64_t micros = static_cast<uint64_t>(kMicrosPerToken);
  std::string text = std::to_string(magnitude / micros);
  if (const uint64_t rest = magnitude % micros; rest != 0) {
    std::string digits = std::to_string(rest);
    digits.insert(0, kDecimals - digits.size(), '0');
    digits.erase(digits.find_last_not_of('0') + 1);
    text += "." + digits;
  }
  return negative ? "-" + text : text;
}

}  // namespace cohort
