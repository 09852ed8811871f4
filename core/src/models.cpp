#include "cohort/models.h"

#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace cohort {
namespace {

// Fashion-MNIST training-set pixel statistics (after scaling to [0, 1]).
constexpr double kPixelMean = 0.2860;
constexpr double kPixelStd = 0.3530;

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

Layout layout_of(const std::map<std::string, torch::Tensor>& sorted) {
  Layout layout;
  for (const auto& [name, tensor] : sorted) {
    layout.tensors.push_back(TensorSpec{name, DType::kFloat32, tensor.sizes().vec()});
  }
  return layout;
}

}  // namespace

struct Model::Impl {
  std::string name;
  std::shared_ptr<torch::nn::Module> module;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  std::vector<torch::Tensor> params;  // canonical order
  Layout layout;
  torch::Device device = torch::kCPU;
};

std::span<const std::string_view> model_names() { return kModelNames; }

Result<ModelInput> model_input(std::string_view model_name) {
  if (std::ranges::find(kModelNames, model_name) == std::end(kModelNames)) return unknown_model(model_name);
  return kBuiltinModelInput;
}

Status check_fits(const LabeledImages& data, const ModelInput& input, std::string_view model, const IdxFiles& files) {
  if (data.count == 0) return Status::invalid_argument(files.images.string() + ": holds no samples");
  // "model 'mlp' takes", "the models take".
  const bool plural = model.ends_with('s');
  if (data.rows != input.rows || data.cols != input.cols) {
    return Status::invalid_argument(files.images.string() + ": the images are " + std::to_string(data.rows) + "x" +
                                    std::to_string(data.cols) + " pixels, but " + std::string(model) +
                                    (plural ? " take " : " takes ") +
                                    std::to_string(input.rows) + "x" + std::to_string(input.cols));
  }
  const auto bad = std::find_if(data.labels.begin(), data.labels.end(),
                                [&](uint8_t label) { return label >= input.classes; });
  if (bad == data.labels.end()) return Status();
  const std::string possessive = std::string(model) + (plural ? "'" : "'s");
  return Status::invalid_argument(files.labels.string() + ": label " + std::to_string(*bad) + " (sample " +
                                  std::to_string(bad - data.labels.begin()) + ") is outside " + possessive +
                                  " classes 0-" + std::to_string(input.classes - 1));
}

Result<std::unique_ptr<Model>> Model::create(std::string_view name, uint64_t seed) {
  auto impl = std::make_unique<Impl>();
  impl->name = std::string(name);
  if (name == "cnn") {
    auto net = std::make_shared<CnnImpl>();
    impl->forward = [net](const torch::Tensor& x) { return net->forward(x); };
    impl->module = net;
  } else if (name == "mlp" || name == "mlp-wide") {
    auto net = name == "mlp" ? std::make_shared<MlpImpl>(512, 256) : std::make_shared<MlpImpl>(1024, 256);
    impl->forward = [net](const torch::Tensor& x) { return net->forward(x); };
    impl->module = net;
  } else {
    return unknown_model(name);
  }
  init_uniform_fan_in(*impl->module, seed);
  std::map<std::string, torch::Tensor> sorted;
  for (auto& p : impl->module->named_parameters()) sorted.emplace(p.key(), p.value());
  impl->layout = layout_of(sorted);
  for (auto& [_, tensor] : sorted) impl->params.push_back(tensor);
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const std::string& Model::name() const { return impl_->name; }
const Layout& Model::layout() const { return impl_->layout; }
int64_t Model::parameter_count() const { return impl_->layout.numel(); }

at::Tensor Model::flat_parameters() const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  flat.reserve(impl_->params.size());
  for (const auto& p : impl_->params) flat.push_back(p.detach().reshape({-1}).to(torch::kCPU));
  return torch::cat(flat).to(torch::kFloat);
}

