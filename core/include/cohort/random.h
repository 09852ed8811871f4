// A small, portable, seeded random number generator.
//
// Everything random in Cohort (partitions, batch order, model init seeds,
// sampling) draws from Rng so that a seed gives the same result on every
// machine and standard library. std::*_distribution is implementation-defined
// and must not be used for anything that has to be reproduced.
//
// Rng is a value type; one instance must not be used from two threads at once.
#pragma once

#include <cstdint>
#include <span>
#include <utility>

namespace cohort {

// xoshiro256** seeded through SplitMix64.
class Rng {
 public:
  explicit Rng(uint64_t seed);

  // Derives an independent stream, e.g. Rng(seed).fork(worker_index). The
  // child depends on the whole current state and on `stream`; *this is not
  // advanced.
  Rng fork(uint64_t stream) const;

  uint64_t next_u64();
  // Uniform in [0, bound) without modulo bias (Lemire's method); bound must
  // be > 0 (asserted: a zero bound is a caller bug).
  uint64_t uniform_below(uint64_t bound);
  // Uniform in [0, 1) with 53 random bits.
  double uniform_double();
  // Standard normal (Box-Muller).
  double normal();
  // Gamma(shape, 1) for shape > 0 (Marsaglia-Tsang, with the shape < 1 boost).
  // May return 0 for a tiny shape, where U^(1/shape) underflows.
  double gamma(double shape);

  // Fisher-Yates shuffle in place.
  template <class T>
  void shuffle(std::span<T> items) {
    for (size_t i = items.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(uniform_below(i));
      std::swap(items[i - 1], items[j]);
    }
  }

 private:
  uint64_t s_[4];
};

}  // namespace cohort
