// `cohort ledger verify|show|deposit <db>`: check a payout ledger, print its
// balances and per-worker history, credit a worker's stake (docs/LEDGER.md).
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "cohort/ledger.h"
#include "commands.h"
#include "options.h"

namespace cohort::cli {
namespace {

using nlohmann::ordered_json;

constexpr std::string_view kUsage = R"(usage: cohort ledger <subcommand> <db> [options]

subcommands:
  verify    check the hash chain, every signature and every table (exit 1 naming
            the first problem)
  show      print balances and each worker's history (--worker, --json)
  deposit   credit a worker's stake (the coordinator's key signs it)

Run `cohort ledger <subcommand> --help` for its options.
)";

// Bad input (a malformed amount or key, a missing file, the wrong key) is
// exit 2; anything else that fails, tampering included, is exit 1.
int fail(std::string_view subcommand, const Status& status) {
  std::cerr << "cohort ledger " << subcommand << ": " << status.message() << "\n";
  switch (status.code()) {
    case Status::Code::kInvalidArgument:
    case Status::Code::kNotFound:
    case Status::Code::kFailedPrecondition:
      return kExitUsage;
    default:
      return kExitFailure;
  }
}

// Everything the ledger holds about one worker.
struct History {
  PublicKey key{};
  std::optional<Account> account;
  std::vector<DepositRecord> deposits;
  std::vector<SubmissionRecord> submissions;
  std::vector<RewardRecord> rewards;
  std::vector<SlashRecord> slashes;
  std::vector<IncidentRecord> incidents;
  std::vector<Receipt> receipts;
};

template <class Map, class Pick>
auto rows_of(const Map& table, Pick worker_of, const PublicKey& key) {
  std::vector<typename Map::mapped_type> rows;
  for (const auto& [id, row] : table) {
    if (worker_of(row) == key) rows.push_back(row);
  }
  return rows;
}

History history_of(const LedgerContents& c, const PublicKey& key) {
  History h;
  h.key = key;
  if (auto it = c.accounts.find(key); it != c.accounts.end()) h.account = it->second;
  h.deposits = rows_of(c.deposits, [](const DepositRecord& r) { return r.worker; }, key);
  h.submissions = rows_of(c.submissions, [](const SubmissionRecord& r) { return r.submission.worker; }, key);
  h.rewards = rows_of(c.rewards, [](const RewardRecord& r) { return r.worker; }, key);
  h.slashes = rows_of(c.slashes, [](const SlashRecord& r) { return r.worker; }, key);
  h.incidents = rows_of(c.incidents, [](const IncidentRecord& r) { return r.worker; }, key);
  h.receipts = rows_of(c.receipts, [](const Receipt& r) { return r.worker; }, key);
  return h;
}

// Every key with an account, and every key named by an incident.
std::set<PublicKey> known_keys(const LedgerContents& c) {
  std::set<PublicKey> keys;
  for (const auto& [key, account] : c.accounts) keys.insert(key);
  for (const auto& [seq, incident] : c.incidents) keys.insert(incident.worker);
  return keys;
}

ordered_json history_json(const History& h) {
  ordered_json j = {{"key", to_hex(h.key)}};
  if (h.account) {
    j["stake"] = h.account->stake;
    j["balance"] = h.account->balance;
    j["reputation"] = h.account->reputation;
    j["banned"] = h.account->banned;
    j["ban_reason"] = h.account->ban_reason;
  } else {
    j["account"] = nullptr;
  }
  j["deposits"] = ordered_json::array();
  for (const auto& d : h.deposits) j["deposits"].push_back({{"entry", d.seq}, {"amount", d.amount}, {"memo", d.memo}});
  j["submissions"] = ordered_json::array();
  for (const auto& s : h.submissions) {
    j["submissions"].push_back({{"round", s.submission.round},
                                {"task", s.submission.task_id},
                                {"samples", s.submission.samples},
                                {"update_hash", to_hex(s.submission.update_hash)},
                                {"commitment_root", to_hex(s.submission.commitment_root)},
                                {"verdict", verdict_name(s.verdict)},
                                {"reason", s.reason}});
  }
  j["rewards"] = ordered_json::array();
  for (const auto& r : h.rewards) j["rewards"].push_back({{"round", r.round}, {"task", r.task_id}, {"amount", r.amount}});
  j["slashes"] = ordered_json::array();
  for (const auto& s : h.slashes) {
    j["slashes"].push_back(
        {{"entry", s.seq}, {"task", s.task_id}, {"amount", s.amount}, {"ban", s.ban}, {"reason", s.reason}});
  }
  j["incidents"] = ordered_json::array();
  for (const auto& i : h.incidents) {
    j["incidents"].push_back(
        {{"entry", i.seq}, {"round", i.round}, {"task", i.task_id}, {"kind", i.kind}, {"detail", i.detail}});
  }
  j["receipts"] = ordered_json::array();
  // The one JSON form of a receipt, as in a worker's receipts.jsonl.
  for (const auto& r : h.receipts) j["receipts"].push_back(ordered_json::parse(receipt_json(r)));
  return j;
}

