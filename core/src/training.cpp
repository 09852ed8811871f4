#include "cohort/training.h"

#include <torch/torch.h>

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <numeric>
#include <string>

#include "cohort/random.h"

namespace cohort {
namespace {

std::atomic<bool> g_single_threaded_blas{false};

// MKL's thread-local thread count (MKL_Set_Num_Threads_Local: returns the
// previous value, 0 meaning "the global one"), looked up at run time so that
// builds without MKL work unchanged.
using SetLocalThreads = int (*)(int);
SetLocalThreads mkl_set_local_threads() {
  static const auto fn = reinterpret_cast<SetLocalThreads>(dlsym(RTLD_DEFAULT, "MKL_Set_Num_Threads_Local"));
  return fn;
}

// ATen sets up a thread's thread counts on its first parallel region
// (at::init_num_threads), and that sets MKL's thread-local count too. On a
// thread that never ran one (a verifier's), the first step's first
// parallel region would undo the count set here, and MKL would run the
// rest of the task multi-threaded, moving the last bits. at::get_num_threads
// does ATen's set-up for the calling thread, so it comes first.
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() : set_(g_single_threaded_blas.load() ? mkl_set_local_threads() : nullptr) {
    if (set_ == nullptr) return;
    (void)at::get_num_threads();
    previous_ = set_(1);
  }
  ~SingleThreadedBlas() {
    if (set_ != nullptr) set_(previous_);
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  SetLocalThreads set_;
  int previous_ = 0;
};

}  // namespace

void set_single_threaded_blas(bool on) { g_single_threaded_blas.store(on); }
bool single_threaded_blas() { return g_single_threaded_blas.load(); }

Hyperparameters hyperparameters_of(const TrainingSection& training) {
  Hyperparameters hyper;
  hyper.local_steps = static_cast<uint32_t>(training.local_steps);
  hyper.local_epochs = training.local_epochs;
  hyper.batch_size = static_cast<uint32_t>(training.batch_size);
  hyper.learning_rate = training.learning_rate;
  hyper.momentum = training.momentum;
  hyper.weight_decay = training.weight_decay;
  hyper.keep_momentum = training.keep_momentum;
  // The config's reader accepts only known names.
  hyper.loss = parse_loss(training.loss).value();
  return hyper;
}

uint32_t planned_steps(const Hyperparameters& hyper, int64_t shard_size) {
  if (hyper.local_steps > 0) return hyper.local_steps;
  const double epochs = hyper.local_epochs > 0.0 ? hyper.local_epochs : 1.0;
  const double batches_per_epoch =
      std::ceil(static_cast<double>(shard_size) / std::max<uint32_t>(hyper.batch_size, 1));
  return static_cast<uint32_t>(std::max(1.0, std::round(epochs * batches_per_epoch)));
}

BatchSchedule::BatchSchedule(int64_t shard_size, uint32_t batch_size, uint64_t seed)
    : shard_size_(std::max<int64_t>(shard_size, 0)), batch_size_(batch_size), seed_(seed) {
  if (shard_size_ > 0 && batch_size_ > 0) {
    steps_per_epoch_ = static_cast<uint64_t>((shard_size_ + batch_size_ - 1) / batch_size_);
  }
}

std::span<const int64_t> BatchSchedule::indices(uint64_t step) {
  if (steps_per_epoch_ == 0) return {};
  const uint64_t epoch = step / steps_per_epoch_;
  if (epoch != epoch_) {
    order_.resize(static_cast<size_t>(shard_size_));
    std::iota(order_.begin(), order_.end(), int64_t{0});
    Rng(seed_).fork(epoch).shuffle(std::span<int64_t>(order_));
    epoch_ = epoch;
  }
  const int64_t begin = static_cast<int64_t>(step % steps_per_epoch_) * batch_size_;
  const int64_t count = std::min(batch_size_, shard_size_ - begin);
  return std::span<const int64_t>(order_).subspan(static_cast<size_t>(begin), static_cast<size_t>(count));
}

std::vector<int64_t> batch_indices(int64_t shard_size, uint32_t batch_size, uint64_t seed, uint64_t step) {
  BatchSchedule schedule(shard_size, batch_size, seed);
  const std::span<const int64_t> batch = schedule.indices(step);
  return {batch.begin(), batch.end()};
}

// The stream of the task's seed that dropout's draws come from, forked
// once more per step (Model::forward_seeded): "dropout" in ASCII.
constexpr uint64_t kDropoutStream = 0x64726f706f7574;

// The tensors the optimizer trains: parameters that require grad. Buffers
// and frozen parameters are in the state (and its momentum, as zeros) but
// never stepped.
std::vector<torch::Tensor> trained_tensors(Model& model) {
  std::vector<torch::Tensor> out;
  const std::vector<torch::Tensor> all = model.parameters();
  for (size_t i = 0; i < all.size(); ++i) {
    if (model.trainable()[i]) out.push_back(all[i]);
  }
  return out;
}

struct SgdTrainer::Impl {
  Impl(Model& m, const TensorDataset& s, const Hyperparameters& h, uint64_t seed)
      : model(m),
        shard(s),
        hyper(h),
        schedule(s.size(), h.batch_size, seed),
        dropout_seeds(Rng(seed).fork(kDropoutStream)),
        params(m.parameters()),
        trainable(m.trainable()),
        optimizer(trained_tensors(m), torch::optim::SGDOptions(h.learning_rate)
                                          .momentum(h.momentum)
                                          .weight_decay(h.weight_decay)) {
    const auto options = torch::TensorOptions().device(m.device());
    loss_sum = torch::zeros({}, options);
    correct = torch::zeros({}, options.dtype(torch::kLong));
  }

