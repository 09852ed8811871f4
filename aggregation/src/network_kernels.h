// Applying a sorting network (sorting_network.h) to a scratch block of
// kTileBytes lanes per wire: one min and one max per lane and comparator.
// The SSE2 and AVX2 versions are x86-64 only (COHORT_X86_NETWORKS); the
// caller checks the CPU before taking an AVX2 one. Private to aggregation.
#pragma once

#include <algorithm>
#include <cstdint>

#include "sorting_network.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define COHORT_X86_NETWORKS 1
#endif

namespace cohort {

// Bytes of consecutive coordinates in one tile: 64 float32 or 32 float64 lanes.
inline constexpr int64_t kTileBytes = 256;

template <typename T>
inline void apply_network_portable(const Comparator* c, const Comparator* end, T* x) {
  constexpr int64_t kLanes = kTileBytes / static_cast<int64_t>(sizeof(T));
  for (; c != end; ++c) {
    T* a = x + c->low * kLanes;
    T* b = x + c->high * kLanes;
    for (int64_t k = 0; k < kLanes; ++k) {
      const T u = a[k];
      const T v = b[k];
      a[k] = std::min(u, v);
      b[k] = std::max(u, v);
    }
  }
}

#ifdef COHORT_X86_NETWORKS
// SSE2 is in every x86-64 CPU.
void apply_network_sse2(const Comparator* c, const Comparator* end, float* x);
void apply_network_sse2(const Comparator* c, const Comparator* end, double* x);
__attribute__((target("avx2"))) void apply_network_avx2(const Comparator* c, const Comparator* end, float* x);
__attribute__((target("avx2"))) void apply_network_avx2(const Comparator* c, const Comparator* end, double* x);

// Copies rows [0, 16 blocks) of a full tile into the block `x`, each group
// of 16 wires sorted on the way (in registers: no scratch traffic), and
// prefetches the same rows `ahead` values further on (none when 0). False on
// a NaN. AVX2.
__attribute__((target("avx2"))) bool load_sorted_blocks_avx2(const float* const* rows, int64_t first,
                                                            int64_t blocks, int64_t ahead, float* x);
__attribute__((target("avx2"))) bool load_sorted_blocks_avx2(const double* const* rows, int64_t first,
                                                            int64_t blocks, int64_t ahead, double* x);
#endif

}  // namespace cohort
