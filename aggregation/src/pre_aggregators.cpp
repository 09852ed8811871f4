// Registers the pre-aggregators and holds the steps they share.
#include "pre_aggregators.h"

#include <ATen/ATen.h>

#include <string>

#include "rules.h"

namespace cohort {
namespace {

// The composition of this step with the ones before it (undefined mixing
// means the identity).
at::Tensor compose_mixing(const at::Tensor& step, const at::Tensor& previous) {
  return previous.defined() ? at::matmul(step, previous) : step;
}

}  // namespace

Status check_pre_stack(std::string_view step, const UpdateStack& stack) {
  Status status = check_update_stack(stack.rows, stack.weights);
  if (!status.ok()) return status.with_context(step);
  if (stack.mixing.defined() &&
      (stack.mixing.dim() != 2 || stack.mixing.size(0) != stack.rows.size(0))) {
    return Status::invalid_argument(std::string(step) + ": the mixing matrix must have one row per update");
  }
  return Status();
}

Status check_f_nonnegative(std::string_view step, int f) {
  if (f >= 0) return Status();
  return Status::invalid_argument(std::string(step) + " needs f >= 0, got f=" + std::to_string(f));
}

Status check_f_below_n(std::string_view step, int f, int64_t n) {
  if (f < n) return Status();
  return Status::failed_precondition(std::string(step) + " needs f < n, got n=" + std::to_string(n) +
                                     ", f=" + std::to_string(f));
}

UpdateStack mix_rows(UpdateStack stack, const at::Tensor& step, std::vector<double> weights) {
  stack.rows = at::matmul(step.to(stack.rows.device(), stack.rows.scalar_type()), stack.rows);
  stack.mixing = compose_mixing(step, stack.mixing);
  stack.weights = std::move(weights);
  return stack;
}

at::Tensor row_norms(const at::Tensor& rows) { return at::linalg_vector_norm(rows, 2, {1}); }

UpdateStack clip_rows_to_norm(UpdateStack stack, const at::Tensor& norms, const at::Tensor& bound) {
  // where() rather than min(1, bound / norm): a zero row would give 0/0.
  at::Tensor factors = at::where(norms > bound, bound / norms, at::ones_like(norms));
  stack.rows = stack.rows * factors.unsqueeze(1);
  stack.mixing = compose_mixing(at::diag(factors.to(at::kCPU, at::kDouble)), stack.mixing);
  return stack;
}

void register_pre_aggregators(RuleRegistry& registry) {
  registry.add_pre("clip", make_clip);
  registry.add_pre("nnm", make_nnm);
  registry.add_pre("bucketing", make_bucketing);
  registry.add_pre("arc", make_arc);
}

}  // namespace cohort
