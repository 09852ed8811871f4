#include "cohort/models.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "model_backend.h"

namespace cohort {
namespace {

// Fashion-MNIST training-set pixel statistics (after scaling to [0, 1]).
constexpr double kPixelMean = 0.2860;
constexpr double kPixelStd = 0.3530;

// "[8, 1, 28, 28]".
std::string shape_text(at::IntArrayRef sizes) {
  std::string out = "[";
  for (size_t i = 0; i < sizes.size(); ++i) out += (i ? ", " : "") + std::to_string(sizes[i]);
  return out + "]";
}

// The default generators are the process's, shared by every thread that
// draws without a generator of its own (TorchScript's dropout does).
std::mutex& default_generator_lock() {
  static std::mutex lock;
  return lock;
}

}  // namespace

struct Model::Impl {
  std::string name;
  std::unique_ptr<ModelBackend> backend;
  std::vector<torch::Tensor> tensors;  // canonical order
  std::vector<bool> trainable;         // per tensor
  Layout layout;
  torch::Device device = torch::kCPU;

  // Sorts the backend's tensors into canonical order.
  void refresh() {
    std::map<std::string, ModelBackend::NamedTensor> sorted;
    for (auto& entry : backend->named_state()) sorted.emplace(entry.name, entry);
    tensors.clear();
    trainable.clear();
    layout.tensors.clear();
    for (auto& [name, entry] : sorted) {
      tensors.push_back(entry.tensor);
      trainable.push_back(entry.trainable);
      layout.tensors.push_back(TensorSpec{name, DType::kFloat32, entry.tensor.sizes().vec()});
    }
  }
};

Result<ModelInput> model_input(std::string_view model_name) {
  const auto names = model_names();
  if (std::ranges::find(names, model_name) == names.end()) {
    return make_builtin_backend(model_name, 0).status();  // the unknown-model error
  }
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

std::unique_ptr<Model> Model::wrap(std::string name, std::unique_ptr<ModelBackend> backend) {
  auto impl = std::make_unique<Impl>();
  impl->name = std::move(name);
  impl->backend = std::move(backend);
  impl->refresh();
  return std::unique_ptr<Model>(new Model(std::move(impl)));
}

Result<std::unique_ptr<Model>> Model::create(std::string_view name, uint64_t seed) {
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<ModelBackend> backend, make_builtin_backend(name, seed));
  return wrap(std::string(name), std::move(backend));
}

Result<std::unique_ptr<Model>> Model::load_torchscript(std::span<const uint8_t> archive, const std::string& origin) {
  COHORT_ASSIGN_OR_RETURN(std::unique_ptr<ModelBackend> backend, load_torchscript_backend(archive, origin));
  return wrap(std::string(kTorchScriptModelName), std::move(backend));
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::~Model() = default;

const std::string& Model::name() const { return impl_->name; }
const Layout& Model::layout() const { return impl_->layout; }
int64_t Model::parameter_count() const { return impl_->layout.numel(); }

at::Tensor Model::flat_parameters() const {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> flat;
  flat.reserve(impl_->tensors.size());
  for (const auto& p : impl_->tensors) flat.push_back(p.detach().reshape({-1}).to(torch::kCPU, torch::kFloat));
  return torch::cat(flat);
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
  for (auto& p : impl_->tensors) {
    const torch::Tensor values = source.narrow(0, offset, p.numel()).view_as(p);
    // Integer buffers travel as float32 (an average of counts is not one).
    p.copy_(p.is_floating_point() ? values : values.round());
    offset += p.numel();
  }
  return Status();
}

std::vector<at::Tensor> Model::parameters() { return impl_->tensors; }
const std::vector<bool>& Model::trainable() const { return impl_->trainable; }

at::Tensor Model::forward(const at::Tensor& inputs) { return impl_->backend->forward(inputs); }

at::Tensor Model::forward_seeded(const at::Tensor& inputs, uint64_t seed) {
  if (!impl_->backend->draws_random_numbers()) return forward(inputs);
  const std::lock_guard<std::mutex> lock(default_generator_lock());
  at::Generator generator = at::globalContext().defaultGenerator(impl_->device);
  at::Tensor saved;
  {
    const std::lock_guard<std::mutex> generator_lock(generator.mutex());
    saved = generator.get_state();
    generator.set_current_seed(seed);
  }
  // Restores the generator however forward() ends.
  struct Restore {
    at::Generator& generator;
    const at::Tensor& state;
    ~Restore() {
      const std::lock_guard<std::mutex> generator_lock(generator.mutex());
      generator.set_state(state);
    }
  } restore{generator, saved};
  return forward(inputs);
}

void Model::set_training(bool training) { impl_->backend->set_training(training); }

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
  impl_->backend->to(parsed);
  impl_->device = parsed;
  impl_->refresh();  // moving may replace the tensors
  return Status();
}

at::Device Model::device() const { return impl_->device; }

Result<std::unique_ptr<Model>> make_model(const ModelSource& source, uint64_t seed) {
  if (!source.is_archive()) return Model::create(source.name, seed);
  return Model::load_torchscript(*source.archive, "model archive " + to_hex(source.archive_digest).substr(0, 16));
}

Status check_forward_fits(Model& model, const at::Tensor& inputs, const at::Tensor& labels, std::string_view what) {
  torch::NoGradGuard no_grad;
  model.set_training(false);
  at::Tensor out;
  try {
    out = model.forward(inputs.to(model.device()));
  } catch (const std::exception& e) {
    std::string message = e.what();
    message = message.substr(0, message.find('\n'));
    model.set_training(true);
    return Status::invalid_argument(std::string(what) + ": the forward pass fails on a batch of " +
                                    std::to_string(inputs.size(0)) + " samples " + shape_text(inputs.sizes()) +
                                    ": " + message);
  }
  model.set_training(true);
  const int64_t batch = inputs.size(0);
  if (out.dim() != 2 || out.size(0) != batch) {
    return Status::invalid_argument(std::string(what) + ": the output for a batch of " + std::to_string(batch) +
                                    " samples is " + shape_text(out.sizes()) + ", but training needs [" +
                                    std::to_string(batch) + ", classes] outputs");
  }
  const int64_t needed = labels.numel() == 0 ? 1 : labels.max().item<int64_t>() + 1;
  if (out.size(1) < needed) {
    return Status::invalid_argument(std::string(what) + ": the output has " + std::to_string(out.size(1)) +
                                    " classes, but the data has labels up to " + std::to_string(needed - 1));
  }
  if (!out.is_floating_point() || !torch::isfinite(out).all().item<bool>()) {
    return Status::invalid_argument(std::string(what) + ": the output is not finite floating-point logits");
  }
  return Status();
}

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

at::Tensor loss_of(const at::Tensor& outputs, const at::Tensor& labels, LossKind kind) {
  namespace F = torch::nn::functional;
  switch (kind) {
    case LossKind::kCrossEntropy: return F::cross_entropy(outputs, labels);
    case LossKind::kNll: return F::nll_loss(outputs, labels);
    case LossKind::kMse: return F::mse_loss(outputs, F::one_hot(labels, outputs.size(1)).to(outputs.dtype()));
    case LossKind::kBceWithLogits:
      return F::binary_cross_entropy_with_logits(outputs, F::one_hot(labels, outputs.size(1)).to(outputs.dtype()));
  }
  return F::cross_entropy(outputs, labels);
}

Evaluation evaluate(Model& model, const TensorDataset& data, LossKind loss, int64_t batch_size) {
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
    loss_sum += loss == LossKind::kCrossEntropy
                    ? torch::nn::functional::cross_entropy(
                          logits, labels, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum))
                          .item<double>()
                    : loss_of(logits, labels, loss).item<double>() * static_cast<double>(n);
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
