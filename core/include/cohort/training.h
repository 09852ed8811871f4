// Local training: SGD on a shard of data from a given model. Workers train
// their tasks with it; the coordinator uses it to compute a root update on
// trusted data (FLTrust).
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

// SGD momentum buffers carried from one task to the next (one per
// parameter, canonical order); empty before the first task.
using MomentumBuffers = std::vector<at::Tensor>;

// Trains `model` in place on `shard` (tensors on the model's device) with
// SGD (momentum, weight decay) for planned_steps() steps. Batches are drawn
// by reshuffling the shard every epoch with Rng(seed). When `momentum` is
// given, training starts from its buffers (if any) and leaves the final
// buffers in it; otherwise momentum starts at zero.
// Errors: an empty shard, batch size 0, a non-finite loss.
Result<LocalTraining> train_locally(Model& model, const TensorDataset& shard,
                                    const Hyperparameters& hyper, uint64_t seed,
                                    MomentumBuffers* momentum = nullptr);

}  // namespace cohort
