#include "cohort/models.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/cuda.h>

#include <cmath>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace cohort {
namespace {

std::unique_ptr<Model> create_or_die(std::string_view name, uint64_t seed) {
  Result<std::unique_ptr<Model>> r = Model::create(name, seed);
  EXPECT_TRUE(r.ok()) << r.status().to_string();
  if (!r.ok()) std::abort();
  return std::move(r).value();
}

std::vector<std::string> names_of(const Layout& layout) {
  std::vector<std::string> out;
  for (const TensorSpec& spec : layout.tensors) out.push_back(spec.name);
  return out;
}

// Offset of `name` in the flat parameters.
int64_t offset_of(const Layout& layout, const std::string& name) {
  int64_t offset = 0;
  for (const TensorSpec& spec : layout.tensors) {
    if (spec.name == name) return offset;
    offset += spec.numel();
  }
  ADD_FAILURE() << "no tensor " << name;
  return -1;
}

TEST(ModelsTest, ModelNames) {
  const std::span<const std::string_view> names = model_names();
  EXPECT_EQ(std::vector<std::string_view>(names.begin(), names.end()),
            (std::vector<std::string_view>{"cnn", "mlp", "mlp-wide"}));
}

TEST(ModelsTest, MlpWideHasAMillionParameters) {
  // fc1 1024*784+1024 = 803,840, fc2 256*1024+256 = 262,400, fc3 256*10+10 =
  // 2,570: 1,068,810.
  auto model = create_or_die("mlp-wide", 1);
  EXPECT_EQ(model->parameter_count(), 1068810);
  EXPECT_EQ(model->layout().tensors[1].shape, (std::vector<int64_t>{1024, 784}));
  EXPECT_TRUE(validate_layout(model->layout()).ok());
}

TEST(ModelsTest, CnnHasByzflParameterCountAndSortedLayout) {
  // conv1 20*1*25+20 = 520, conv2 50*20*25+50 = 25,050, fc1 800*500+500 =
  // 400,500, fc2 500*10+10 = 5,010: 431,080.
  auto model = create_or_die("cnn", 1);
  EXPECT_EQ(model->name(), "cnn");
  EXPECT_EQ(model->parameter_count(), 431080);
  EXPECT_EQ(model->flat_parameters().numel(), 431080);
  EXPECT_EQ(names_of(model->layout()),
            (std::vector<std::string>{"conv1.bias", "conv1.weight", "conv2.bias", "conv2.weight",
                                      "fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"}));
  EXPECT_EQ(model->layout().tensors[1].shape, (std::vector<int64_t>{20, 1, 5, 5}));
  EXPECT_EQ(model->layout().tensors[5].shape, (std::vector<int64_t>{500, 800}));
  for (const TensorSpec& spec : model->layout().tensors) EXPECT_EQ(spec.dtype, DType::kFloat32);
  EXPECT_TRUE(validate_layout(model->layout()).ok());
}

TEST(ModelsTest, MlpParameterCountAndSortedLayout) {
  // 784*512+512 = 401,920, 512*256+256 = 131,328, 256*10+10 = 2,570: 535,818.
  auto model = create_or_die("mlp", 1);
  EXPECT_EQ(model->parameter_count(), 535818);
  EXPECT_EQ(names_of(model->layout()),
            (std::vector<std::string>{"fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight",
                                      "fc3.bias", "fc3.weight"}));
  EXPECT_EQ(offset_of(model->layout(), "fc3.bias"), 512 + 401408 + 256 + 131072);
}

TEST(ModelsTest, UnknownNameIsInvalidArgumentListingKnownModels) {
  Result<std::unique_ptr<Model>> r = Model::create("resnet", 1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("resnet"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cnn"), std::string::npos) << msg;
  EXPECT_NE(msg.find("mlp"), std::string::npos) << msg;
}

TEST(ModelsTest, SameSeedGivesIdenticalParameters) {
  for (std::string_view name : model_names()) {
    auto a = create_or_die(name, 42);
    auto b = create_or_die(name, 42);
    EXPECT_TRUE(at::equal(a->flat_parameters(), b->flat_parameters())) << name;
  }
}

TEST(ModelsTest, DifferentSeedGivesDifferentParameters) {
  auto a = create_or_die("cnn", 42);
  auto b = create_or_die("cnn", 43);
  EXPECT_FALSE(at::equal(a->flat_parameters(), b->flat_parameters()));
}

TEST(ModelsTest, InitialisationIsUniformWithinFanInBound) {
  // conv1: fan_in 1*5*5 = 25 -> bound 0.2; fc1: fan_in 800 -> bound 1/sqrt(800).
  auto model = create_or_die("cnn", 7);
  at::Tensor flat = model->flat_parameters();
  const Layout& layout = model->layout();
  auto slice = [&](const std::string& name, int64_t numel) {
    return flat.narrow(0, offset_of(layout, name), numel);
  };
  for (auto [name, numel, bound] : {std::tuple{"conv1.weight", 500, 0.2},
                                    std::tuple{"conv1.bias", 20, 0.2},
                                    std::tuple{"fc1.weight", 400000, 1.0 / std::sqrt(800.0)}}) {
    at::Tensor v = slice(name, numel);
    const double max_abs = v.abs().max().item<double>();
    EXPECT_LE(max_abs, bound) << name;
    if (numel >= 500) {
      EXPECT_GT(max_abs, 0.95 * bound) << name;  // fills the range
    }
  }
}

TEST(ModelsTest, SetFlatParametersRoundTrips) {
  auto model = create_or_die("mlp", 1);
  at::Tensor flat = at::arange(model->parameter_count(), at::kFloat).mul(1e-6);
  ASSERT_TRUE(model->set_flat_parameters(flat).ok());
  EXPECT_TRUE(at::equal(model->flat_parameters(), flat));
  // The live parameters changed, in canonical order: fc1.bias[1] = 1e-6.
  EXPECT_FLOAT_EQ(model->parameters()[0][1].item<float>(), 1e-6f);
}

TEST(ModelsTest, FlatParametersIsACopy) {
  auto model = create_or_die("mlp", 1);
  at::Tensor flat = model->flat_parameters();
  const at::Tensor before = flat.clone();
  flat.add_(1.0);
  EXPECT_TRUE(at::equal(model->flat_parameters(), before));
}

TEST(ModelsTest, SetFlatParametersRejectsWrongSize) {
  auto model = create_or_die("mlp", 1);
  const at::Tensor before = model->flat_parameters();
  const int64_t n = model->parameter_count();
  for (const at::Tensor& bad :
       {at::zeros({n - 1}), at::zeros({n + 1}), at::zeros({1, n}), at::zeros({0})}) {
    Status s = model->set_flat_parameters(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad.sizes();
  }
  EXPECT_NE(model->set_flat_parameters(at::zeros({n - 1})).message().find("535818"),
            std::string::npos);
  EXPECT_TRUE(at::equal(model->flat_parameters(), before));  // untouched
}

TEST(ModelsTest, ForwardGivesTenLogitsPerImage) {
  for (std::string_view name : model_names()) {
    auto model = create_or_die(name, 1);
    at::Tensor logits = model->forward(at::randn({3, 1, 28, 28}));
    EXPECT_EQ(logits.sizes().vec(), (std::vector<int64_t>{3, 10})) << name;
  }
}

TEST(ModelsTest, ParseDeviceCpu) {
  Result<at::Device> r = parse_device("cpu");
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_TRUE(r->is_cpu());
}

TEST(ModelsTest, ParseDeviceCudaIsUnavailableWithoutGpu) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has CUDA";
  for (const char* name : {"cuda", "cuda:0"}) {
    Result<at::Device> r = parse_device(name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), Status::Code::kUnavailable) << name;
  }
}

TEST(ModelsTest, ParseDeviceCudaIndexBeyondDeviceCountIsUnavailable) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA on this machine";
  EXPECT_TRUE(parse_device("cuda:0").ok());
  EXPECT_EQ(parse_device("cuda:99").status().code(), Status::Code::kUnavailable);
}

TEST(ModelsTest, ParseDeviceRejectsOtherNames) {
  for (const char* name : {"tpu:0", "garbage", "", "meta", "cpu:x"}) {
    Result<at::Device> r = parse_device(name);
    ASSERT_FALSE(r.ok()) << name;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << name;
  }
}

TEST(ModelsTest, ToDeviceRejectsMalformedName) {
  auto model = create_or_die("mlp", 1);
  EXPECT_EQ(model->to_device("garbage").code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(model->to_device("cpu").ok());
  EXPECT_TRUE(model->device().is_cpu());
}

// `labels.size()` images of 2x2 pixels; image i has every pixel = pixels[i].
LabeledImages tiny_images(const std::vector<uint8_t>& pixels, const std::vector<uint8_t>& labels,
                          int64_t side) {
  LabeledImages data;
  data.count = static_cast<int64_t>(labels.size());
  data.rows = side;
  data.cols = side;
  for (uint8_t p : pixels) data.pixels.insert(data.pixels.end(), side * side, p);
  data.labels = labels;
  return data;
}

TEST(ModelsTest, ToTensorsNormalisesWithFashionMnistStatistics) {
  TensorDataset t = to_tensors(tiny_images({0, 255}, {4, 9}, 2));
  EXPECT_EQ(t.size(), 2);
  EXPECT_EQ(t.images.sizes().vec(), (std::vector<int64_t>{2, 1, 2, 2}));
  EXPECT_EQ(t.images.scalar_type(), at::kFloat);
  // (0 - 0.2860) / 0.3530 = -0.81020; (1 - 0.2860) / 0.3530 = 2.02266.
  EXPECT_NEAR(t.images[0][0][1][1].item<double>(), -0.2860 / 0.3530, 1e-6);
  EXPECT_NEAR(t.images[1][0][0][0].item<double>(), 0.7140 / 0.3530, 1e-6);
  EXPECT_EQ(t.labels.scalar_type(), at::kLong);
  EXPECT_EQ(t.labels[0].item<int64_t>(), 4);
  EXPECT_EQ(t.labels[1].item<int64_t>(), 9);
}

TEST(ModelsTest, ToTensorsOwnsItsData) {
  std::optional<TensorDataset> t;
  {
    LabeledImages data = tiny_images({51}, {2}, 1);
    t = to_tensors(data);
  }
  // 51 / 255 = 0.2 -> (0.2 - 0.286) / 0.353 = -0.24363.
  EXPECT_NEAR(t->images[0][0][0][0].item<double>(), (0.2 - 0.2860) / 0.3530, 1e-6);
  EXPECT_EQ(t->labels[0].item<int64_t>(), 2);
}

// An mlp with all parameters 0 except fc3.bias[3] = 1: every image gets the
// logits (0, 0, 0, 1, 0, ..., 0), so it always predicts class 3.
std::unique_ptr<Model> always_three() {
  auto model = create_or_die("mlp", 1);
  at::Tensor flat = at::zeros({model->parameter_count()});
  flat[offset_of(model->layout(), "fc3.bias") + 3] = 1.0f;
  EXPECT_TRUE(model->set_flat_parameters(flat).ok());
  return model;
}

TEST(ModelsTest, EvaluateAccuracyIsShareOfPredictedClass) {
  auto model = always_three();
  TensorDataset data = to_tensors(tiny_images({0, 10, 20, 30, 40}, {3, 1, 3, 0, 3}, 28));
  Evaluation e = evaluate(*model, data, LossKind::kCrossEntropy, /*batch_size=*/2);  // batches of 2, 2, 1
  EXPECT_EQ(e.samples, 5);
  EXPECT_DOUBLE_EQ(e.accuracy, 3.0 / 5.0);
  // Cross-entropy: log(9 + e) - 1 for label 3, log(9 + e) otherwise; mean over
  // 3 + 2 samples is log(9 + e) - 3/5 = 1.86115.
  EXPECT_NEAR(e.loss, std::log(9.0 + std::exp(1.0)) - 0.6, 1e-5);
}

TEST(ModelsTest, EvaluateDoesNotDependOnBatchSize) {
  auto model = create_or_die("cnn", 3);
  TensorDataset data = to_tensors(tiny_images({0, 60, 120, 180, 240}, {0, 1, 2, 3, 4}, 28));
  Evaluation whole = evaluate(*model, data, LossKind::kCrossEntropy, 1000);
  Evaluation ones = evaluate(*model, data, LossKind::kCrossEntropy, 1);
  EXPECT_DOUBLE_EQ(whole.accuracy, ones.accuracy);
  EXPECT_NEAR(whole.loss, ones.loss, 1e-5);
}

TEST(ModelsTest, EvaluateEmptyDatasetIsZero) {
  auto model = always_three();
  Evaluation e = evaluate(*model, TensorDataset{});
  EXPECT_EQ(e.samples, 0);
  EXPECT_EQ(e.accuracy, 0.0);
  EXPECT_EQ(e.loss, 0.0);
}

}  // namespace
}  // namespace cohort

