// Strict TOML job parsing; docs/CONFIG.md documents every key.
//
// toml++ is used in its default header-only mode, so nothing needs linking.
// Its parse_error is caught in exactly one place (parse_toml) and turned into
// a Status: bad input never escapes as an exception.
#include "cohort/config.h"

#include <toml++/toml.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <concepts>
#include <fstream>
#include <iterator>
#include <limits>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

#include "cohort/duration.h"
#include "cohort/endpoint.h"
#include "cohort/model_names.h"
#include "cohort/number_text.h"
#include "cohort/partition.h"

namespace cohort {
namespace {

constexpr std::string_view kDatasets[] = {"fashion-mnist", "idx"};
constexpr std::string_view kProfiles[] = {"cpu-exact", "tolerant"};
constexpr int64_t kKiB = int64_t{1} << 10;
constexpr int64_t kMiB = int64_t{1} << 20;
constexpr double kInf = std::numeric_limits<double>::infinity();

// ---------------------------------------------------------------------------
// Message pieces. Every error reads "<origin>: <key>: <problem>".

Status key_error(std::string_view origin, std::string_view key, std::string_view problem) {
  std::string message(origin);
  message.append(": ").append(key).append(": ").append(problem);
  return Status::invalid_argument(std::move(message));
}

double in_tokens(Amount amount) { return static_cast<double>(amount) / kMicrosPerToken; }

std::string quoted(std::string_view text) { return "\"" + std::string(text) + "\""; }

std::string joined(std::span<const std::string_view> items, bool quote) {
  std::string out;
  for (std::string_view item : items) {
    if (!out.empty()) out += ", ";
    out += quote ? quoted(item) : std::string(item);
  }
  return out;
}

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

std::string type_problem(std::string_view expected, const toml::node& got) {
  return "expected " + std::string(expected) + ", got " + std::string(type_name(got.type()));
}

// ---------------------------------------------------------------------------
// Value rules: what a key of each kind may hold. Each returns the problem
// with a value, or "" when it is acceptable.

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

std::string problem_with(const IntRange& range, int64_t value) {
  const std::string got = ", got " + std::to_string(value);
  if (value < range.min) return "must be >= " + std::to_string(range.min) + got;
  if (value > range.max) return "must be <= " + std::to_string(range.max) + got;
  return {};
}

// Bounds on a floating-point key; an open end excludes its bound. NaN and
// the infinities are always rejected: no setting means anything with them.
struct DoubleRange {
  double min = -kInf;
  bool min_open = false;
  double max = kInf;
  bool max_open = false;
};

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

std::string problem_with(const DoubleRange& range, double value) {
  const std::string got = ", got " + number_text(value);
  if (!std::isfinite(value)) return "must be finite" + got;
  const bool above = range.min_open ? value > range.min : value >= range.min;
  const bool below = range.max_open ? value < range.max : value <= range.max;
  if (above && below) return {};
  return "must be " + describe(range) + got;
}

// What a string key may hold; an empty list allows anything.
struct TextRule {
  bool non_empty = false;
  std::span<const std::string_view> one_of = {};
  bool endpoint = false;  // a ZeroMQ endpoint to bind (cohort/endpoint.h)
};

std::string problem_with(const TextRule& rule, std::string_view value) {
  const std::string got = "; got " + quoted(value);
  if (rule.non_empty && value.empty()) return "must not be empty";
  if (!rule.one_of.empty() && std::ranges::find(rule.one_of, value) == rule.one_of.end()) {
    return "must be one of " + joined(rule.one_of, /*quote=*/true) + got;
  }
  if (rule.endpoint) return check_endpoint(value, EndpointUse::kBind).message();
  return {};
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

// ---------------------------------------------------------------------------

// Reads the keys of one TOML table (absent: nullptr) into a section struct.
// Each read() names a key the section accepts, so finish() can reject every
// other key without a second list of valid keys to keep in sync. The first
// error sticks: later reads leave their field alone and finish() returns it.
class TableReader {
 public:
  // `name` is the table's dotted path ("" for the document root).
  TableReader(const toml::table* table, std::string name, std::string_view origin)
      : table_(table), name_(std::move(name)), origin_(origin) {}

  // The sub-table `key`; a missing one reads as empty, keeping all defaults.
  TableReader sub_table(std::string_view key) {
    const toml::node* node = find(key);
    const toml::table* table = node ? node->as_table() : nullptr;
    if (node && !table) fail(key, type_problem("table", *node));
    return TableReader(table, full_key(key), origin_);
  }

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
  void read(std::string_view key, double& out, DoubleRange range = {}) {
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

  void read(std::string_view key, std::string& out, TextRule rule = {}) {
    const toml::node* node = find(key);
    if (!node) return;
    const auto* text = node->as_string();
    if (!text) return fail(key, type_problem("string", *node));
    if (check(key, problem_with(rule, text->get()))) out = text->get();
  }

  void read(std::string_view key, std::filesystem::path& out, TextRule rule = {}) {
    std::string text = out.string();
    read(key, text, rule);
    out = text;
  }

  // A duration in seconds (cohort/duration.h): a float or an integer.
  void read_seconds(std::string_view key, double& out) {
    double seconds = out;
    read(key, seconds);
    if (error_.ok() && check(key, duration_problem(seconds))) out = seconds;
  }

  void read_amount(std::string_view key, Amount& out) {
    const toml::node* node = find(key);
    if (!node) return;
    Result<Amount> amount = amount_of(*node);
    if (!amount.ok()) return fail(key, amount.status().message());
    out = *amount;
  }

  void read(std::string_view key, bool& out) {
    const toml::node* node = find(key);
    if (!node) return;
    const auto* flag = node->as_boolean();
    if (!flag) return fail(key, type_problem("boolean", *node));
    out = flag->get();
  }

  // An array of non-empty strings.
  void read(std::string_view key, std::vector<std::string>& out) {
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

  // A table of scalars kept as text; nested tables and arrays are errors.
  void read(std::string_view key, std::map<std::string, std::string>& out) {
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

  // The first unknown key (named with the valid ones), else the first error.
  [[nodiscard]] Status finish() const {
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

 private:
  // Records `key` as valid and returns its node, or nullptr when the key is
  // absent or an earlier error means nothing more should be read.
  const toml::node* find(std::string_view key) {
    known_.push_back(key);
    if (!table_ || !error_.ok()) return nullptr;
    return table_->get(key);
  }

  // True when `problem` is empty; otherwise records it against `key`.
  bool check(std::string_view key, const std::string& problem) {
    if (problem.empty()) return true;
    fail(key, problem);
    return false;
  }

  void fail(std::string_view key, std::string_view problem) {
    if (error_.ok()) error_ = key_error(origin_, full_key(key), problem);
  }

  std::string full_key(std::string_view key) const {
    return name_.empty() ? std::string(key) : name_ + "." + std::string(key);
  }

  const toml::table* table_;
  std::string name_;
  std::string_view origin_;
  std::vector<std::string_view> known_;  // keys are string literals
  Status error_;
};

// ---------------------------------------------------------------------------
// One function per section; the order of reads is the order of valid keys
// listed in "unknown key" messages, and matches config.h and docs/CONFIG.md.

Status read_job(TableReader r, JobSection& s) {
  r.read("name", s.name, TextRule{.non_empty = true});
  r.read("seed", s.seed);
  r.read("rounds", s.rounds, IntRange{.min = 1});
  r.read("output_dir", s.output_dir, TextRule{.non_empty = true});
  return r.finish();
}

Status read_model(TableReader r, ModelSection& s) {
  r.read("name", s.name, TextRule{.one_of = model_names()});
  return r.finish();
}

Status read_data(TableReader r, DataSection& s) {
  r.read("dataset", s.dataset, TextRule{.one_of = kDatasets});
  r.read("dir", s.dir);
  r.read("test_images", s.test_images);
  r.read("test_labels", s.test_labels);
  r.read("train_images", s.train_images);
  r.read("train_labels", s.train_labels);
  r.read("partition", s.partition, TextRule{.one_of = partition_scheme_names()});
  r.read("alpha", s.alpha, DoubleRange{.min = 0, .min_open = true});
  r.read("gamma", s.gamma, DoubleRange{.min = 0, .max = 1});
  r.read("eval_samples", s.eval_samples, IntRange{.min = 0});
  return r.finish();
}

Status read_training(TableReader r, TrainingSection& s) {
  r.read("local_steps", s.local_steps, IntRange{.min = 0});
  r.read("local_epochs", s.local_epochs, DoubleRange{.min = 0});
  r.read("batch_size", s.batch_size, IntRange{.min = 1});
  r.read("learning_rate", s.learning_rate, DoubleRange{.min = 0, .min_open = true});
  r.read("momentum", s.momentum, DoubleRange{.min = 0, .max = 1, .max_open = true});
  r.read("weight_decay", s.weight_decay, DoubleRange{.min = 0});
  r.read("keep_momentum", s.keep_momentum);
  return r.finish();
}

Status read_aggregation(TableReader r, AggregationSection& s) {
  r.read("pre", s.pre);
  r.read("rule", s.rule, TextRule{.non_empty = true});
  r.read("server_learning_rate", s.server_learning_rate, DoubleRange{.min = 0, .min_open = true});
  r.read("f", s.f, IntRange{.min = 0});
  r.read("root_samples", s.root_samples, IntRange{.min = 0});
  r.read("max_update_norm", s.max_update_norm, DoubleRange{.min = 0});
  r.read("params", s.params);
  return r.finish();
}

Status read_round(TableReader r, RoundSection& s) {
  r.read("min_workers", s.min_workers, IntRange{.min = 1});
  r.read("workers_per_round", s.workers_per_round, IntRange{.min = 0});
  r.read("min_updates", s.min_updates, IntRange{.min = 1});
  r.read_seconds("deadline_seconds", s.deadline_seconds);
  r.read_seconds("registration_timeout_seconds", s.registration_timeout_seconds);
  return r.finish();
}

Status read_network(TableReader r, NetworkSection& s) {
  r.read("listen", s.listen, TextRule{.non_empty = true, .endpoint = true});
  r.read("max_message_bytes", s.max_message_bytes, IntRange{.min = kMiB});
  r.read("chunk_bytes", s.chunk_bytes, IntRange{.min = 4 * kKiB});
  r.read("max_model_bytes", s.max_model_bytes, IntRange{.min = 1});
  r.read("messages_per_second", s.messages_per_second, DoubleRange{.min = 0});
  r.read("message_burst", s.message_burst, IntRange{.min = 1});
  r.read("max_pending_messages", s.max_pending_messages, IntRange{.min = 1});
  r.read("curve", s.curve);
  r.read("allow_list", s.allow_list);
  return r.finish();
}

Status read_attack(TableReader r, AttackSection& s) {
  r.read("name", s.name, TextRule{.non_empty = true});
  r.read("byzantine", s.byzantine, IntRange{.min = 0});
  r.read("params", s.params);
  return r.finish();
}

Status read_proof(TableReader r, ProofSection& s) {
  r.read("segment_steps", s.segment_steps, IntRange{.min = 0});
  r.read("audit_probability", s.audit_probability, DoubleRange{.min = 0, .min_open = true, .max = 1});
  r.read("segments_per_audit", s.segments_per_audit, IntRange{.min = 1});
  r.read("profile", s.profile, TextRule{.one_of = kProfiles});
  r.read("tolerance", s.tolerance, DoubleRange{.min = 0, .max = 0.05});
  r.read_seconds("reveal_seconds", s.reveal_seconds);
  r.read("verifier_threads", s.verifier_threads, IntRange{.min = 1});
  return r.finish();
}

Status read_ledger(TableReader r, LedgerSection& s) {
  r.read("path", s.path);
  r.read("key", s.key);
  r.read_amount("reward_per_round", s.reward_per_round);
  r.read_amount("min_stake", s.min_stake);
  r.read("slash_fraction", s.slash_fraction, DoubleRange{.min = 0, .min_open = true, .max = 1});
  r.read_amount("registration_grant", s.registration_grant);
  return r.finish();
}

// Rules that tie keys together, checked once every key is in range. Each
// names the key a user would most likely change.
Status check_relations(const JobConfig& c, std::string_view origin) {
  struct Relation {
    bool violated;
    std::string_view key;
    std::string problem;
  };
  const auto& round = c.round;
  const double slashable = c.ledger.slash_fraction * in_tokens(c.ledger.min_stake);
  const Relation relations[] = {
      {c.training.local_steps > 0 && c.training.local_epochs > 0, "training.local_epochs",
       "must be 0 when training.local_steps > 0 (set one of them), got " +
           number_text(c.training.local_epochs)},
      {c.data.dataset == "idx" && c.data.test_images.empty(), "data.test_images",
       "required when data.dataset = \"idx\""},
      {c.data.dataset == "idx" && c.data.test_labels.empty(), "data.test_labels",
       "required when data.dataset = \"idx\""},
      {c.data.dataset == "fashion-mnist" && c.data.dir.empty(), "data.dir",
       "required when data.dataset = \"fashion-mnist\""},
      {round.workers_per_round > 0 && round.min_updates > round.workers_per_round, "round.min_updates",
       "must be <= round.workers_per_round (" + std::to_string(round.workers_per_round) +
           ") when that is > 0, got " + std::to_string(round.min_updates)},
      {round.min_workers < round.min_updates, "round.min_workers",
       "must be >= round.min_updates (" + std::to_string(round.min_updates) + "), got " +
           std::to_string(round.min_workers)},
      {c.data.dataset == "idx" && c.proof.segment_steps > 0 &&
           (c.data.train_images.empty() || c.data.train_labels.empty()),
       "data.train_images", "and data.train_labels are required with [proof] on and data.dataset = \"idx\""},
      {c.proof.profile == "tolerant" && c.proof.tolerance <= 0, "proof.tolerance",
       "must be > 0 with proof.profile = \"tolerant\""},
      {c.proof.segment_steps > 0 &&
           slashable < minimum_slashable_stake(c) - 1e-9,
       "ledger.min_stake",
       "too small to make cheating a loss: slash_fraction * min_stake = " + number_text(slashable) +
           " but the stake rule needs >= " +
           number_text(minimum_slashable_stake(c)) +
           " (reward_per_round * (1 / (audit_probability * d) - 1), docs/LEDGER.md)"},
      {c.network.curve && c.network.listen.starts_with("inproc://"), "network.listen",
       "inproc:// connections carry no CURVE security; use tcp:// or ipc://, or set network.curve = false"},
      {!c.network.curve && !c.network.allow_list.empty(), "network.allow_list",
       "needs network.curve = true (keys are checked in the CURVE handshake)"},
      {c.network.chunk_bytes > c.network.max_message_bytes, "network.chunk_bytes",
       "must be <= network.max_message_bytes (" + std::to_string(c.network.max_message_bytes) +
           "), got " + std::to_string(c.network.chunk_bytes)},
  };
  for (const Relation& relation : relations) {
    if (relation.violated) return key_error(origin, relation.key, relation.problem);
  }
  return Status();
}

Result<JobConfig> read_document(const toml::table& document, std::string_view origin) {
  TableReader root(&document, "", origin);
  JobConfig c;
  // Braced initialisers run left to right, so sections are read in config.h
  // order and the root has seen every section name before root.finish().
  const Status sections[] = {
      read_job(root.sub_table("job"), c.job),
      read_model(root.sub_table("model"), c.model),
      read_data(root.sub_table("data"), c.data),
      read_training(root.sub_table("training"), c.training),
      read_aggregation(root.sub_table("aggregation"), c.aggregation),
      read_round(root.sub_table("round"), c.round),
      read_network(root.sub_table("network"), c.network),
      read_attack(root.sub_table("attack"), c.attack),
      read_proof(root.sub_table("proof"), c.proof),
      read_ledger(root.sub_table("ledger"), c.ledger),
  };
  COHORT_RETURN_IF_ERROR(root.finish());
  for (const Status& status : sections) COHORT_RETURN_IF_ERROR(status);
  COHORT_RETURN_IF_ERROR(check_relations(c, origin));
  return c;
}

// The only place toml++ may throw: syntax errors become "<origin>: line L,
// column C: <what toml++ says>".
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

}  // namespace

double minimum_slashable_stake(const JobConfig& config) {
  const double detection = config.proof.profile == "tolerant" ? 0.9 : 1.0;
  const double reward = in_tokens(config.ledger.reward_per_round);
  return std::max(0.0, reward / (config.proof.audit_probability * detection) - reward);
}

Result<JobConfig> parse_job_config(std::string_view toml_text, std::string_view origin) {
  COHORT_ASSIGN_OR_RETURN(const toml::table document, parse_toml(toml_text, origin));
  return read_document(document, origin);
}

Result<JobConfig> load_job_config(const std::filesystem::path& path) {
  COHORT_ASSIGN_OR_RETURN(const std::string text, read_file(path));
  return parse_job_config(text, path.string());
}

}  // namespace cohort
