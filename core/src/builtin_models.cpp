// The built-in models (cohort/models.h lists them) as LibTorch C++ modules.
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <functional>

#include "cohort/model_names.h"
#include "model_backend.h"

namespace cohort {
namespace {

struct CnnImpl : torch::nn::Module {
  CnnImpl()
      : conv1(register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 20, 5)))),
        conv2(register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(20, 50, 5)))),
        fc1(register_module("fc1", torch::nn::Linear(800, 500))),
        fc2(register_module("fc2", torch::nn::Linear(500, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(conv1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(conv2->forward(x)), 2);
    x = torch::relu(fc1->forward(x.flatten(1)));
    return fc2->forward(x);
  }

  torch::nn::Conv2d conv1, conv2;
  torch::nn::Linear fc1, fc2;
};

// 784 -> hidden1 -> hidden2 -> 10 with ReLUs: "mlp" is 512, 256 (535,818
// parameters); "mlp-wide" 1024, 256 (1,068,810: the 1M-parameter model of
// the coordinator's load benchmark).
struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t hidden1, int64_t hidden2)
      : fc1(register_module("fc1", torch::nn::Linear(784, hidden1))),
        fc2(register_module("fc2", torch::nn::Linear(hidden1, hidden2))),
        fc3(register_module("fc3", torch::nn::Linear(hidden2, 10))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(fc1->forward(x.flatten(1)));
    x = torch::relu(fc2->forward(x));
    return fc3->forward(x);
  }

  torch::nn::Linear fc1, fc2, fc3;
};

// PyTorch's default init for Linear and Conv2d is uniform in
// +-1/sqrt(fan_in) for weights (kaiming_uniform with a = sqrt(5)) and biases
// alike; we draw it from a seeded generator of our own.
void init_uniform_fan_in(torch::nn::Module& module, uint64_t seed) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  torch::NoGradGuard no_grad;
  for (auto& child : module.children()) {
    auto params = child->named_parameters(/*recurse=*/false);
    if (!params.contains("weight")) continue;
    const torch::Tensor& weight = params["weight"];
    const double fan_in = static_cast<double>(weight.numel() / weight.size(0));
    const double bound = 1.0 / std::sqrt(fan_in);
    for (auto& p : params) p.value().uniform_(-bound, bound, gen);
  }
}

// The list model_names() returns (cohort/model_names.h).
constexpr std::string_view kModelNames[] = {"cnn", "mlp", "mlp-wide"};

// "unknown model 'resnet' (known: cnn, mlp, mlp-wide)".
Status unknown_model(std::string_view name) {
  std::string known;
  for (std::string_view model : kModelNames) {
    if (!known.empty()) known += ", ";
    known += model;
  }
  return Status::invalid_argument("unknown model '" + std::string(name) + "' (known: " + known + ")");
}

// A built-in module: parameters only, no buffers, no randomness.
class BuiltinBackend final : public ModelBackend {
 public:
  template <typename Net>
  explicit BuiltinBackend(std::shared_ptr<Net> net)
      : module_(net), forward_([net](const torch::Tensor& x) { return net->forward(x); }) {}

  std::vector<NamedTensor> named_state() override {
    std::vector<NamedTensor> out;
    for (auto& p : module_->named_parameters()) out.push_back({p.key(), p.value(), /*trainable=*/true});
    return out;
  }
  torch::Tensor forward(const torch::Tensor& inputs) override { return forward_(inputs); }
  void set_training(bool training) override { module_->train(training); }
  void to(const torch::Device& device) override { module_->to(device); }
  bool draws_random_numbers() const override { return false; }

  torch::nn::Module& module() { return *module_; }

 private:
  std::shared_ptr<torch::nn::Module> module_;
  std::function<torch::Tensor(const torch::Tensor&)> forward_;
};

}  // namespace

std::span<const std::string_view> model_names() { return kModelNames; }

Result<std::unique_ptr<ModelBackend>> make_builtin_backend(std::string_view name, uint64_t seed) {
  std::unique_ptr<BuiltinBackend> backend;
  if (name == "cnn") {
    backend = std::make_unique<BuiltinBackend>(std::make_shared<CnnImpl>());
  } else if (name == "mlp" || name == "mlp-wide") {
    backend = std::make_unique<BuiltinBackend>(name == "mlp" ? std::make_shared<MlpImpl>(512, 256)
                                                             : std::make_shared<MlpImpl>(1024, 256));
  } else {
    return unknown_model(name);
  }
  init_uniform_fan_in(backend->module(), seed);
  return std::unique_ptr<ModelBackend>(std::move(backend));
}

}  // namespace cohort
