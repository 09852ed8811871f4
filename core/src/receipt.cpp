#include "cohort/receipt.h"

#include <algorithm>
#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

namespace cohort {
namespace {

using nlohmann::json;

// What the readers below throw for a field with a bad value (a missing key
// or a wrong type throws json::exception).
struct BadField {
  Status status;
};

[[noreturn]] void bad_field(const char* key, std::string_view problem) {
  throw BadField{Status::corruption("a receipt's \"" + std::string(key) + "\": " + std::string(problem))};
}

template <typename T>
T integer_at(const json& j, const char* key) {
  const json& value = j.at(key);
  const bool in_range =
      value.is_number_unsigned()
          ? value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())
          : std::is_signed_v<T> && value.is_number_integer();  // a negative integer
  if (!in_range) bad_field(key, "not an integer in range");
  return value.get<T>();
}

// The value of a string field, through `parse` (parse_digest, parse_verdict, ...).
template <typename Parse>
auto parsed_at(const json& j, const char* key, Parse parse) {
  auto parsed = parse(j.at(key).get<std::string>());
  if (!parsed.ok()) bad_field(key, parsed.status().message());
  return *parsed;
}

// A signature is 64 bytes: two digests' worth of hex.
Result<Signature> parse_signature_hex(std::string_view hex) {
  if (hex.size() != 128) return Status::invalid_argument("a signature must be 128 hex digits");
  Result<Digest> low = parse_digest(hex.substr(0, 64));
  Result<Digest> high = parse_digest(hex.substr(64));
  if (!low.ok() || !high.ok()) return Status::invalid_argument("a signature must be 128 hex digits");
  Signature signature{};
  std::copy(low->begin(), low->end(), signature.begin());
  std::copy(high->begin(), high->end(), signature.begin() + low->size());
  return signature;
}

}  // namespace

std::string_view verdict_name(Verdict verdict) {
  switch (verdict) {
    case Verdict::kPending: return "pending";
    case Verdict::kPassed: return "passed";
    case Verdict::kUnaudited: return "unaudited";
    case Verdict::kFailed: return "failed";
    case Verdict::kRejected: return "rejected";
    case Verdict::kVoided: return "voided";
  }
  return "unknown";
}

Result<Verdict> parse_verdict(std::string_view name) {
  for (Verdict v : {Verdict::kPending, Verdict::kPassed, Verdict::kUnaudited, Verdict::kFailed,
                    Verdict::kRejected, Verdict::kVoided}) {
    if (verdict_name(v) == name) return v;
  }
  return Status::invalid_argument("unknown verdict '" + std::string(name) + "'");
}

bool verify_receipt(const Receipt& receipt) {
  return verify_signature(receipt.coordinator, receipt.signed_bytes(), receipt.signature);
}

std::string receipt_json(const Receipt& r) {
  return nlohmann::ordered_json{{"round", r.round},
                                {"task", r.task_id},
                                {"worker", to_hex(r.worker)},
                                {"update_hash", to_hex(r.update_hash)},
                                {"verdict", verdict_name(r.verdict)},
                                {"reason", r.reason},
                                {"reward", r.reward},
                                {"slashed", r.slashed},
                                {"chain_seq", r.chain_seq},
                                {"chain_hash", to_hex(r.chain_hash)},
                                {"coordinator", to_hex(r.coordinator)},
                                {"signature", to_hex(r.signature)}}
      .dump();
}

Result<Receipt> parse_receipt_json(std::string_view text) {
  const json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return Status::corruption("a receipt that is not a JSON object");
  try {
    Receipt r;
    r.round = integer_at<uint32_t>(j, "round");
    r.task_id = integer_at<uint64_t>(j, j.contains("task") ? "task" : "task_id");
    r.worker = parsed_at(j, "worker", parse_public_key);
    r.update_hash = parsed_at(j, "update_hash", parse_digest);
    r.verdict = parsed_at(j, "verdict", parse_verdict);
    r.reason = j.at("reason").get<std::string>();
    r.reward = integer_at<Amount>(j, "reward");
    r.slashed = integer_at<Amount>(j, "slashed");
    r.chain_seq = integer_at<uint64_t>(j, "chain_seq");
    r.chain_hash = parsed_at(j, "chain_hash", parse_digest);
    r.coordinator = parsed_at(j, "coordinator", parse_public_key);
    r.signature = parsed_at(j, "signature", parse_signature_hex);
    return r;
  } catch (const BadField& bad) {
    return bad.status;
  } catch (const json::exception& e) {  // a missing key or a wrong type
    return Status::corruption(std::string("a receipt with a missing or mistyped field: ") + e.what());
  }
}

}  // namespace cohort
