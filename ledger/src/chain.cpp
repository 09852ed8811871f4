#include "chain.h"

#include <nlohmann/json.hpp>

#include <limits>
#include <type_traits>

namespace cohort::ledger {
namespace {

using nlohmann::json;

// The readers below throw (json::exception for a missing key or a wrong
// type, std::invalid_argument for a bad value); decode() catches once.
Digest digest_at(const json& j, const char* key) {
  Result<Digest> digest = parse_digest(j.at(key).get<std::string>());
  if (!digest.ok()) throw std::invalid_argument(std::string(key) + ": " + digest.status().message());
  return *digest;
}

// An integer of type T. get<T>() alone would cast any number: a float out
// of T's range is undefined behaviour, and -1 would become 2^32 - 1.
template <class T>
T integer_at(const json& j, const char* key) {
  const json& value = j.at(key);
  bool valid = false;
  if (value.is_number_unsigned()) {
    valid = value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max());
  } else if (value.is_number_integer()) {  // negative
    valid = std::is_signed_v<T>;
  }
  if (!valid) throw std::invalid_argument(std::string(key) + ": " + value.dump() + " is not a valid integer");
  return value.get<T>();
}

Verdict verdict_at(const json& j, const char* key) {
  Result<Verdict> verdict = parse_verdict(j.at(key).get<std::string>());
  if (!verdict.ok()) throw std::invalid_argument(std::string(key) + ": " + verdict.status().message());
  return *verdict;
}

json to_json(const GenesisEntry& e) { return {{"coordinator", to_hex(e.coordinator)}}; }
json to_json(const AccountEntry& e) { return {{"key", to_hex(e.key)}}; }
json to_json(const DepositEntry& e) {
  return {{"worker", to_hex(e.worker)}, {"amount", e.amount}, {"memo", e.memo}};
}
json to_json(const SubmissionEntry& e) {
  const Submission& s = e.submission;
  return {{"round", s.round},   {"task", s.task_id},        {"worker", to_hex(s.worker)},
          {"root", to_hex(s.commitment_root)}, {"update", to_hex(s.update_hash)}, {"samples", s.samples}};
}
json to_json(const IncidentEntry& e) {
  return {{"worker", to_hex(e.worker)}, {"round", e.round}, {"task", e.task_id}, {"kind", e.kind}, {"detail", e.detail}};
}
json to_json(const VerdictEntry& e) {
  return {{"task", e.task_id}, {"verdict", std::string(verdict_name(e.verdict))}, {"reason", e.reason}};
}
json to_json(const SlashEntry& e) {
  return {{"worker", to_hex(e.worker)}, {"task", e.task_id}, {"amount", e.amount}, {"ban", e.ban}, {"reason", e.reason}};
}
json to_json(const RoundEntry& e) {
  json rewards = json::array();
  for (const Payment& p : e.rewards) {
    rewards.push_back({{"task", p.task_id}, {"worker", to_hex(p.worker)}, {"amount", p.amount}});
  }
  return {{"round", e.round}, {"budget", e.budget}, {"rewards", rewards}, {"unassigned", e.unassigned}};
}

// Throws on a missing key, a wrong type or a bad value.
EntryBody from_json(std::string_view kind, const json& j) {
  if (kind == "genesis") return GenesisEntry{digest_at(j, "coordinator")};
  if (kind == "account") return AccountEntry{digest_at(j, "key")};
  if (kind == "deposit") {
    return DepositEntry{digest_at(j, "worker"), integer_at<Amount>(j, "amount"), j.at("memo").get<std::string>()};
  }
  if (kind == "submission") {
    return SubmissionEntry{{integer_at<uint32_t>(j, "round"), integer_at<uint64_t>(j, "task"), digest_at(j, "worker"),
                            digest_at(j, "root"), digest_at(j, "update"), integer_at<uint64_t>(j, "samples")}};
  }
  if (kind == "incident") {
    return IncidentEntry{digest_at(j, "worker"), integer_at<uint32_t>(j, "round"), integer_at<uint64_t>(j, "task"),
                         j.at("kind").get<std::string>(), j.at("detail").get<std::string>()};
  }
  if (kind == "verdict") {
    return VerdictEntry{integer_at<uint64_t>(j, "task"), verdict_at(j, "verdict"), j.at("reason").get<std::string>()};
  }
  if (kind == "slash") {
    return SlashEntry{digest_at(j, "worker"), integer_at<uint64_t>(j, "task"), integer_at<Amount>(j, "amount"),
                      j.at("ban").get<bool>(), j.at("reason").get<std::string>()};
  }
  if (kind == "round") {
    RoundEntry e{integer_at<uint32_t>(j, "round"), integer_at<Amount>(j, "budget"), {},
                 integer_at<Amount>(j, "unassigned")};
    for (const json& p : j.at("rewards")) {
      e.rewards.push_back({integer_at<uint64_t>(p, "task"), digest_at(p, "worker"), integer_at<Amount>(p, "amount")});
    }
    return e;
  }
  throw std::invalid_argument("unknown entry kind '" + std::string(kind) + "'");
}

}  // namespace

std::string kind_of(const EntryBody& body) {
  static constexpr const char* kKinds[] = {"genesis", "account", "deposit", "submission",
                                           "incident", "verdict", "slash",   "round"};
  static_assert(std::size(kKinds) == std::variant_size_v<EntryBody>);
  return kKinds[body.index()];
}

std::string encode(const EntryBody& body) {
  const json j = std::visit([](const auto& e) { return to_json(e); }, body);
  // Text from outside (memos, reasons, incident details) may not be UTF-8:
  // invalid bytes become U+FFFD, so the stored body is always valid JSON.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Result<EntryBody> decode(std::string_view kind, std::string_view body) {
  try {
    EntryBody entry = from_json(kind, json::parse(body));
    if (encode(entry) != body) return Status::corruption("the body is not in canonical form");
    return entry;
  } catch (const std::exception& e) {  // json::exception or a bad value above
    return Status::corruption(std::string("bad ") + std::string(kind) + " body: " + e.what());
  }
}

Digest entry_hash(uint64_t seq, const Digest& prev, std::string_view kind, std::string_view body) {
  return blake2b_256(CanonicalBytes("cohort-ledger-entry-v1").u64(seq).bytes(prev).text(kind).text(body).data());
}

std::vector<uint8_t> Head::signed_bytes() const {
  return CanonicalBytes("cohort-ledger-head-v1")
      .u64(seq)
      .bytes(hash)
      .u64(prev_seq)
      .u32(round.has_value() ? 1 : 0)
      .u32(round.value_or(0))
      .data();
}

}  // namespace cohort::ledger
