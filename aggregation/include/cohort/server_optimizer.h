// The server step: how a round's aggregate moves the global model. The
// aggregate of the workers' deltas is the pseudo-gradient's negative,
// Delta_t = aggregate(updates), and with learning rate eta
// (aggregation.server_learning_rate):
//
//   "sgd"       x += eta * Delta                        (FedAvg: eta = 1)
//   "momentum"  m = Delta at the first step, then beta * m + Delta;
//               x += eta * m                             (FedAvgM, Hsu et al.
//               2019, arXiv 1909.06335, as Flower's FedAvgM)
//   "adagrad"   m = beta1 * m + (1 - beta1) * Delta
//               v = v + Delta^2
//   "adam"      m as adagrad; v = beta2 * v + (1 - beta2) * Delta^2
//   "yogi"      m as adagrad; v = v - (1 - beta2) * Delta^2 * sign(v - Delta^2)
//               and for the three adaptive ones x += eta * m / (sqrt(v) + tau)
//
// The adaptive ones are Algorithm 2 of Reddi et al., "Adaptive Federated
// Optimization" (arXiv 2003.00295): m starts at 0, v at tau^2, and there is
// no bias correction (docs/AGGREGATION.md compares them with Flower's).
// Parameters (aggregation.server_params): `momentum` (beta, "momentum";
// default 0.9), `beta1` (0.9), `beta2` (0.99), `tau` (1e-3): betas in
// [0, 1), tau > 0. The state (m, v and the step count) is what a checkpoint
// keeps so that a restarted job goes on with the same steps. Pure tensor
// arithmetic on the global model's device and dtype; not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.h"

namespace cohort {

// What a server optimizer carries from round to round: its step count and
// its named buffers ("m", "v"; none for "sgd"), each shaped like the model.
struct ServerOptimizerState {
  uint64_t steps = 0;
  std::vector<std::pair<std::string, at::Tensor>> buffers;
};

class ServerOptimizer {
 public:
  virtual ~ServerOptimizer() = default;

  // The global model after one step with `aggregate` (1-D, like `global`):
  // a new tensor, so that a caller still sending the old model's bytes is
  // not written under. Errors: shapes that differ from each other or from
  // the state's (InvalidArgument).
  virtual Result<at::Tensor> step(const at::Tensor& global, const at::Tensor& aggregate) = 0;

  virtual ServerOptimizerState state() const = 0;
  // Goes on from `state` (a checkpoint's). Errors: buffers that are not
  // this optimizer's or not 1-D float tensors of one length
  // (InvalidArgument).
  virtual Status restore(ServerOptimizerState state) = 0;

  // "adam(lr=1, beta1=0.9, beta2=0.99, tau=0.001)".
  virtual std::string description() const = 0;
};

// Errors (InvalidArgument): an unknown name (listing the known ones), a
// parameter the optimizer does not take, a value out of range or not a
// number.
Result<std::unique_ptr<ServerOptimizer>> make_server_optimizer(std::string_view name, double learning_rate,
                                                               const std::map<std::string, std::string>& params);

}  // namespace cohort