namespace cohort {
namespace {

LabeledImages images_of(int64_t count, int64_t side, uint8_t first_label) {
  LabeledImages data;
  data.count = count;
  data.rows = data.cols = side;
  data.pixels.assign(static_cast<size_t>(count * side * side), 100);
  for (int64_t i = 0; i < count; ++i) data.labels.push_back(static_cast<uint8_t>(first_label + i));
  return data;
}

const IdxFiles kFiles{"data/images.idx", "data/labels.idx"};

TEST(ModelsTest, EveryBuiltinModelTakes28x28ImagesOfTenClasses) {
  for (std::string_view name : model_names()) {
    Result<ModelInput> input = model_input(name);
    ASSERT_TRUE(input.ok()) << name;
    EXPECT_EQ(*input, kBuiltinModelInput) << name;
    auto model = create_or_die(name, 1);
    EXPECT_EQ(model->forward(at::zeros({2, 1, input->rows, input->cols})).sizes(), (at::IntArrayRef{2, input->classes}));
  }
  EXPECT_EQ(model_input("resnet").status().code(), Status::Code::kInvalidArgument);
}

TEST(ModelsTest, DataThatFitsIsAccepted) {
  EXPECT_TRUE(check_fits(images_of(10, 28, 0), kBuiltinModelInput, "model 'mlp'", kFiles).ok());
}

// What aborted the coordinator after round 1 and a data holder's worker on
// its first task: data that parses but does not fit.
TEST(ModelsTest, DataThatDoesNotFitIsNamedWithTheFileAndTheProblem) {
  EXPECT_EQ(check_fits(images_of(10, 56, 0), kBuiltinModelInput, "model 'mlp'", kFiles).message(),
            "data/images.idx: the images are 56x56 pixels, but model 'mlp' takes 28x28");
  EXPECT_EQ(check_fits(images_of(10, 1, 0), kBuiltinModelInput, "the models", kFiles).message(),
            "data/images.idx: the images are 1x1 pixels, but the models take 28x28");
  EXPECT_EQ(check_fits(images_of(10, 28, 200), kBuiltinModelInput, "model 'mlp'", kFiles).message(),
            "data/labels.idx: label 200 (sample 0) is outside model 'mlp''s classes 0-9");
  EXPECT_EQ(check_fits(images_of(10, 28, 5), kBuiltinModelInput, "the models", kFiles).message(),
            "data/labels.idx: label 10 (sample 5) is outside the models' classes 0-9");
  EXPECT_EQ(check_fits(images_of(0, 28, 0), kBuiltinModelInput, "the models", kFiles).message(),
            "data/images.idx: holds no samples");
}

// The crash itself, caught: LibTorch's message without its C++ stack trace.
TEST(ModelsTest, ALibTorchShapeErrorBecomesAStatusWithoutItsStackTrace) {
  auto model = create_or_die("mlp", 1);
  const Status status = catching_exceptions("task 7", [&] {
    (void)model->forward(at::zeros({4, 1, 56, 56}));
    return Status();
  });
  EXPECT_EQ(status.code(), Status::Code::kInternal);
  EXPECT_TRUE(status.message().starts_with("task 7: ")) << status.message();
  EXPECT_NE(status.message().find("cannot be multiplied"), std::string::npos) << status.message();
  EXPECT_EQ(status.message().find("Exception raised from"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace cohort
