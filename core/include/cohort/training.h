// Local training: SGD on a shard of data from a given model. Workers train
// their tasks with it; the coordinator uses it to compute a root update on
// trusted data (FLTrust) and to re-execute audited segments (proof of
// learning, proof_of_learning.h).
//
// Training is a pure function of (start parameters, start momentum, shard,
// hyperparameters, seed, step range): the batch of every step is fixed by
// the seed (batch_indices), so a verifier can replay any range of steps
// from a saved TrainingState and, with the same kernels, get the same bits.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "cohort/config.h"
#include "cohort/models.h"
#include "cohort/protocol.h"

namespace cohort {

struct LocalTraining {
  at::Tensor delta;     // trained minus start parameters, flat float32 on CPU
  TrainMetrics metrics;
  uint64_t samples_seen = 0;
};

// The hyperparameters a job's [training] section gives each task.
Hyperparameters hyperparameters_of(const TrainingSection& training);

// Number of SGD steps a task asks for on a shard of `shard_size` samples.
uint32_t planned_steps(const Hyperparameters& hyper, int64_t shard_size);

// SGD momentum buffers carried from one task to the next (one per tensor
// of the model's layout, canonical order; zeros for the tensors the
// optimizer does not step: buffers, frozen parameters); empty before the
// first task.
using MomentumBuffers = std::vector<at::Tensor>;

// Everything SGD carries from one step to the next.
struct TrainingState {
  at::Tensor parameters;  // flat float32 on CPU, the model's layout (parameters and float buffers)
  at::Tensor momentum;    // flat float32 on CPU, same length; undefined when hyper.momentum == 0
  uint64_t step = 0;      // SGD steps taken so far in this task
};

// The batch order. Epoch e = step / steps_per_epoch (steps_per_epoch =
// ceil(shard_size / batch_size)) is the permutation of [0, shard_size)
// drawn by Rng(seed).fork(e).shuffle; a step takes its consecutive slice of
// it (an epoch's last batch may be short). Any step is computed without
// replaying earlier epochs. A value type; not thread-safe (it caches the
// current epoch's permutation).
class BatchSchedule {
 public:
  // shard_size <= 0 or batch_size == 0 give empty batches.
  BatchSchedule(int64_t shard_size, uint32_t batch_size, uint64_t seed);

  uint64_t steps_per_epoch() const { return steps_per_epoch_; }
  // The shard indices of `step`; valid until the next call.
  std::span<const int64_t> indices(uint64_t step);

 private:
  int64_t shard_size_;
  int64_t batch_size_;
  uint64_t seed_;
  uint64_t steps_per_epoch_ = 0;
  uint64_t epoch_ = ~uint64_t{0};  // the epoch `order_` holds
  std::vector<int64_t> order_;
};

// The shard indices of SGD step `step` (BatchSchedule, uncached).
std::vector<int64_t> batch_indices(int64_t shard_size, uint32_t batch_size, uint64_t seed,
                                   uint64_t step);

// Process-wide: while on, SgdTrainer::run makes the calling thread's BLAS
// (MKL) single-threaded for its duration, whatever at::set_num_threads says
// (ATen's own kernels keep their threads). MKL splits some small products
// (a 10-class layer at batch 4-8, its weight gradient at batch 32) into
// per-thread partial sums, so without this the bits depend on the thread
// count. use_deterministic_cpu_training() (proof_of_learning.h) turns it on.
// A no-op without MKL. Thread-safe.
void set_single_threaded_blas(bool on);
bool single_threaded_blas();

// SGD (torch::optim::SGD: momentum without dampening or Nesterov, weight
// decay added to the gradient) on `model`'s trainable tensors in place, one
// batch of the schedule per step. The forward pass of step s draws its
// random numbers (dropout) from Rng(seed).fork("dropout").fork(s)
// (Model::forward_seeded), so a re-execution of any step draws the same. Starts at step 0 from the model's current parameters
// with fresh momentum; load_state() moves it anywhere.
//
// Fresh momentum and an all-zero buffer are the same state: torch's first
// step clones the gradient into the buffer, and loading zeros leaves the
// buffer absent so that the same code path runs (bit-identical).
//
// A resource type: not copyable, not thread-safe; `model` and `shard` must
// outlive it and nothing else may train `model` meanwhile.
class SgdTrainer {
 public:
  SgdTrainer(Model& model, const TensorDataset& shard, const Hyperparameters& hyper, uint64_t seed);
  ~SgdTrainer();
  SgdTrainer(const SgdTrainer&) = delete;
  SgdTrainer& operator=(const SgdTrainer&) = delete;

  // Puts the parameters into the model, installs the momentum buffers
  // (undefined or all zeros: fresh) and sets the step. Errors
  // (InvalidArgument): parameters that are not 1-D with
  // model.parameter_count() values, momentum of another length, momentum
  // given to a task without momentum. The trainer is unchanged on error.
  Status load_state(const TrainingState& state);
  // A CPU float32 copy of the current state (momentum zeros while fresh).
  TrainingState state() const;

  // Installs per-parameter buffers (as MomentumBuffers; empty: fresh).
  // Errors (InvalidArgument): a count or shape that does not match.
  Status set_momentum_buffers(const MomentumBuffers& buffers);
  // The live per-parameter buffers; empty while fresh or without momentum.
  MomentumBuffers momentum_buffers() const;

  // Takes `steps` SGD steps. Errors: an empty shard (FailedPrecondition),
  // batch size 0 (InvalidArgument), a non-finite loss in these steps
  // (Internal; the model has been updated by then).
  Status run(uint64_t steps);

  uint64_t step() const;
  // Over the steps run by this trainer (0 before any).
  uint64_t samples_seen() const;
  double mean_loss() const;
  double accuracy() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Trains `model` in place on `shard` (tensors on the model's device) with
// SgdTrainer for planned_steps() steps from step 0. When `momentum` is
// given, training starts from its buffers (if any, and if they match the
// model) and leaves the final buffers in it; otherwise momentum starts
// fresh. Errors: an empty shard, batch size 0, a non-finite loss.
Result<LocalTraining> train_locally(Model& model, const TensorDataset& shard,
                                    const Hyperparameters& hyper, uint64_t seed,
                                    MomentumBuffers* momentum = nullptr);

}  // namespace cohort
