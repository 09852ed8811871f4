// Pairwise squared L2 distances between rows, with one matrix product.
// Private to the aggregation library (Krum, Bulyan, NNM, MDA share it).
#pragma once

#include <ATen/core/Tensor.h>

namespace cohort {

// D[i][j] = ||x_i - x_j||^2 for rows [n, d], as an [n, n] float64 CPU tensor
// symmetric, with an exact zero diagonal and no negative entries. Computed as
// |x_i|^2 + |x_j|^2 - 2 x_i.x_j from the rows' Gram matrix: on the CPU one
// GEMM per block of columns in the rows' dtype, summed in float64; on a
// device one GEMM. The rows are first centred on their mean, which leaves
// distances unchanged but removes most of the float32 cancellation when the
// rows are far from the origin and close to each other.
at::Tensor pairwise_sq_distances(const at::Tensor& rows);

}  // namespace cohort
