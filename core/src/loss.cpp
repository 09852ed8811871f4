#include "cohort/loss.h"

#include <string>

namespace cohort {
namespace {

constexpr std::string_view kLossNames[] = {"cross-entropy", "nll", "mse", "bce-with-logits"};

}  // namespace

std::span<const std::string_view> loss_names() { return kLossNames; }

std::string_view loss_name(LossKind kind) { return kLossNames[static_cast<size_t>(kind)]; }

Result<LossKind> parse_loss(std::string_view name) {
  std::string known;
  for (size_t i = 0; i < std::size(kLossNames); ++i) {
    if (kLossNames[i] == name) return static_cast<LossKind>(i);
    known += (i ? ", " : "") + std::string(kLossNames[i]);
  }
  return Status::invalid_argument("unknown loss '" + std::string(name) + "' (known: " + known + ")");
}

}  // namespace cohort
