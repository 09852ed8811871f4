// What a round does with its workers and their updates, in the spirit of
// Flower's Strategy: which workers take part, and how the round's accepted
// updates move the global model. The coordinator runs the rounds (for
// `cohort coordinator` and `cohort simulate` alike); a RoundPolicy decides.
//
// make_round_policy() builds a job's policy from its config:
// - select: every candidate, or round.workers_per_round of them drawn by
//   Rng(job.seed).fork(round);
// - aggregate: needs round.min_updates rows; then the root update (the
//   policy's own training on its trusted samples, for FLTrust), the
//   pre-aggregators and the rule, with the seed Rng(job.seed).fork(round),
//   and the server step of aggregation.server_optimizer
//   (cohort/server_optimizer.h; "sgd": global += server_learning_rate *
//   aggregate);
// - with [attack] byzantine > 0, a decorator around that policy adds the
//   simulated Byzantine rows, computed from the honest ones and weighted
//   like an average honest row, before it aggregates.
//
// Not thread-safe: the caller's round loop owns it.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cohort/aggregation.h"
#include "cohort/config.h"
#include "cohort/log.h"
#include "cohort/models.h"
#include "cohort/server_optimizer.h"
#include "cohort/status.h"

namespace cohort {

// A round's accepted updates, in worker order.
struct RoundUpdates {
  uint32_t round = 0;
  std::vector<at::Tensor> rows;  // flat float32 deltas
  std::vector<double> weights;   // samples each was trained on
};

// What aggregating a round did.
struct RoundStep {
  bool model_updated = false;  // false: too few updates; the model stays as it was
  std::vector<double> row_weights;  // each honest row's weight in the aggregate
  int byzantine = 0;                // simulated Byzantine rows added ([attack])
  double byzantine_weight = 0.0;    // their share of the aggregate
};

// What a policy carries from round to round, which the checkpoint keeps.
struct PolicyState {
  // The last aggregate (centered clipping starts there); undefined when none.
  at::Tensor previous_aggregate;
  ServerOptimizerState server;  // the server optimizer's steps and buffers
};

class RoundPolicy {
 public:
  virtual ~RoundPolicy() = default;

  // Which of `candidates` (worker indices, ascending) take part in `round`,
  // ascending.
  virtual std::vector<uint32_t> select(uint32_t round, std::vector<uint32_t> candidates) const = 0;

  // Moves `global` (flat float32, changed in place) by the round's updates.
  // An error (a failed rule, attack or root update) leaves `global` as it
  // was.
  virtual Result<RoundStep> aggregate(const RoundUpdates& updates, at::Tensor& global) = 0;

  // The state carried to the next round, and its restoration on resume.
  // Errors: a server optimizer state that is not this policy's
  // (InvalidArgument).
  virtual PolicyState state() const = 0;
  virtual Status restore(PolicyState state) = 0;

  // "clip -> trimmed-mean", then the server step unless it is plain sgd
  // with rate 1, and the attack when there is one.
  virtual std::string description() const = 0;
};

// The trusted samples a root update trains on (aggregation.root_samples);
// empty when the job has none.
struct RootSamples {
  TensorDataset data;
  ModelSource model;  // what the job trains
};

// The job's policy. `buffers` (bool, one per coordinate of the model, or
// undefined when it has none) marks the coordinates that are not trained
// (a TorchScript model's BatchNorm statistics, docs/MODELS.md): they take
// the aggregate as it is, whatever the server optimizer, so that an
// adaptive server step never drives a running variance below zero.
// Errors: an unknown rule, pre-aggregator, attack or server optimizer, or
// a bad parameter (as the rule registry, make_attack and
// make_server_optimizer report them).
Result<std::unique_ptr<RoundPolicy>> make_round_policy(const JobConfig& job, const RuleRegistry& rules,
                                                       RootSamples root, at::Tensor buffers = {});

}  // namespace cohort
