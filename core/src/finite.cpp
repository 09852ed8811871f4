#include "cohort/finite.h"

#include <ATen/ATen.h>

#include <cmath>

namespace cohort {

bool all_finite(const at::Tensor& values) {
  if (values.numel() == 0) return true;
  auto [low, high] = at::aminmax(values);
  return std::isfinite(low.item<double>()) && std::isfinite(high.item<double>());
}

}  // namespace cohort
