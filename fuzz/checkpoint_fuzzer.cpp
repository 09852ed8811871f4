// Fuzzes parse_checkpoint, the reader of the file a coordinator resumes from
// (a crash, a full disk or an operator's hand may have damaged it).
//
// Invariants: parsed parameters (and the previous aggregate, when stored)
// have as many values as the layout; the metrics line is empty or a JSON
// object (a resumed coordinator edits it); writing the checkpoint and parsing
// that gives back the same round, model, layout, parameters and round record.
#include <ATen/ATen.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "cohort/coordinator.h"
#include "cohort/crypto.h"
#include "fuzz_check.h"

namespace {

using namespace cohort;

bool same_layout(const Layout& a, const Layout& b) {
  if (a.tensors.size() != b.tensors.size()) return false;
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (a.tensors[i].name != b.tensors[i].name || a.tensors[i].shape != b.tensors[i].shape) return false;
  }
  return true;
}

// Bit for bit: NaN parameters (whose digest matches) must survive too.
bool same_tensor(const at::Tensor& a, const at::Tensor& b) {
  if (a.defined() != b.defined()) return false;
  if (!a.defined()) return true;
  return a.nbytes() == b.nbytes() && std::memcmp(a.data_ptr(), b.data_ptr(), a.nbytes()) == 0;
}

// The checkpoint as write_checkpoint stores it, read back as bytes.
std::string written_bytes(const Checkpoint& checkpoint) {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("cohort-checkpoint-fuzz-" + std::to_string(::getpid()));
  fuzz::check(write_checkpoint(path, checkpoint).ok(), "a parsed checkpoint can be written");
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  return bytes;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool crypto_ready = init_crypto().ok();
  fuzz::check(crypto_ready, "libsodium initialises");
  Result<Checkpoint> parsed =
      parse_checkpoint(std::string_view(reinterpret_cast<const char*>(data), size), "<fuzz>");
  if (!parsed.ok()) return 0;
  const int64_t numel = parsed->layout.numel();
  fuzz::check(parsed->flat.numel() == numel, "the parameters fill the layout");
  fuzz::check(!parsed->previous_aggregate.defined() || parsed->previous_aggregate.numel() == numel,
              "the previous aggregate fills the layout");
  fuzz::check(parsed->metrics_json.empty() || nlohmann::json::parse(parsed->metrics_json).is_object(),
              "the metrics line is an object");
  Result<Checkpoint> again = parse_checkpoint(written_bytes(*parsed), "<rewritten>");
  fuzz::check(again.ok(), "a parsed checkpoint, written again, parses");
  fuzz::check(again->round == parsed->round && again->model_name == parsed->model_name &&
                  same_layout(again->layout, parsed->layout) && again->digest == parsed->digest,
              "writing keeps the round, the model, the layout and the digest");
  fuzz::check(same_tensor(again->flat, parsed->flat) &&
                  same_tensor(again->previous_aggregate, parsed->previous_aggregate),
              "writing keeps the parameters and the previous aggregate");
  fuzz::check(again->job_name == parsed->job_name && again->job_seed == parsed->job_seed &&
                  again->workers == parsed->workers && again->settlement == parsed->settlement &&
                  again->metrics_json == parsed->metrics_json && again->test_accuracy == parsed->test_accuracy &&
                  again->test_loss == parsed->test_loss &&
                  again->carried_momentum == parsed->carried_momentum,
              "writing keeps the round record");
  return 0;
}
