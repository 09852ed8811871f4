#include "network_kernels.h"

#ifdef COHORT_X86_NETWORKS
#include <immintrin.h>

namespace cohort {

void apply_network_sse2(const Comparator* c, const Comparator* end, float* x) {
  for (; c != end; ++c) {
    float* a = x + c->low * 64;
    float* b = x + c->high * 64;
    for (int k = 0; k < 64; k += 4) {
      const __m128 u = _mm_load_ps(a + k);
      const __m128 v = _mm_load_ps(b + k);
      _mm_store_ps(a + k, _mm_min_ps(u, v));
      _mm_store_ps(b + k, _mm_max_ps(u, v));
    }
  }
}

void apply_network_sse2(const Comparator* c, const Comparator* end, double* x) {
  for (; c != end; ++c) {
    double* a = x + c->low * 32;
    double* b = x + c->high * 32;
    for (int k = 0; k < 32; k += 2) {
      const __m128d u = _mm_load_pd(a + k);
      const __m128d v = _mm_load_pd(b + k);
      _mm_store_pd(a + k, _mm_min_pd(u, v));
      _mm_store_pd(b + k, _mm_max_pd(u, v));
    }
  }
}

__attribute__((target("avx2"))) void apply_network_avx2(const Comparator* c,
                                                       const Comparator* end, float* x) {
  for (; c != end; ++c) {
    float* a = x + c->low * 64;
    float* b = x + c->high * 64;
    for (int k = 0; k < 64; k += 8) {
      const __m256 u = _mm256_load_ps(a + k);
      const __m256 v = _mm256_load_ps(b + k);
      _mm256_store_ps(a + k, _mm256_min_ps(u, v));
      _mm256_store_ps(b + k, _mm256_max_ps(u, v));
    }
  }
}

__attribute__((target("avx2"))) void apply_network_avx2(const Comparator* c,
                                                       const Comparator* end, double* x) {
  for (; c != end; ++c) {
    double* a = x + c->low * 32;
    double* b = x + c->high * 32;
    for (int k = 0; k < 32; k += 4) {
      const __m256d u = _mm256_load_pd(a + k);
      const __m256d v = _mm256_load_pd(b + k);
      _mm256_store_pd(a + k, _mm256_min_pd(u, v));
      _mm256_store_pd(b + k, _mm256_max_pd(u, v));
    }
  }
}

// Batcher's network on 16 registers r0..r15 (the first four stages of
// odd_even_merge_sort): each half sorted by 19 comparators, then merged by
// 25. MIN and MAX are the vector min and max.
#define COHORT_CX(MIN, MAX, a, b) \
  do {                            \
    const auto low_ = MIN(a, b);  \
    b = MAX(a, b);                \
    a = low_;                     \
  } while (0)
#define COHORT_SORT8(MIN, MAX, a0, a1, a2, a3, a4, a5, a6, a7)                                \
  do {                                                                                        \
    COHORT_CX(MIN, MAX, a0, a1); COHORT_CX(MIN, MAX, a2, a3);                                 \
    COHORT_CX(MIN, MAX, a4, a5); COHORT_CX(MIN, MAX, a6, a7);                                 \
    COHORT_CX(MIN, MAX, a0, a2); COHORT_CX(MIN, MAX, a1, a3);                                 \
    COHORT_CX(MIN, MAX, a4, a6); COHORT_CX(MIN, MAX, a5, a7);                                 \
    COHORT_CX(MIN, MAX, a1, a2); COHORT_CX(MIN, MAX, a5, a6);                                 \
    COHORT_CX(MIN, MAX, a0, a4); COHORT_CX(MIN, MAX, a1, a5);                                 \
    COHORT_CX(MIN, MAX, a2, a6); COHORT_CX(MIN, MAX, a3, a7);                                 \
    COHORT_CX(MIN, MAX, a2, a4); COHORT_CX(MIN, MAX, a3, a5);                                 \
    COHORT_CX(MIN, MAX, a1, a2); COHORT_CX(MIN, MAX, a3, a4); COHORT_CX(MIN, MAX, a5, a6);    \
  } while (0)
#define COHORT_SORT16(MIN, MAX)                                                               \
  do {                                                                                        \
    COHORT_SORT8(MIN, MAX, r0, r1, r2, r3, r4, r5, r6, r7);                                   \
    COHORT_SORT8(MIN, MAX, r8, r9, r10, r11, r12, r13, r14, r15);                             \
    COHORT_CX(MIN, MAX, r0, r8); COHORT_CX(MIN, MAX, r1, r9);                                 \
    COHORT_CX(MIN, MAX, r2, r10); COHORT_CX(MIN, MAX, r3, r11);                               \
    COHORT_CX(MIN, MAX, r4, r12); COHORT_CX(MIN, MAX, r5, r13);                               \
    COHORT_CX(MIN, MAX, r6, r14); COHORT_CX(MIN, MAX, r7, r15);                               \
    COHORT_CX(MIN, MAX, r4, r8); COHORT_CX(MIN, MAX, r5, r9);                                 \
    COHORT_CX(MIN, MAX, r6, r10); COHORT_CX(MIN, MAX, r7, r11);                               \
    COHORT_CX(MIN, MAX, r2, r4); COHORT_CX(MIN, MAX, r3, r5);                                 \
    COHORT_CX(MIN, MAX, r6, r8); COHORT_CX(MIN, MAX, r7, r9);                                 \
    COHORT_CX(MIN, MAX, r10, r12); COHORT_CX(MIN, MAX, r11, r13);                             \
    COHORT_CX(MIN, MAX, r1, r2); COHORT_CX(MIN, MAX, r3, r4); COHORT_CX(MIN, MAX, r5, r6);    \
    COHORT_CX(MIN, MAX, r7, r8); COHORT_CX(MIN, MAX, r9, r10); COHORT_CX(MIN, MAX, r11, r12); \
    COHORT_CX(MIN, MAX, r13, r14);                                                            \
  } while (0)

// The body of load_sorted_blocks_avx2 (network_kernels.h) for one type.
#define COHORT_LOAD_SORTED_BLOCKS(T, V, LANES, LOADU, STORE, MIN, MAX, CMP, OR, ZERO, MASK)     \
  V nan = ZERO();                                                                             \
  constexpr int64_t kStep = static_cast<int64_t>(sizeof(V) / sizeof(T));                      \
  constexpr int64_t kLine = 64 / static_cast<int64_t>(sizeof(T));                             \
  for (int64_t b = 0; b < blocks; ++b) {                                                      \
    const T* const* src = rows + 16 * b;                                                      \
    T* dst = x + 16 * b * LANES;                                                              \
    for (int64_t k = 0; k < LANES; k += kStep) {                                              \
      if (ahead != 0 && k % kLine == 0) {                                                     \
        for (int i = 0; i < 16; ++i) __builtin_prefetch(src[i] + first + ahead + k, 0, 2);    \
      }                                                                                       \
      V r0 = LOADU(src[0] + first + k), r1 = LOADU(src[1] + first + k);                       \
      V r2 = LOADU(src[2] + first + k), r3 = LOADU(src[3] + first + k);                       \
      V r4 = LOADU(src[4] + first + k), r5 = LOADU(src[5] + first + k);                       \
      V r6 = LOADU(src[6] + first + k), r7 = LOADU(src[7] + first + k);                       \
      V r8 = LOADU(src[8] + first + k), r9 = LOADU(src[9] + first + k);                       \
      V r10 = LOADU(src[10] + first + k), r11 = LOADU(src[11] + first + k);                   \
      V r12 = LOADU(src[12] + first + k), r13 = LOADU(src[13] + first + k);                   \
      V r14 = LOADU(src[14] + first + k), r15 = LOADU(src[15] + first + k);                   \
      nan = OR(nan, OR(OR(CMP(r0, r1, _CMP_UNORD_Q), CMP(r2, r3, _CMP_UNORD_Q)),              \
                       OR(CMP(r4, r5, _CMP_UNORD_Q), CMP(r6, r7, _CMP_UNORD_Q))));            \
      nan = OR(nan, OR(OR(CMP(r8, r9, _CMP_UNORD_Q), CMP(r10, r11, _CMP_UNORD_Q)),            \
                       OR(CMP(r12, r13, _CMP_UNORD_Q), CMP(r14, r15, _CMP_UNORD_Q))));        \
      COHORT_SORT16(MIN, MAX);                                                                \
      STORE(dst + 0 * LANES + k, r0); STORE(dst + 1 * LANES + k, r1);                         \
      STORE(dst + 2 * LANES + k, r2); STORE(dst + 3 * LANES + k, r3);                         \
      STORE(dst + 4 * LANES + k, r4); STORE(dst + 5 * LANES + k, r5);                         \
      STORE(dst + 6 * LANES + k, r6); STORE(dst + 7 * LANES + k, r7);                         \
      STORE(dst + 8 * LANES + k, r8); STORE(dst + 9 * LANES + k, r9);                         \
      STORE(dst + 10 * LANES + k, r10); STORE(dst + 11 * LANES + k, r11);                     \
      STORE(dst + 12 * LANES + k, r12); STORE(dst + 13 * LANES + k, r13);                     \
      STORE(dst + 14 * LANES + k, r14); STORE(dst + 15 * LANES + k, r15);                     \
    }                                                                                         \
  }                                                                                           \
  return MASK(nan) == 0

__attribute__((target("avx2"))) bool load_sorted_blocks_avx2(const float* const* rows,
                                                            int64_t first, int64_t blocks,
                                                            int64_t ahead, float* x) {
  COHORT_LOAD_SORTED_BLOCKS(float, __m256, 64, _mm256_loadu_ps, _mm256_store_ps, _mm256_min_ps,
                            _mm256_max_ps, _mm256_cmp_ps, _mm256_or_ps, _mm256_setzero_ps,
                            _mm256_movemask_ps);
}

__attribute__((target("avx2"))) bool load_sorted_blocks_avx2(const double* const* rows,
                                                            int64_t first, int64_t blocks,
                                                            int64_t ahead, double* x) {
  COHORT_LOAD_SORTED_BLOCKS(double, __m256d, 32, _mm256_loadu_pd, _mm256_store_pd, _mm256_min_pd,
                            _mm256_max_pd, _mm256_cmp_pd, _mm256_or_pd, _mm256_setzero_pd,
                            _mm256_movemask_pd);
}
#undef COHORT_LOAD_SORTED_BLOCKS
#undef COHORT_SORT16
#undef COHORT_SORT8
#undef COHORT_CX

}  // namespace cohort
#endif  // COHORT_X86_NETWORKS
