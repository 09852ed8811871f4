// The strict TOML reader (toml_reader.h).
#include "toml_reader.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <system_error>

#include "cohort/duration.h"
#include "cohort/endpoint.h"
#include "cohort/number_text.h"

namespace cohort::toml_reader {
namespace {

// TOML's own names for value types, so messages match the file's vocabulary.
std::string_view type_name(toml::node_type type) {
  switch (type) {
    case toml::node_type::none: return "nothing";
    case toml::node_type::table: return "table";
    case toml::node_type::array: return "array";
    case toml::node_type::string: return "string";
    case toml::node_type::integer: return "integer";
    case toml::node_type::floating_point: return "float";
    case toml::node_type::boolean: return "boolean";
    case toml::node_type::date: return "date";
    case toml::node_type::time: return "time";
    case toml::node_type::date_time: return "date-time";
  }
  return "unknown";
}

// An amount of tokens as a TOML value, exactly: a string or an integer goes
// to parse_amount as written; a float as the shortest decimal that reads
// back as the same double (what the file says, for any amount a float
// carries exactly: 1.9999999 stays 1.9999999 and is refused, not rounded).
Result<Amount> amount_of(const toml::node& node) {
  if (const auto* text = node.as_string()) return parse_amount(text->get());
  if (const auto* integer = node.as_integer()) return parse_amount(std::to_string(integer->get()));
  const auto* number = node.as_floating_point();
  if (number == nullptr) {
    return Status::invalid_argument(type_problem("amount (integer, float or string of tokens)", node));
  }
  const double tokens = number->get();
  if (std::isnan(tokens)) return Status::invalid_argument("amount nan is not a number of tokens");
  if (tokens >= 0x1p63 / kMicrosPerToken) {
    return Status::invalid_argument("amount " + number_text(tokens) + " is too large (at most " +
                                    format_amount(std::numeric_limits<Amount>::max()) + " tokens)");
  }
  char buffer[64];
  const auto written = std::to_chars(buffer, buffer + sizeof buffer, tokens, std::chars_format::fixed);
  return parse_amount(std::string_view(buffer, written.ptr));
}

// A free-form parameter as text (aggregation.params), or the problem with it.
Result<std::string> scalar_text(const toml::node& node) {
  if (const auto* text = node.as_string()) return text->get();
  if (const auto* integer = node.as_integer()) return std::to_string(integer->get());
  if (const auto* flag = node.as_boolean()) return std::string(flag->get() ? "true" : "false");
  if (const auto* number = node.as_floating_point()) {
    const std::string problem = problem_with(DoubleRange{}, number->get());
    if (!problem.empty()) return Status::invalid_argument(problem);
    return number_text(number->get());
  }
  return Status::invalid_argument(type_problem("string, integer, float or boolean", node));
}

std::string describe(const DoubleRange& range) {
  const bool has_min = std::isfinite(range.min);
  const bool has_max = std::isfinite(range.max);
  if (has_min && has_max) {
    return std::string("in ") + (range.min_open ? "(" : "[") + number_text(range.min) + ", " +
           number_text(range.max) + (range.max_open ? ")" : "]");
  }
  if (has_min) return (range.min_open ? "> " : ">= ") + number_text(range.min);
  return (range.max_open ? "< " : "<= ") + number_text(range.max);
}

}  // namespace

Status key_error(std::string_view origin, std::string_view key, std::string_view problem) {
  std::string message(origin);
  message.append(": ").append(key).append(": ").append(problem);
  return Status::invalid_argument(std::move(message));
}

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string joined(std::span<const std::string_view> items, bool quote) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += quote ? quoted(item) : std::string(item);
  }
  return out;
}

std::string type_problem(std::string_view expected, const toml::node& got) {
  return "expected " + std::string(expected) + ", got " + std::string(type_name(got.type()));
}

std::string problem_with(const IntRange& range, int64_t value) {
  const std::string got = ", got " + std::to_string(value);
  if (value < range.min) return "must be >= " + std::to_string(range.min) + got;
  if (value > range.max) return "must be <= " + std::to_string(range.max) + got;
  return {};
}

std::string problem_with(const DoubleRange& range, double value) {
  const std::string got = ", got " + number_text(value);
  if (!std::isfinite(value)) return "must be finite" + got;
  const bool above = range.min_open ? value > range.min : value >= range.min;
  const bool below = range.max_open ? value < range.max : value <= range.max;
  if (above && below) return {};
  return "must be " + describe(range) + got;
}

std::string problem_with(const TextRule& rule, std::string_view value) {
  const std::string got = "; got " + quoted(value);
  if (rule.non_empty && value.empty()) return "must not be empty";
  if (!rule.one_of.empty() && std::ranges::find(rule.one_of, value) == rule.one_of.end()) {
    return "must be one of " + joined(rule.one_of, /*quote=*/true) + got;
  }
  if (rule.endpoint) return check_endpoint(value, EndpointUse::kBind).message();
  return {};
}

// ---------------------------------------------------------------------------
// TableReader

