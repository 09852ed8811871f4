// What a Model (cohort/models.h) is made of: one backend per model format.
// Today there are two, the built-in LibTorch modules (builtin_models.cpp)
// and TorchScript archives (torchscript_model.cpp); a second archive format
// (torch.export) would be a third backend here, and nothing in training,
// proof of learning or aggregation would change. Private to core.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cohort/status.h"

namespace cohort {

class ModelBackend {
 public:
  virtual ~ModelBackend() = default;

  // Every tensor the model exchanges, by name: its parameters (trainable
  // unless frozen) and its buffers (BatchNorm's running statistics and
  // num_batches_tracked). The tensors are the live ones; order does not
  // matter (Model sorts them).
  struct NamedTensor {
    std::string name;
    torch::Tensor tensor;
    bool trainable = false;
  };
  virtual std::vector<NamedTensor> named_state() = 0;

  virtual torch::Tensor forward(const torch::Tensor& inputs) = 0;
  virtual void set_training(bool training) = 0;
  virtual void to(const torch::Device& device) = 0;

  // Whether forward() in training mode may draw random numbers (dropout):
  // Model then seeds the device's default generator around it.
  virtual bool draws_random_numbers() const = 0;
};

// Errors: an unknown name (InvalidArgument, listing the known ones).
Result<std::unique_ptr<ModelBackend>> make_builtin_backend(std::string_view name, uint64_t seed);

// Errors (InvalidArgument, each naming `origin`): not a TorchScript
// archive, no trainable parameters, a parameter or floating buffer that is
// not float32.
Result<std::unique_ptr<ModelBackend>> load_torchscript_backend(std::span<const uint8_t> archive,
                                                               const std::string& origin);

}  // namespace cohort
