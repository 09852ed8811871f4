#include "distances.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace cohort {
namespace {

// Column blocks of about 1 MB: a block stays in cache while its column mean
// is subtracted and its Gram product accumulated, so the stack is read from
// memory once and no centred copy of it is made. Measured with one thread at
// d = 1e6 (docs/PERFORMANCE.md): 3.5x faster than centring the whole stack
// at n = 10, 1.75x at n = 100.
constexpr int64_t kBlockBytes = int64_t{1} << 20;

// (x_i - mean) . (x_j - mean) as an [n, n] tensor; float64 on the CPU.
at::Tensor centred_gram(const at::Tensor& rows) {
  if (!rows.is_cpu()) {  // one GEMM on the device: no cache to fit, fewer kernel launches
    at::Tensor centred = rows - rows.mean(0, /*keepdim=*/true);
    return at::matmul(centred, centred.t());
  }
  const int64_t n = rows.size(0), d = rows.size(1);
  const int64_t block = std::max<int64_t>(256, kBlockBytes / (rows.element_size() * std::max<int64_t>(n, 1)));
  at::Tensor gram = at::zeros({n, n}, rows.options().dtype(at::kDouble));
  for (int64_t start = 0; start < d; start += block) {
    // The mean over rows is per column, so centring block by block is the
    // same centring; the block products are summed in float64.
    at::Tensor part = rows.narrow(1, start, std::min(block, d - start));
    at::Tensor centred = part - part.mean(0, /*keepdim=*/true);
    gram.add_(at::matmul(centred, centred.t()));
  }
  return gram;
}

}  // namespace

at::Tensor pairwise_sq_distances(const at::Tensor& rows) {
  at::Tensor gram = centred_gram(rows);
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