TableReader TableReader::sub_table(std::string_view key) {
  const toml::node* node = find(key);
  const toml::table* table = node ? node->as_table() : nullptr;
  if (node && !table) fail(key, type_problem("table", *node));
  return TableReader(table, full_key(key), origin_);
}

void TableReader::read(std::string_view key, double& out, DoubleRange range) {
  const toml::node* node = find(key);
  if (!node) return;
  double value = 0;
  if (const auto* number = node->as_floating_point()) {
    value = number->get();
  } else if (const auto* integer = node->as_integer()) {
    value = static_cast<double>(integer->get());
  } else {
    return fail(key, type_problem("float or integer", *node));
  }
  if (check(key, problem_with(range, value))) out = value;
}

void TableReader::read(std::string_view key, std::string& out, TextRule rule) {
  const toml::node* node = find(key);
  if (!node) return;
  const auto* text = node->as_string();
  if (!text) return fail(key, type_problem("string", *node));
  if (check(key, problem_with(rule, text->get()))) out = text->get();
}

void TableReader::read(std::string_view key, std::filesystem::path& out, TextRule rule) {
  std::string text = out.string();
  read(key, text, rule);
  out = text;
}

void TableReader::read(std::string_view key, bool& out) {
  const toml::node* node = find(key);
  if (!node) return;
  const auto* flag = node->as_boolean();
  if (!flag) return fail(key, type_problem("boolean", *node));
  out = flag->get();
}

void TableReader::read(std::string_view key, std::vector<std::string>& out) {
  const toml::node* node = find(key);
  if (!node) return;
  const auto* array = node->as_array();
  if (!array) return fail(key, type_problem("array of strings", *node));
  std::vector<std::string> items;
  for (const toml::node& item : *array) {
    const auto* text = item.as_string();
    if (!text || text->get().empty()) return fail(key, "every entry must be a non-empty string");
    items.push_back(text->get());
  }
  out = std::move(items);
}

void TableReader::read(std::string_view key, std::map<std::string, std::string>& out) {
  const toml::node* node = find(key);
  if (!node) return;
  const auto* table = node->as_table();
  if (!table) return fail(key, type_problem("table", *node));
  for (const auto& [name, value] : *table) {
    Result<std::string> text = scalar_text(value);
    if (!text.ok()) return fail(std::string(key) + "." + std::string(name.str()), text.status().message());
    out[std::string(name.str())] = std::move(text).value();
  }
}

void TableReader::read_seconds(std::string_view key, double& out) {
  double seconds = out;
  read(key, seconds);
  if (error_.ok() && check(key, duration_problem(seconds))) out = seconds;
}

void TableReader::read_amount(std::string_view key, Amount& out) {
  const toml::node* node = find(key);
  if (!node) return;
  Result<Amount> amount = amount_of(*node);
  if (!amount.ok()) return fail(key, amount.status().message());
  out = *amount;
}

Status TableReader::finish() const {
  if (!table_) return error_;
  for (const auto& [name, value] : *table_) {
    if (std::ranges::find(known_, name.str()) != known_.end()) continue;
    const std::string key = full_key(name.str());
    const std::string where = name_.empty() ? "" : " in [" + name_ + "]";
    return key_error(origin_, key,
                     "unknown key '" + key + "'; valid keys" + where + ": " + joined(known_, false));
  }
  return error_;
}

const toml::node* TableReader::find(std::string_view key) {
  known_.push_back(key);
  if (!table_ || !error_.ok()) return nullptr;
  return table_->get(key);
}

bool TableReader::check(std::string_view key, const std::string& problem) {
  if (problem.empty()) return true;
  fail(key, problem);
  return false;
}

void TableReader::fail(std::string_view key, std::string_view problem) {
  if (error_.ok()) error_ = key_error(origin_, full_key(key), problem);
}

std::string TableReader::full_key(std::string_view key) const {
  return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
}

// ---------------------------------------------------------------------------
// Documents

Result<toml::table> parse_toml(std::string_view text, std::string_view origin) {
  try {
    return toml::parse(text, origin);
  } catch (const toml::parse_error& error) {
    const toml::source_position& at = error.source().begin;
    return Status::invalid_argument(std::string(origin) + ": line " + std::to_string(at.line) +
                                    ", column " + std::to_string(at.column) + ": " +
                                    std::string(error.description()));
  }
}

Result<std::string> read_file(const std::filesystem::path& path) {
  std::error_code ec;
  const std::filesystem::file_status status = std::filesystem::status(path, ec);
  if (status.type() == std::filesystem::file_type::not_found) {
    return Status::not_found(path.string() + ": no such file");
  }
  if (ec) return Status::io_error(path.string() + ": " + ec.message());
  if (!std::filesystem::is_regular_file(status)) {
    return Status::io_error(path.string() + ": not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error(path.string() + ": cannot open for reading");
  std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) return Status::io_error(path.string() + ": read failed");
  return text;
}

}  // namespace cohort::toml_reader