  // The optimizer keys its state by each parameter's TensorImpl.
  torch::optim::SGDParamState* buffer_state(size_t i) const {
    if (!trainable[i]) return nullptr;
    auto& states = const_cast<torch::optim::SGD&>(optimizer).state();
    auto it = states.find(params[i].unsafeGetTensorImpl());
    return it == states.end() ? nullptr : static_cast<torch::optim::SGDParamState*>(it->second.get());
  }

  bool fresh() const {
    for (size_t i = 0; i < params.size(); ++i) {
      if (trainable[i] && buffer_state(i) == nullptr) return true;
    }
    return false;
  }

  // Installs one buffer per parameter (already checked), or none at all
  // when every value is zero: torch's first step then clones the gradient,
  // exactly as for a task that starts without momentum.
  void install_momentum(const std::vector<torch::Tensor>& buffers) {
    optimizer.state().clear();
    bool all_zero = true;
    for (const auto& b : buffers) all_zero = all_zero && !b.ne(0).any().item<bool>();
    if (all_zero) return;
    for (size_t i = 0; i < params.size(); ++i) {
      if (!trainable[i]) continue;
      auto state = std::make_unique<torch::optim::SGDParamState>();
      state->momentum_buffer(buffers[i].detach().to(params[i].device(), params[i].scalar_type()).clone());
      optimizer.state()[params[i].unsafeGetTensorImpl()] = std::move(state);
    }
  }

