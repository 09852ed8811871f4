// A tiny training task for proof-of-learning tests, shared by the core and
// worker test binaries: 96 synthetic 28x28 images whose class shows in their
// brightness, trained with batches of 8 and SGD with momentum.
#pragma once

#include <ATen/ATen.h>

#include "cohort/models.h"
#include "cohort/protocol.h"

namespace cohort {

inline TensorDataset synthetic_shard() {
  at::Generator gen = at::detail::createCPUGenerator(99);
  at::Tensor labels = at::arange(96, at::kLong).remainder(10);
  at::Tensor images = at::randn({96, 1, 28, 28}, gen) * 0.5 + labels.to(at::kFloat).view({96, 1, 1, 1}) * 0.2;
  return TensorDataset{images, labels};
}

inline Hyperparameters synthetic_hyper(uint32_t steps) {
  Hyperparameters hyper;
  hyper.local_steps = steps;
  hyper.batch_size = 8;
  hyper.learning_rate = 0.05;
  hyper.momentum = 0.9;
  hyper.weight_decay = 1e-4;
  return hyper;
}

}  // namespace cohort
