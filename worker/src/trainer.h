// Local training: SGD on the worker's shard from the received model.
// Private to the worker library (the benchmark uses it too).
#pragma once

#include "cohort/models.h"
#include "cohort/protocol.h"

namespace cohort {

struct LocalTraining {
  at::Tensor delta;     // trained minus start parameters, flat float32 on CPU
  TrainMetrics metrics;
  uint64_t samples_seen = 0;
};

// Number of SGD steps a task asks for on a shard of `shard_size` samples.
uint32_t planned_steps(const Hyperparameters& hyper, int64_t shard_size);

// Trains `model` in place on `shard` (tensors on the model's device) with
// SGD (momentum, weight decay) for planned_steps() steps. Batches are drawn
// by reshuffling the shard every epoch with Rng(seed).
// Errors: an empty shard, batch size 0, a non-finite loss.
Result<LocalTraining> train_locally(Model& model, const TensorDataset& shard,
                                    const Hyperparameters& hyper, uint64_t seed);

}  // namespace cohort
