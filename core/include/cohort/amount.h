// Token amounts: integral micro-tokens, read and written as text exactly
// (never through floating point). The ledger, the job config ([ledger]
// amounts) and the command line (`cohort ledger deposit --amount`) all read
// amounts with parse_amount, so one rule holds everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cohort/status.h"

namespace cohort {

// Money is integral: micro-tokens.
using Amount = int64_t;
inline constexpr Amount kMicrosPerToken = 1'000'000;

// "12.5" -> 12'500'000 micro-tokens. Exact: digits, at most one '.', at most
// 6 decimals. InvalidArgument for a sign, a malformed number or one that does
// not fit an Amount (at most 9223372036854.775807 tokens).
Result<Amount> parse_amount(std::string_view tokens);

// 12'500'000 -> "12.5", 3 -> "0.000003", -2'000'000 -> "-2". Inverse of
// parse_amount for non-negative amounts.
std::string format_amount(Amount amount);

}  // namespace cohort
