// TorchScript archives (torch.jit.script(model).save(...)) as models:
// loaded with torch::jit::load and trained from C++ like the built-ins.
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <sstream>
#include <stdexcept>

#include "model_backend.h"

namespace cohort {
namespace {

// The first line of a LibTorch error (the rest is a C++ stack trace).
std::string first_line(const std::exception& e) {
  std::string what = e.what();
  return what.substr(0, what.find('\n'));
}

class TorchScriptBackend final : public ModelBackend {
 public:
  explicit TorchScriptBackend(torch::jit::Module module) : module_(std::move(module)) {}

  std::vector<NamedTensor> named_state() override {
    std::vector<NamedTensor> out;
    for (const auto& p : module_.named_parameters()) out.push_back({p.name, p.value, p.value.requires_grad()});
    for (const auto& b : module_.named_buffers()) out.push_back({b.name, b.value, /*trainable=*/false});
    return out;
  }

  torch::Tensor forward(const torch::Tensor& inputs) override {
    // The graph executor's optimisations (fusion, specialisation after the
    // first runs) change the floating-point operations from one call to
    // the next; proof of learning needs the same kernels on every run.
    const torch::jit::GraphOptimizerEnabledGuard no_optimizer(false);
    const c10::IValue out = module_.forward({inputs});
    if (!out.isTensor()) {
      throw std::runtime_error("the model's forward returned a " + out.tagKind() + ", not a tensor");
    }
    return out.toTensor();
  }

  void set_training(bool training) override { module_.train(training); }
  void to(const torch::Device& device) override { module_.to(device); }
  bool draws_random_numbers() const override { return true; }

 private:
  torch::jit::Module module_;
};

// Parameters and floating buffers must be float32: the wire, the
// aggregation rules and the proofs all work on float32.
Status check_dtypes(const torch::jit::Module& module, const std::string& origin) {
  for (const auto& p : module.named_parameters()) {
    if (p.value.scalar_type() != torch::kFloat) {
      return Status::invalid_argument(origin + ": parameter '" + p.name + "' is " +
                                      std::string(c10::toString(p.value.scalar_type())) +
                                      ", but Cohort trains float32 parameters (call model.float() before export)");
    }
  }
  for (const auto& b : module.named_buffers()) {
    if (b.value.is_floating_point() && b.value.scalar_type() != torch::kFloat) {
      return Status::invalid_argument(origin + ": buffer '" + b.name + "' is " +
                                      std::string(c10::toString(b.value.scalar_type())) +
                                      ", but Cohort exchanges float32 buffers (call model.float() before export)");
    }
  }
  return Status();
}

}  // namespace

Result<std::unique_ptr<ModelBackend>> load_torchscript_backend(std::span<const uint8_t> archive,
                                                               const std::string& origin) {
  torch::jit::Module module;
  try {
    std::istringstream stream(std::string(reinterpret_cast<const char*>(archive.data()), archive.size()));
    module = torch::jit::load(stream, torch::kCPU);
  } catch (const std::exception& e) {
    return Status::invalid_argument(origin + ": not a TorchScript archive (torch::jit::load: " + first_line(e) +
                                    ")");
  }
  COHORT_RETURN_IF_ERROR(check_dtypes(module, origin));
  bool any_trainable = false;
  for (const auto& p : module.named_parameters()) any_trainable = any_trainable || p.value.requires_grad();
  if (!any_trainable) return Status::invalid_argument(origin + ": the model has no trainable parameters");
  return std::unique_ptr<ModelBackend>(std::make_unique<TorchScriptBackend>(std::move(module)));
}

}  // namespace cohort
