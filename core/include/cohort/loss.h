// The training losses a job can choose ([training] loss; docs/CONFIG.md),
// without LibTorch's headers: the config and the wire name them, Model's
// training and evaluation (models.h: loss_of) compute them.
//
//   "cross-entropy"    the model's outputs are logits (the default)
//   "nll"              the outputs are log-probabilities (a model ending in
//                      log_softmax): negative log-likelihood of the label
//   "mse"              mean squared error against the one-hot label
//   "bce-with-logits"  binary cross-entropy of sigmoid(outputs) against the
//                      one-hot label
//
// Every one of them takes [B, classes] outputs and class labels, so the
// evaluation reports accuracy (the argmax) for all of them.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "cohort/status.h"

namespace cohort {

// Values match proto Loss; never renumber.
enum class LossKind : uint8_t { kCrossEntropy = 0, kNll = 1, kMse = 2, kBceWithLogits = 3 };

// "cross-entropy", "nll", "mse", "bce-with-logits", in enum order.
std::span<const std::string_view> loss_names();
std::string_view loss_name(LossKind kind);
// Errors: an unknown name (InvalidArgument, listing the known ones).
Result<LossKind> parse_loss(std::string_view name);

}  // namespace cohort