  Model& model;
  const TensorDataset& shard;
  Hyperparameters hyper;
  BatchSchedule schedule;
  Rng dropout_seeds;                  // fork(step): the seed of one step's draws
  std::vector<torch::Tensor> params;  // the model's live tensors, canonical order
  std::vector<bool> trainable;        // per tensor of params
  torch::optim::SGD optimizer;
  uint64_t step = 0;
  // Accumulated on the device so that the loop never waits for a .item().
  torch::Tensor loss_sum;
  torch::Tensor correct;
  uint64_t seen = 0;
};

SgdTrainer::SgdTrainer(Model& model, const TensorDataset& shard, const Hyperparameters& hyper,
                       uint64_t seed)
    : impl_(std::make_unique<Impl>(model, shard, hyper, seed)) {}

SgdTrainer::~SgdTrainer() = default;

Status SgdTrainer::load_state(const TrainingState& state) {
  const int64_t count = impl_->model.parameter_count();
  if (!state.parameters.defined() || state.parameters.dim() != 1 || state.parameters.numel() != count) {
    return Status::invalid_argument(
        "training state: expected " + std::to_string(count) + " parameters for model '" +
        impl_->model.name() + "', got " +
        (state.parameters.defined() ? std::to_string(state.parameters.numel()) : std::string("none")));
  }
  std::vector<torch::Tensor> buffers;
  if (state.momentum.defined()) {
    if (impl_->hyper.momentum == 0.0) {
      return Status::invalid_argument("training state carries momentum but the task has none");
    }
    if (state.momentum.dim() != 1 || state.momentum.numel() != count) {
      return Status::invalid_argument("training state: expected " + std::to_string(count) +
                                      " momentum values, got " + std::to_string(state.momentum.numel()));
    }
    const torch::Tensor flat = state.momentum.to(torch::kFloat);
    int64_t offset = 0;
    for (const auto& p : impl_->params) {
      buffers.push_back(flat.narrow(0, offset, p.numel()).view(p.sizes()));
      offset += p.numel();
    }
  }
  COHORT_RETURN_IF_ERROR(impl_->model.set_flat_parameters(state.parameters));
  if (buffers.empty()) {
    impl_->optimizer.state().clear();
  } else {
    impl_->install_momentum(buffers);
  }
  impl_->step = state.step;
  return Status();
}

TrainingState SgdTrainer::state() const {
  TrainingState out;
  out.parameters = impl_->model.flat_parameters();
  out.step = impl_->step;
  if (impl_->hyper.momentum != 0.0) {
    if (impl_->fresh()) {
      out.momentum = torch::zeros({out.parameters.numel()}, torch::kFloat);
    } else {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> flat;
      for (const torch::Tensor& buffer : momentum_buffers()) {
        flat.push_back(buffer.detach().reshape({-1}).to(torch::kCPU));
      }
      out.momentum = torch::cat(flat).to(torch::kFloat);
    }
  }
  return out;
}

Status SgdTrainer::set_momentum_buffers(const MomentumBuffers& buffers) {
  if (buffers.empty()) {
    impl_->optimizer.state().clear();
    return Status();
  }
  if (buffers.size() != impl_->params.size()) {
    return Status::invalid_argument("expected " + std::to_string(impl_->params.size()) +
                                    " momentum buffers, got " + std::to_string(buffers.size()));
  }
  for (size_t i = 0; i < buffers.size(); ++i) {
    if (!buffers[i].defined() || buffers[i].sizes() != impl_->params[i].sizes()) {
      return Status::invalid_argument("momentum buffer " + std::to_string(i) + " does not match its parameter");
    }
  }
  if (impl_->hyper.momentum == 0.0) return Status();  // SGD without momentum never reads them
  impl_->install_momentum(buffers);
  return Status();
}

MomentumBuffers SgdTrainer::momentum_buffers() const {
  if (impl_->fresh()) return {};
  MomentumBuffers out;
  for (size_t i = 0; i < impl_->params.size(); ++i) {
    // Tensors the optimizer does not step keep zero momentum.
    out.push_back(impl_->trainable[i] ? impl_->buffer_state(i)->momentum_buffer()
                                      : torch::zeros(impl_->params[i].sizes(), impl_->params[i].options().dtype(torch::kFloat)));
  }
  return out;
}

Status SgdTrainer::run(uint64_t steps) {
  Impl& s = *impl_;
  if (s.shard.size() == 0) return Status::failed_precondition("the local shard is empty");
  if (s.hyper.batch_size == 0) return Status::invalid_argument("batch size must be >= 1");
  s.model.set_training(true);
  const SingleThreadedBlas blas;
  const torch::Device device = s.model.device();
  torch::Tensor run_loss = torch::zeros({}, torch::TensorOptions().device(device));
  for (uint64_t i = 0; i < steps; ++i) {
    const std::span<const int64_t> batch = s.schedule.indices(s.step);
    const auto n = static_cast<int64_t>(batch.size());
    torch::Tensor index =
        torch::from_blob(const_cast<int64_t*>(batch.data()), {n}, torch::kLong).to(device);
    torch::Tensor images = s.shard.images.index_select(0, index);
    torch::Tensor labels = s.shard.labels.index_select(0, index);
    s.optimizer.zero_grad();
    torch::Tensor logits = s.model.forward_seeded(images, s.dropout_seeds.fork(s.step).next_u64());
    torch::Tensor loss = loss_of(logits, labels, s.hyper.loss);
    loss.backward();
    s.optimizer.step();
    torch::NoGradGuard no_grad;
    run_loss += loss.detach() * n;
    s.correct += logits.argmax(1).eq(labels).sum();
    s.seen += static_cast<uint64_t>(n);
    ++s.step;
  }
  s.loss_sum += run_loss;
  if (steps > 0 && !std::isfinite(run_loss.item<double>())) {
    return Status::internal("training diverged: the local loss is not finite");
  }
  return Status();
}

uint64_t SgdTrainer::step() const { return impl_->step; }
uint64_t SgdTrainer::samples_seen() const { return impl_->seen; }

double SgdTrainer::mean_loss() const {
  if (impl_->seen == 0) return 0.0;
  return impl_->loss_sum.item<double>() / static_cast<double>(impl_->seen);
}

double SgdTrainer::accuracy() const {
  if (impl_->seen == 0) return 0.0;
  return static_cast<double>(impl_->correct.item<int64_t>()) / static_cast<double>(impl_->seen);
}

Result<LocalTraining> train_locally(Model& model, const TensorDataset& shard,
                                    const Hyperparameters& hyper, uint64_t seed,
                                    MomentumBuffers* momentum) {
  if (shard.size() == 0) return Status::failed_precondition("the local shard is empty");
  if (hyper.batch_size == 0) return Status::invalid_argument("batch size must be >= 1");
  const auto start_time = std::chrono::steady_clock::now();
  const at::Tensor start = model.flat_parameters();

  SgdTrainer trainer(model, shard, hyper, seed);
  if (momentum != nullptr) {
    // Buffers that do not match the model (or none yet) leave momentum fresh.
    const Status restored = trainer.set_momentum_buffers(*momentum);
    static_cast<void>(restored);
  }
  const uint32_t steps = planned_steps(hyper, shard.size());
  COHORT_RETURN_IF_ERROR(trainer.run(steps));
  if (momentum != nullptr) *momentum = trainer.momentum_buffers();

  LocalTraining out;
  out.samples_seen = trainer.samples_seen();
  out.metrics.steps = steps;
  out.metrics.local_loss = trainer.mean_loss();
  out.metrics.local_accuracy = trainer.accuracy();
  out.delta = model.flat_parameters() - start;
  out.metrics.train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_time).count();
  return out;
}

}  // namespace cohort
