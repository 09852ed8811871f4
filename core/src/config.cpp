// The job schema: the [job], [model], [data], [training], [aggregation],
// [round], [network], [attack], [proof] and [ledger] tables, read with the
// strict TOML reader (toml_reader.h), and the rules that tie their keys
// together. docs/CONFIG.md documents every key.
#include "cohort/config.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "cohort/loss.h"
#include "cohort/model_names.h"
#include "cohort/number_text.h"
#include "cohort/partition.h"
#include "toml_reader.h"

namespace cohort {
namespace {

using toml_reader::DoubleRange;
using toml_reader::IntRange;
using toml_reader::key_error;
using toml_reader::TableReader;
using toml_reader::TextRule;

constexpr std::string_view kDatasets[] = {"fashion-mnist", "idx"};
constexpr std::string_view kProfiles[] = {"cpu-exact", "tolerant"};
constexpr int64_t kKiB = int64_t{1} << 10;
constexpr int64_t kMiB = int64_t{1} << 20;

double in_tokens(Amount amount) { return static_cast<double>(amount) / kMicrosPerToken; }

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

// model.name (a built-in) or model.path (a TorchScript archive, whose
// name becomes kTorchScriptModelName), not both.
Status read_model(TableReader r, ModelSection& s, std::string_view origin) {
  std::string name;
  r.read("name", name, TextRule{.one_of = model_names()});
  r.read("path", s.path);
  COHORT_RETURN_IF_ERROR(r.finish());
  if (!s.path.empty() && !name.empty()) {
    return key_error(origin, "model.path",
                     "cannot be set together with model.name (a job trains a built-in model or an archive)");
  }
  if (!s.path.empty()) {
    s.name = std::string(kTorchScriptModelName);
  } else if (!name.empty()) {
    s.name = name;
  }
  return Status();
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
  r.read("eval_every", s.eval_every, IntRange{.min = 1});
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
  r.read("loss", s.loss, TextRule{.one_of = loss_names()});
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
  r.read("server_optimizer", s.server_optimizer, TextRule{.non_empty = true});
  r.read("server_params", s.server_params);
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
      read_model(root.sub_table("model"), c.model, origin),
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
}  // namespace

double minimum_slashable_stake(const JobConfig& config) {
  const double detection = config.proof.profile == "tolerant" ? 0.9 : 1.0;
  const double reward = in_tokens(config.ledger.reward_per_round);
  return std::max(0.0, reward / (config.proof.audit_probability * detection) - reward);
}

Result<JobConfig> parse_job_config(std::string_view toml_text, std::string_view origin) {
  COHORT_ASSIGN_OR_RETURN(const toml::table document, toml_reader::parse_toml(toml_text, origin));
  return read_document(document, origin);
}

Result<JobConfig> load_job_config(const std::filesystem::path& path) {
  COHORT_ASSIGN_OR_RETURN(const std::string text, toml_reader::read_file(path));
  return parse_job_config(text, path.string());
}

}  // namespace cohort
