// The data a job reads on the coordinator's side (`cohort coordinator`, and
// `cohort simulate`, which plays the workers too): the held-out test set and
// the training split the workers cut their shards from. Each is checked
// against the job's model as it is loaded (models.h, check_fits), so data
// that parses but does not fit (56x56 images, label 209, no samples) is
// refused before round 1, with the file named, instead of failing inside
// LibTorch in the middle of the job.
#pragma once

#include <cstdint>

#include "cohort/config.h"
#include "cohort/dataset.h"
#include "cohort/models.h"
#include "cohort/status.h"

namespace cohort {

// The files of `split`: the standard names in data.dir for "fashion-mnist",
// data.test_* or data.train_* for "idx".
Result<IdxFiles> job_data_files(const DataSection& data, Split split);

// Loads `files` and checks that they fit the job's model.
Result<LabeledImages> load_fitting(const IdxFiles& files, const std::string& model_name);

// The job's `split` (job_data_files), loaded and checked.
Result<LabeledImages> load_job_split(const JobConfig& job, Split split);

// The test set as the coordinator evaluates on it: the first
// data.eval_samples samples (all when 0), as tensors.
Result<TensorDataset> load_test_set(const JobConfig& job);

// The first `count` samples of `all` (all of them when it has fewer).
LabeledImages first_samples(const LabeledImages& all, int64_t count);

}  // namespace cohort
