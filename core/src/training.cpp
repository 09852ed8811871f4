#include "cohort/training.h"

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <numeric>

#include "cohort/random.h"

namespace cohort {
namespace {

// Serves batches of shard indices, reshuffling at the start of every epoch.
class BatchSampler {
 public:
  BatchSampler(int64_t shard_size, int64_t batch_size, uint64_t seed, torch::Device device)
      : order_(shard_size), batch_size_(batch_size), rng_(seed), device_(device) {
    std::iota(order_.begin(), order_.end(), 0);
  }

  torch::Tensor next() {
    if (cursor_ == 0) rng_.shuffle(std::span<int64_t>(order_));
    const int64_t n = std::min<int64_t>(batch_size_, static_cast<int64_t>(order_.size()) - cursor_);
    torch::Tensor batch = torch::from_blob(order_.data() + cursor_, {n}, torch::kLong).to(device_);
    cursor_ += n;
    if (cursor_ >= static_cast<int64_t>(order_.size())) cursor_ = 0;
    return batch;
  }

 private:
  std::vector<int64_t> order_;
  int64_t batch_size_;
  int64_t cursor_ = 0;
  Rng rng_;
  torch::Device device_;
};

// The optimizer keys its state by each parameter's TensorImpl.
void restore_momentum(torch::optim::SGD& optimizer, const std::vector<torch::Tensor>& params,
                      const MomentumBuffers& buffers) {
  if (buffers.size() != params.size()) return;
  for (size_t i = 0; i < params.size(); ++i) {
    auto state = std::make_unique<torch::optim::SGDParamState>();
    state->momentum_buffer(buffers[i].clone());
    optimizer.state()[params[i].unsafeGetTensorImpl()] = std::move(state);
  }
}

MomentumBuffers saved_momentum(torch::optim::SGD& optimizer, const std::vector<torch::Tensor>& params) {
  MomentumBuffers buffers;
  for (const auto& p : params) {
    auto it = optimizer.state().find(p.unsafeGetTensorImpl());
    if (it == optimizer.state().end()) return {};
    buffers.push_back(static_cast<torch::optim::SGDParamState&>(*it->second).momentum_buffer());
  }
  return buffers;
}

}  // namespace

uint32_t planned_steps(const Hyperparameters& hyper, int64_t shard_size) {
  if (hyper.local_steps > 0) return hyper.local_steps;
  const double epochs = hyper.local_epochs > 0.0 ? hyper.local_epochs : 1.0;
  const double batches_per_epoch =
      std::ceil(static_cast<double>(shard_size) / std::max<uint32_t>(hyper.batch_size, 1));
  return static_cast<uint32_t>(std::max(1.0, std::round(epochs * batches_per_epoch)));
}

Result<LocalTraining> train_locally(Model& model, const TensorDataset& shard,
                                    const Hyperparameters& hyper, uint64_t seed,
                                    MomentumBuffers* momentum) {
  if (shard.size() == 0) return Status::failed_precondition("the local shard is empty");
  if (hyper.batch_size == 0) return Status::invalid_argument("batch size must be >= 1");
  const auto start_time = std::chrono::steady_clock::now();
  const at::Tensor start = model.flat_parameters();

  const std::vector<torch::Tensor> params = model.parameters();
  torch::optim::SGD optimizer(params, torch::optim::SGDOptions(hyper.learning_rate)
                                          .momentum(hyper.momentum)
                                          .weight_decay(hyper.weight_decay));
  if (momentum != nullptr) restore_momentum(optimizer, params, *momentum);
  BatchSampler sampler(shard.size(), hyper.batch_size, seed, model.device());
  model.set_training(true);

  const uint32_t steps = planned_steps(hyper, shard.size());
  // Accumulated on the device so that the loop never waits for a .item().
  torch::Tensor loss_sum = torch::zeros({}, torch::TensorOptions().device(model.device()));
  torch::Tensor correct = torch::zeros({}, torch::TensorOptions().device(model.device()).dtype(torch::kLong));
  uint64_t seen = 0;
  for (uint32_t step = 0; step < steps; ++step) {
    torch::Tensor index = sampler.next();
    torch::Tensor images = shard.images.index_select(0, index);
    torch::Tensor labels = shard.labels.index_select(0, index);
    optimizer.zero_grad();
    torch::Tensor logits = model.forward(images);
    torch::Tensor loss = torch::nn::functional::cross_entropy(logits, labels);
    loss.backward();
    optimizer.step();
    torch::NoGradGuard no_grad;
    loss_sum += loss.detach() * index.size(0);
    correct += logits.argmax(1).eq(labels).sum();
    seen += static_cast<uint64_t>(index.size(0));
  }

  if (momentum != nullptr) *momentum = saved_momentum(optimizer, params);
  LocalTraining out;
  out.samples_seen = seen;
  out.metrics.steps = steps;
  out.metrics.local_loss = loss_sum.item<double>() / static_cast<double>(seen);
  out.metrics.local_accuracy = static_cast<double>(correct.item<int64_t>()) / static_cast<double>(seen);
  if (!std::isfinite(out.metrics.local_loss)) {
    return Status::internal("training diverged: the local loss is not finite");
  }
  out.delta = model.flat_parameters() - start;
  out.metrics.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return out;
}

}  // namespace cohort