Status Model::set_flat_parameters(const at::Tensor& flat) {
  if (flat.dim() != 1 || flat.numel() != parameter_count()) {
    return Status::invalid_argument("expected " + std::to_string(parameter_count()) +
                                    " parameters for model '" + impl_->name + "', got " +
                                    std::to_string(flat.numel()));
  }
  torch::NoGradGuard no_grad;
  torch::Tensor source = flat.to(impl_->device, torch::kFloat);
  int64_t offset = 0;
  for (auto& p : impl_->params) {
    p.copy_(source.narrow(0, offset, p.numel()).view_as(p));
    offset += p.numel();
  }
  return Status();
}

std::vector<at::Tensor> Model::parameters() { return impl_->params; }

at::Tensor Model::forward(const at::Tensor& images) { return impl_->forward(images); }

void Model::set_training(bool training) { impl_->module->train(training); }

Result<at::Device> parse_device(std::string_view device) {
  try {
    torch::Device parsed{std::string(device)};
    if (parsed.is_cpu()) return parsed;
    if (!parsed.is_cuda()) {
      return Status::invalid_argument("unsupported device '" + std::string(device) +
                                      "' (expected cpu, cuda or cuda:N)");
    }
    if (!torch::cuda::is_available()) {
      return Status::unavailable("device '" + std::string(device) +
                                 "' requested but CUDA is not available on this machine");
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (parsed.has_index() && parsed.index() >= count) {
      return Status::unavailable("device '" + std::string(device) + "' requested but only " +
                                 std::to_string(count) + " CUDA device(s) exist");
    }
    return parsed;
  } catch (const c10::Error&) {
    return Status::invalid_argument("malformed device '" + std::string(device) +
                                    "' (expected cpu, cuda or cuda:N)");
  }
}

Status Model::to_device(std::string_view device) {
  COHORT_ASSIGN_OR_RETURN(at::Device parsed, parse_device(device));
  impl_->module->to(parsed);
  impl_->device = parsed;
  // Module::to moves parameters in place, but refresh our handles anyway.
  std::map<std::string, torch::Tensor> sorted;
  for (auto& p : impl_->module->named_parameters()) sorted.emplace(p.key(), p.value());
  impl_->params.clear();
  for (auto& [_, tensor] : sorted) impl_->params.push_back(tensor);
  return Status();
}

at::Device Model::device() const { return impl_->device; }

TensorDataset to_tensors(const LabeledImages& data) {
  TensorDataset out;
  auto pixels = torch::from_blob(const_cast<uint8_t*>(data.pixels.data()),
                                 {data.count, 1, data.rows, data.cols}, torch::kUInt8);
  out.images = pixels.to(torch::kFloat).div_(255.0).sub_(kPixelMean).div_(kPixelStd);
  out.labels = torch::from_blob(const_cast<uint8_t*>(data.labels.data()), {data.count},
                                torch::kUInt8)
                   .to(torch::kLong);
  return out;
}

Evaluation evaluate(Model& model, const TensorDataset& data, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  model.set_training(false);
  Evaluation out;
  double loss_sum = 0.0;
  int64_t correct = 0;
  for (int64_t start = 0; start < data.size(); start += batch_size) {
    int64_t n = std::min(batch_size, data.size() - start);
    auto images = data.images.narrow(0, start, n).to(model.device());
    auto labels = data.labels.narrow(0, start, n).to(model.device());
    auto logits = model.forward(images);
    loss_sum += torch::nn::functional::cross_entropy(
                    logits, labels,
                    torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                    .item<double>();
    correct += logits.argmax(1).eq(labels).sum().item<int64_t>();
  }
  out.samples = data.size();
  if (out.samples > 0) {
    out.accuracy = static_cast<double>(correct) / static_cast<double>(out.samples);
    out.loss = loss_sum / static_cast<double>(out.samples);
  }
  model.set_training(true);
  return out;
}

}  // namespace cohort
