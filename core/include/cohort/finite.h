// Whether a tensor holds only finite numbers: the check on updates that the
// aggregation pipeline, the coordinator and the worker share (part of the
// `base` library, core/CMakeLists.txt).
//
// Thread-safe; the tensor is not modified.
#pragma once

#include <ATen/core/Tensor.h>

namespace cohort {

// True when no element is NaN or +-Inf. One pass without an n-element
// temporary (min and max propagate NaN and show Inf); true for an empty tensor.
bool all_finite(const at::Tensor& values);

}  // namespace cohort
