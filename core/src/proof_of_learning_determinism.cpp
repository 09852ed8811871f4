// The settings behind the "cpu-exact" profile. Measured on torch 2.15
// (MKL 2024.2, oneDNN 3.13) in docs/PROOF_OF_LEARNING.md: without them the
// same training at 1 and 2 intra-op threads differs in the last bits
// (oneDNN's first-convolution weight gradient; MKL's small products such as
// a 10-class layer), and AVX2 and AVX-512 kernels differ.
#include <torch/torch.h>

#include <ATen/Parallel.h>
#include <ATen/Version.h>

#include <cstdlib>

#include "cohort/proof_of_learning.h"

namespace cohort {
namespace {

// One SGD step of a small batch through the shapes that MKL splits by
// thread (an 8 x 256 x 10 product, its 10 x 256 weight gradient), trained at
// 1 and at 2 intra-op threads: the parameters must come out equal.
Result<bool> training_agrees_across_thread_counts() {
  at::Generator gen = at::detail::createCPUGenerator(20240611);
  const TensorDataset batch{at::randn({8, 1, 28, 28}, gen), at::arange(8, at::kLong)};
  Hyperparameters hyper;
  hyper.batch_size = 8;
  hyper.learning_rate = 0.1;
  hyper.momentum = 0.9;
  const int threads = at::get_num_threads();
  at::Tensor result[2];
  for (int n : {1, 2}) {
    COHORT_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::create("mlp", 5));
    at::set_num_threads(n);
    SgdTrainer trainer(*model, batch, hyper, 1);
    const Status ran = trainer.run(2);
    at::set_num_threads(threads);
    COHORT_RETURN_IF_ERROR(ran);
    result[n - 1] = model->flat_parameters();
  }
  return at::equal(result[0], result[1]);
}

}  // namespace

Status use_deterministic_cpu_training() {
#if defined(__x86_64__)
  // Read once, when ATen first dispatches: an operator's own choice wins.
  ::setenv("ATEN_CPU_CAPABILITY", "avx2", /*overwrite=*/0);
#endif
  at::globalContext().setUserEnabledMkldnn(false);
  set_single_threaded_blas(true);

#if defined(__x86_64__)
  const std::string capability = at::get_cpu_capability();
  const char* wanted = std::getenv("ATEN_CPU_CAPABILITY");
  if (capability != "AVX2" && wanted != nullptr && std::string(wanted) == "avx2") {
    if (capability == "AVX512") {
      return Status::failed_precondition(
          "ATen chose its CPU kernels (AVX512) before use_deterministic_cpu_training(): call it before any tensor "
          "operation, or set ATEN_CPU_CAPABILITY=avx2 in the environment");
    }
    return Status::unavailable("this CPU lacks AVX2 (ATen kernels: " + capability +
                               "); its results would differ from AVX2 machines");
  }
#endif
  COHORT_ASSIGN_OR_RETURN(const bool agrees, training_agrees_across_thread_counts());
  if (!agrees) {
    return Status::internal(
        "training still depends on the intra-op thread count after use_deterministic_cpu_training() (a kernel "
        "this check does not know about; see docs/PROOF_OF_LEARNING.md)");
  }
  return Status();
}

}  // namespace cohort
