// The models Cohort trains, and their evaluation. A model is either one of
// the built-ins, chosen by name,
//
//   "cnn": conv 1->20 5x5, pool, conv 20->50 5x5, pool, fc 800->500->10
//          (431,080 parameters; ByzFL's cnn_mnist, so robustness numbers are
//          comparable with its benchmark)
//   "mlp": fc 784->512->256->10 with ReLU (535,818 parameters)
//   "mlp-wide": fc 784->1024->256->10 (1,068,810 parameters)
//
// (each takes [B, 1, 28, 28] float images and returns [B, 10] logits), or a
// researcher's TorchScript archive (torch.jit.script(model).save(path);
// docs/MODELS.md), which is loaded with torch::jit::load and trained from
// C++ exactly like a built-in.
//
// The state a model exchanges (its layout) is its parameters and its
// buffers (BatchNorm's running statistics and num_batches_tracked), as
// float32, sorted by name, so that training is a function of the exchanged
// state alone. Buffers are not trained by the optimizer; they change in the
// forward passes of training and travel in updates like parameters, so the
// job's aggregation rule merges them too (FedAvg: the sample-weighted
// mean). Integer buffers are rounded to the nearest integer when set.
//
// Built-in initialisation draws from a generator seeded by the caller
// (PyTorch's default uniform(+-1/sqrt(fan_in)) scheme), never from the
// process-global one, so two processes given the same seed build the same
// model; a TorchScript model starts from the weights in its archive.
//
// A Model is a resource type: not copyable, not thread-safe.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/dataset.h"
#include "cohort/loss.h"
#include "cohort/model_names.h"
#include "cohort/model_source.h"
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

class ModelBackend;

class Model {
 public:
  // A built-in model. Errors: unknown name (InvalidArgument, listing the
  // known ones).
  static Result<std::unique_ptr<Model>> create(std::string_view name, uint64_t seed);
  // A TorchScript archive's model, named kTorchScriptModelName. `origin`
  // (a path) names it in errors (InvalidArgument): not a TorchScript
  // archive, no trainable parameters, a parameter or floating buffer that
  // is not float32.
  static Result<std::unique_ptr<Model>> load_torchscript(std::span<const uint8_t> archive,
                                                         const std::string& origin);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const;
  // Canonical (name-sorted) layout of the exchanged state.
  const Layout& layout() const;
  // Values in the layout (parameters and buffers).
  int64_t parameter_count() const;

  // A CPU float32 copy of the exchanged state in canonical order.
  at::Tensor flat_parameters() const;
  // Overwrites the exchanged state (flat must be 1-D with
  // parameter_count() values; integer buffers take the rounded values).
  Status set_flat_parameters(const at::Tensor& flat);

  // The live tensors of the layout, in canonical order, and whether each
  // is trained by the optimizer (a parameter that requires grad) or not
  // (a buffer, a frozen parameter).
  std::vector<at::Tensor> parameters();
  const std::vector<bool>& trainable() const;

  at::Tensor forward(const at::Tensor& inputs);
  // As forward(), with any random numbers it draws (dropout) taken from the
  // device's default generator seeded with `seed`. The generator's state
  // is restored afterwards, and a process-wide lock keeps two models from
  // drawing from it at once, so training stays a function of the seed.
  at::Tensor forward_seeded(const at::Tensor& inputs, uint64_t seed);
  void set_training(bool training);

  // Moves the model to "cpu", "cuda" or "cuda:N". Errors: a malformed
  // name, or CUDA requested where it is not available (Unavailable).
  Status to_device(std::string_view device);
  at::Device device() const;

 private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  static std::unique_ptr<Model> wrap(std::string name, std::unique_ptr<ModelBackend> backend);
  std::unique_ptr<Impl> impl_;
};

// A new model from `source`: Model::create(name, seed) for a built-in, the
// archive's model (its own initial weights; `seed` unused) otherwise.
Result<std::unique_ptr<Model>> make_model(const ModelSource& source, uint64_t seed);

// The batch check_forward_fits is given when a model first meets data.
inline constexpr int64_t kForwardProbeSamples = 8;

// Runs one batch through `model` (in eval mode, without gradients) and
// checks that its output is [batch, classes'] logits with classes' >= one
// more than the batch's largest label. `what` names the model and data in
// errors (InvalidArgument): a forward that throws ("<what>: the forward
// pass fails on a batch of 8 samples [8, 1, 28, 28]: <torch's message>"),
// an output of another shape, too few classes. Every loss (loss.h) takes
// such outputs.
Status check_forward_fits(Model& model, const at::Tensor& inputs, const at::Tensor& labels,
                          std::string_view what);

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

// `kind`'s loss of [B, classes] `outputs` against class `labels` [B]:
// the mean over the batch (over its elements for mse and bce-with-logits,
// whose target is the one-hot label), as a training step minimises it.
at::Tensor loss_of(const at::Tensor& outputs, const at::Tensor& labels, LossKind kind);

struct Evaluation {
  double accuracy = 0.0;  // fraction correct (the argmax of the outputs)
  double loss = 0.0;      // the job's loss, mean per sample
  int64_t samples = 0;
};

// Evaluates without gradients, in batches, on the model's device.
Evaluation evaluate(Model& model, const TensorDataset& data, LossKind loss = LossKind::kCrossEntropy,
                    int64_t batch_size = 1000);

}  // namespace cohort
