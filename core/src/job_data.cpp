#include "cohort/job_data.h"

#include <algorithm>
#include <numeric>
#include <vector>

namespace cohort {

Result<IdxFiles> job_data_files(const DataSection& data, Split split) {
  if (data.dataset != "idx") return find_mnist_format_files(data.dir, split);
  if (split == Split::kTest) return IdxFiles{data.test_images, data.test_labels};
  // Optional in the config: only proof of learning and simulation read it.
  if (data.train_images.empty() || data.train_labels.empty()) {
    return Status::invalid_argument(
        "data.train_images and data.train_labels are needed here (the training split the workers cut their "
        "shards from)");
  }
  return IdxFiles{data.train_images, data.train_labels};
}

Result<LabeledImages> load_fitting(const IdxFiles& files, const std::string& model_name) {
  COHORT_ASSIGN_OR_RETURN(LabeledImages data, load_idx_pair(files.images, files.labels));
  if (model_name == kTorchScriptModelName) {
    // An archive's input shape and classes are checked by running it on a
    // batch (check_forward_fits); here the data need only hold samples.
    return data.count > 0 ? Result<LabeledImages>(std::move(data))
                          : Status::invalid_argument(files.images.string() + ": holds no samples");
  }
  COHORT_ASSIGN_OR_RETURN(ModelInput input, model_input(model_name));
  COHORT_RETURN_IF_ERROR(check_fits(data, input, "model '" + model_name + "'", files));
  return data;
}

Result<LabeledImages> load_job_split(const JobConfig& job, Split split) {
  COHORT_ASSIGN_OR_RETURN(IdxFiles files, job_data_files(job.data, split));
  return load_fitting(files, job.model.name);
}

Result<TensorDataset> load_test_set(const JobConfig& job) {
  Result<LabeledImages> images = load_job_split(job, Split::kTest);
  if (!images.ok()) return images.status().with_context("loading the test set");
  const int64_t count = job.data.eval_samples > 0 ? job.data.eval_samples : images->count;
  return to_tensors(first_samples(*images, count));
}

LabeledImages first_samples(const LabeledImages& all, int64_t count) {
  std::vector<int64_t> first(static_cast<size_t>(std::min(count, all.count)));
  std::iota(first.begin(), first.end(), 0);
  return select_samples(all, first);
}

}  // namespace cohort
