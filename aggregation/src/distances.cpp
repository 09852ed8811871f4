#include "distances.h"

#include <ATen/ATen.h>

namespace cohort {

at::Tensor pairwise_sq_distances(const at::Tensor& rows) {
  at::Tensor centred = rows - rows.mean(0, /*keepdim=*/true);
  at::Tensor gram = at::matmul(centred, centred.t());
  at::Tensor norms = gram.diagonal();
  at::Tensor dist = norms.unsqueeze(1) + norms.unsqueeze(0) - 2.0 * gram;
  dist = dist.to(at::kCPU, at::kDouble).clamp_min_(0.0);
  // Rounding can make D[i][j] and D[j][i] differ in the last bit; average
  // them so that equal distances compare equal wherever they are read.
  dist = (dist + dist.t()).mul_(0.5);
  dist.fill_diagonal_(0.0);
  return dist;
}

}  // namespace cohort