void print_history(const History& h) {
  std::cout << "\nworker " << to_hex(h.key) << "\n";
  if (h.account) {
    std::cout << "  stake " << format_amount(h.account->stake) << "  balance " << format_amount(h.account->balance)
              << "  reputation " << h.account->reputation;
    if (h.account->banned) std::cout << "  BANNED: " << h.account->ban_reason;
    std::cout << "\n";
  } else {
    std::cout << "  no account\n";
  }
  for (const auto& d : h.deposits) {
    std::cout << "  deposit     entry " << d.seq << ": " << format_amount(d.amount) << " tokens"
              << (d.memo.empty() ? "" : " (" + d.memo + ")") << "\n";
  }
  for (const auto& s : h.submissions) {
    std::cout << "  submission  round " << s.submission.round << " task " << s.submission.task_id << ": "
              << s.submission.samples << " samples, " << verdict_name(s.verdict)
              << (s.reason.empty() ? "" : " (" + s.reason + ")") << "\n";
  }
  for (const auto& r : h.rewards) {
    std::cout << "  reward      round " << r.round << " task " << r.task_id << ": " << format_amount(r.amount)
              << " tokens\n";
  }
  for (const auto& s : h.slashes) {
    std::cout << "  slash       entry " << s.seq << " task " << s.task_id << ": " << format_amount(s.amount)
              << " tokens" << (s.ban ? ", banned" : "") << (s.reason.empty() ? "" : " (" + s.reason + ")") << "\n";
  }
  for (const auto& i : h.incidents) {
    std::cout << "  incident    entry " << i.seq << " round " << i.round << " task " << i.task_id << ": " << i.kind
              << (i.detail.empty() ? "" : " (" + i.detail + ")") << "\n";
  }
}

void print_summary(const std::string& db, const LedgerContents& c) {
  std::cout << "ledger " << db << ": coordinator " << to_hex(c.coordinator) << ", " << c.head_seq
            << " entries, head " << to_hex(c.head) << "\n";
  for (const auto& [round, r] : c.rounds) {
    std::cout << "round " << round << ": budget " << format_amount(r.budget) << ", paid " << format_amount(r.paid)
              << ", unassigned " << format_amount(r.unassigned) << " (signed head at entry " << r.head_seq << ")\n";
  }
}

ordered_json summary_json(const std::string& db, const LedgerContents& c) {
  ordered_json j = {{"ledger", db},
                    {"coordinator", to_hex(c.coordinator)},
                    {"entries", c.head_seq},
                    {"head", to_hex(c.head)},
                    {"rounds", ordered_json::array()}};
  for (const auto& [round, r] : c.rounds) {
    j["rounds"].push_back({{"round", round},
                           {"budget", r.budget},
                           {"paid", r.paid},
                           {"unassigned", r.unassigned},
                           {"head_seq", r.head_seq}});
  }
  return j;
}

// The command's <db>: the first argument, unless it is an option (then only
// --help makes sense).
std::optional<std::string> take_db(std::vector<std::string>& args) {
  if (args.empty() || args.front().starts_with("-")) return std::nullopt;
  std::string db = args.front();
  args.erase(args.begin());
  return db;
}

int verify(const std::string& db, const po::variables_map& vm) {
  std::optional<PublicKey> expected;
  if (vm.count("coordinator-key")) {
    Result<PublicKey> key = read_public_key(vm["coordinator-key"].as<std::string>());
    if (!key.ok()) return fail("verify", key.status().with_context("--coordinator-key"));
    expected = *key;
  }
  Result<LedgerReport> report = verify_ledger(db, expected);
  if (!report.ok()) return fail("verify", report.status().with_context(db));
  std::cout << "ledger " << db << " is intact: " << report->entries << " entries, " << report->rounds_closed
            << " rounds closed, " << report->receipts << " receipts, " << report->accounts
            << " accounts; coordinator " << to_hex(report->coordinator) << ", head " << to_hex(report->head) << "\n";
  return kExitOk;
}

