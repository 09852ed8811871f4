// A strict reader of TOML tables, private to core: typed keys with bounds,
// unknown keys rejected with the valid ones named, and every problem as a
// Status reading "<origin>: <key>: <problem>". config.cpp reads the job
// schema with it; docs/CONFIG.md documents the keys.
//
// toml++ is used in its default header-only mode, so nothing needs linking.
// Every file that includes this header includes toml++, and is listed in the
// top-level CMakeLists.txt's toml_includers (docs/FUZZING.md, "Suppressions").
// parse_toml is the one place toml++'s parse_error is caught: bad input never
// escapes as an exception.
#pragma once

#include <toml++/toml.h>

#include <concepts>
#include <cstdint>
#include <filesystem>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/amount.h"
#include "cohort/status.h"

namespace cohort::toml_reader {

// ---------------------------------------------------------------------------
// Message pieces. Every error reads "<origin>: <key>: <problem>".

Status key_error(std::string_view origin, std::string_view key, std::string_view problem);

// "\"text\"".
std::string quoted(std::string_view text);

// The items separated by ", ", each quoted when `quote` is set.
std::string joined(std::span<const std::string_view> items, bool quote);

// "expected <expected>, got <TOML's name for got's type>".
std::string type_problem(std::string_view expected, const toml::node& got);

// ---------------------------------------------------------------------------
// Value rules: what a key of each kind may hold. Each problem_with returns
// the problem with a value, or "" when it is acceptable.

// Inclusive bounds on an integer key.
struct IntRange {
  int64_t min = std::numeric_limits<int64_t>::min();
  int64_t max = std::numeric_limits<int64_t>::max();
};

// TOML integers are 64-bit signed; a field may be narrower (int) or unsigned
// (the seed), so its type's limits tighten the documented range.
template <std::integral T>
IntRange narrowed_to(IntRange range) {
  using Limits = std::numeric_limits<T>;
  if (std::cmp_greater(Limits::min(), range.min)) range.min = static_cast<int64_t>(Limits::min());
  if (std::cmp_less(Limits::max(), range.max)) range.max = static_cast<int64_t>(Limits::max());
  return range;
}

std::string problem_with(const IntRange& range, int64_t value);

// Bounds on a floating-point key; an open end excludes its bound. NaN and
// the infinities are always rejected: no setting means anything with them.
struct DoubleRange {
  double min = -std::numeric_limits<double>::infinity();
  bool min_open = false;
  double max = std::numeric_limits<double>::infinity();
  bool max_open = false;
};

std::string problem_with(const DoubleRange& range, double value);

// What a string key may hold; an empty list allows anything.
struct TextRule {
  bool non_empty = false;
  std::span<const std::string_view> one_of = {};
  bool endpoint = false;  // a ZeroMQ endpoint to bind (cohort/endpoint.h)
};

std::string problem_with(const TextRule& rule, std::string_view value);

// ---------------------------------------------------------------------------

// Reads the keys of one TOML table (absent: nullptr) into a section struct.
// Each read() names a key the section accepts, so finish() can reject every
// other key without a second list of valid keys to keep in sync. The first
// error sticks: later reads leave their field alone and finish() returns it.
// Keys passed to it must outlive it (string literals).
class TableReader {
 public:
  // `name` is the table's dotted path ("" for the document root).
  TableReader(const toml::table* table, std::string name, std::string_view origin)
      : table_(table), name_(std::move(name)), origin_(origin) {}

  // The sub-table `key`; a missing one reads as empty, keeping all defaults.
  TableReader sub_table(std::string_view key);

  template <std::integral T>
  void read(std::string_view key, T& out, IntRange range = {}) {
    const toml::node* node = find(key);
    if (!node) return;
    const auto* integer = node->as_integer();
    if (!integer) return fail(key, type_problem("integer", *node));
    if (check(key, problem_with(narrowed_to<T>(range), integer->get()))) {
      out = static_cast<T>(integer->get());
    }
  }

  // Integers are accepted too: "learning_rate = 1" means 1.0.
  void read(std::string_view key, double& out, DoubleRange range = {});
  void read(std::string_view key, std::string& out, TextRule rule = {});
  void read(std::string_view key, std::filesystem::path& out, TextRule rule = {});
  void read(std::string_view key, bool& out);
  // An array of non-empty strings.
  void read(std::string_view key, std::vector<std::string>& out);
  // A table of scalars kept as text; nested tables and arrays are errors.
  void read(std::string_view key, std::map<std::string, std::string>& out);

  // A duration in seconds (cohort/duration.h): a float or an integer.
  void read_seconds(std::string_view key, double& out);

  // An amount of tokens (cohort/amount.h): a string, an integer or a float,
  // taken exactly as written.
  void read_amount(std::string_view key, Amount& out);

  // The first unknown key (named with the valid ones), else the first error.
  [[nodiscard]] Status finish() const;

 private:
  // Records `key` as valid and returns its node, or nullptr when the key is
  // absent or an earlier error means nothing more should be read.
  const toml::node* find(std::string_view key);

  // True when `problem` is empty; otherwise records it against `key`.
  bool check(std::string_view key, const std::string& problem);

  void fail(std::string_view key, std::string_view problem);

  std::string full_key(std::string_view key) const;

  const toml::table* table_;
  std::string name_;
  std::string_view origin_;
  std::vector<std::string_view> known_;  // keys are string literals
  Status error_;
};

// ---------------------------------------------------------------------------
// Documents.

// Parses TOML text. The only place toml++ may throw: syntax errors become
// InvalidArgument "<origin>: line L, column C: <what toml++ says>".
Result<toml::table> parse_toml(std::string_view text, std::string_view origin);

// The whole of a regular file. Errors: NotFound "<path>: no such file";
// IoError for anything else that is not a readable regular file.
Result<std::string> read_file(const std::filesystem::path& path);

}  // namespace cohort::toml_reader
