// The models Cohort trains, chosen by name, and their evaluation.
//
//   "cnn": conv 1->20 5x5, pool, conv 20->50 5x5, pool, fc 800->500->10
//          (431,080 parameters; ByzFL's cnn_mnist, so robustness numbers are
//          comparable with its benchmark)
//   "mlp": fc 784->512->256->10 with ReLU (535,818 parameters)
// Both take [B, 1, 28, 28] float images and return [B, 10] logits.
//
// Initialisation draws from a generator seeded by the caller (PyTorch's
// default uniform(+-1/sqrt(fan_in)) scheme), never from the process-global
// one, so two processes given the same seed build the same model.
//
// A Model is a resource type: not copyable, not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/dataset.h"
#include "cohort/model_names.h"
#include "cohort/status.h"
#include "cohort/tensor_codec.h"

namespace cohort {

// What a model takes: single-channel images of rows x cols pixels, each
// labelled with a class in [0, classes).
struct ModelInput {
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t classes = 0;
  bool operator==(const ModelInput&) const = default;
};

// Every built-in model takes 28x28 images of 10 classes.
inline constexpr ModelInput kBuiltinModelInput{28, 28, 10};

// Errors: an unknown model name (InvalidArgument, as Model::create).
Result<ModelInput> model_input(std::string_view model_name);

// Whether `data` can train or test a model that takes `input`: it holds
// samples, its images are rows x cols, and each label is below classes.
// Data that parses but does not fit would otherwise fail deep inside
// LibTorch in the middle of a job. `model` names the model in messages
// ("model 'mlp'", or a plural ending in s: "the models"); `files` name the
// data. InvalidArgument:
// "<images>: holds no samples", "<images>: the images are 56x56 pixels, but
// model 'mlp' takes 28x28", "<labels>: label 200 (sample 0) is outside model
// 'mlp''s classes 0-9".
Status check_fits(const LabeledImages& data, const ModelInput& input, std::string_view model, const IdxFiles& files);

class Model {
 public:
  // Errors: unknown name (InvalidArgument, listing the known ones).
  static Result<std::unique_ptr<Model>> create(std::string_view name, uint64_t seed);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const;
  // Canonical (name-sorted) layout of the parameters.
  const Layout& layout() const;
  int64_t parameter_count() const;

  // A CPU float32 copy of the parameters in canonical order.
  at::Tensor flat_parameters() const;
  // Overwrites the parameters; flat must be 1-D with parameter_count() values.
  Status set_flat_parameters(const at::Tensor& flat);

  // The live parameter tensors (in canonical order), e.g. for an optimizer.
  std::vector<at::Tensor> parameters();

  at::Tensor forward(const at::Tensor& images);
  void set_training(bool training);

  // Moves the parameters to "cpu", "cuda" or "cuda:N". Errors: a malformed
  // name, or CUDA requested where it is not available (Unavailable).
  Status to_device(std::string_view device);
  at::Device device() const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Parses "cpu", "cuda", "cuda:N" and checks that the device exists.
Result<at::Device> parse_device(std::string_view device);

// Images scaled to [0, 1] and normalised with the Fashion-MNIST mean and
// standard deviation, as [N, 1, rows, cols] float32; labels as int64 [N].
struct TensorDataset {
  at::Tensor images;
  at::Tensor labels;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};
TensorDataset to_tensors(const LabeledImages& data);

struct Evaluation {
  double accuracy = 0.0;  // fraction correct
  double loss = 0.0;      // mean cross-entropy
  int64_t samples = 0;
};

// Evaluates without gradients, in batches, on the model's device.
Evaluation evaluate(Model& model, const TensorDataset& data, int64_t batch_size = 1000);

}  // namespace cohort