int show(const std::string& db, const po::variables_map& vm) {
  Result<LedgerContents> contents = read_ledger(db);
  if (!contents.ok()) return fail("show", contents.status().with_context(db));
  std::set<PublicKey> keys = known_keys(*contents);
  if (vm.count("worker")) {
    Result<PublicKey> key = read_public_key(vm["worker"].as<std::string>());
    if (!key.ok()) return fail("show", key.status().with_context("--worker"));
    if (!keys.contains(*key)) return fail("show", Status::not_found(db + ": no account or history for " + to_hex(*key)));
    keys = {*key};
  }
  if (vm.count("json")) {
    ordered_json j = summary_json(db, *contents);
    j["workers"] = ordered_json::array();
    for (const PublicKey& key : keys) j["workers"].push_back(history_json(history_of(*contents, key)));
    std::cout << j.dump(-1, ' ', false, ordered_json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  print_summary(db, *contents);
  for (const PublicKey& key : keys) print_history(history_of(*contents, key));
  return kExitOk;
}

int deposit(const std::string& db, const po::variables_map& vm) {
  Result<Amount> amount = parse_amount(vm["amount"].as<std::string>());
  if (!amount.ok()) return fail("deposit", amount.status().with_context("--amount"));
  if (*amount == 0) return fail("deposit", Status::invalid_argument("--amount: must be more than 0"));
  Result<PublicKey> worker = read_public_key(vm["worker"].as<std::string>());
  if (!worker.ok()) return fail("deposit", worker.status().with_context("--worker"));
  Result<Identity> coordinator = read_identity(vm["key"].as<std::string>());
  if (!coordinator.ok()) return fail("deposit", coordinator.status().with_context("--key"));
  Result<std::unique_ptr<Ledger>> ledger = Ledger::open(db, *coordinator);
  if (!ledger.ok()) return fail("deposit", ledger.status());
  if (Status s = (*ledger)->deposit(*worker, *amount, vm["memo"].as<std::string>()); !s.ok()) {
    return fail("deposit", s);
  }
  std::cout << "deposited " << format_amount(*amount) << " tokens to " << to_hex(*worker) << ": stake "
            << format_amount((*ledger)->account(*worker)->stake) << " (ledger entry " << (*ledger)->head_seq()
            << ")\n";
  return kExitOk;
}

}  // namespace

int ledger_command(const std::vector<std::string>& all_args) {
  if (all_args.empty() || all_args.front() == "--help" || all_args.front() == "-h") {
    (all_args.empty() ? std::cerr : std::cout) << kUsage;
    return all_args.empty() ? kExitUsage : kExitOk;
  }
  const std::string subcommand = all_args.front();
  std::vector<std::string> args(all_args.begin() + 1, all_args.end());
  const std::optional<std::string> db = take_db(args);

  po::options_description options("options");
  options.add_options()("help,h", "show this help");
  std::string summary;
  int (*run)(const std::string&, const po::variables_map&) = nullptr;
  if (subcommand == "verify") {
    options.add_options()("coordinator-key", po::value<std::string>(),
                          "also require the ledger to be this coordinator's (hex or .pub file)");
    summary = "Checks the hash chain, every head and receipt signature, and that every table equals what "
              "replaying the chain gives.\nExit 0 and a summary when intact; exit 1 naming the first problem.";
    run = verify;
  } else if (subcommand == "show") {
    options.add_options()("worker", po::value<std::string>(), "only this worker (hex or .pub file)")(
        "json", "print JSON (amounts in micro-tokens: 1 token = 1000000)");
    summary = "Prints the rounds, each worker's stake, balance and reputation, and its deposits, submissions "
              "with verdicts,\nrewards, slashes and incidents. Does not verify (see `cohort ledger verify`).";
    run = show;
  } else if (subcommand == "deposit") {
    options.add_options()("key", po::value<std::string>()->required(), "the coordinator's secret key file")(
        "worker", po::value<std::string>()->required(), "the worker's public key (hex or .pub file)")(
        "amount", po::value<std::string>()->required(), "tokens, up to 6 decimals (e.g. 400 or 12.5)")(
        "memo", po::value<std::string>()->default_value(""), "a note kept in the ledger");
    summary = "Credits stake to a worker's account (created if new), as an entry signed by the coordinator's key.\n"
              "Creates the ledger if <db> does not exist.";
    run = deposit;
  } else {
    std::cerr << "cohort ledger: unknown subcommand '" << subcommand << "'\n\n" << kUsage;
    return kExitUsage;
  }

  int exit_code = kExitOk;
  auto vm = parse_args("ledger " + subcommand + " <db>", summary, options, args, exit_code);
  if (!vm) return exit_code;
  if (!db) {
    std::cerr << "cohort ledger " << subcommand << ": missing <db>, the ledger file\n(see cohort ledger "
              << subcommand << " --help)\n";
    return kExitUsage;
  }
  if (Status s = init_crypto(); !s.ok()) return fail(subcommand, s);
  return run(*db, *vm);
}

}  // namespace cohort::cli
