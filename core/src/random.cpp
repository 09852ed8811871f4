// xoshiro256** (Blackman & Vigna, https://prng.di.unimi.it/) seeded through
// SplitMix64, plus the few distributions Cohort needs. Every distribution is
// written out here so that a seed reproduces bit for bit with any standard
// library (std::*_distribution algorithms are implementation-defined).
#include "cohort/random.h"

#include <cassert>
#include <cmath>
#include <numbers>

namespace cohort {
namespace {

uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// One SplitMix64 step: advances `state` and returns a well-mixed word. Used to
// expand a 64-bit seed into xoshiro's 256-bit state, as its authors advise.
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

Rng::Rng(uint64_t seed) {
  // SplitMix64 is a bijection of its counter, so four consecutive outputs are
  // never all zero (the one state xoshiro cannot leave).
  uint64_t sm = seed;
  for (uint64_t& word : s_) word = splitmix64(sm);
}

Rng Rng::fork(uint64_t stream) const {
  // Chain every state word and the stream id through SplitMix64 so that
  // nearby streams (0, 1, 2, ...) and nearby parents give unrelated seeds.
  uint64_t h = stream;
  uint64_t mixed = splitmix64(h);
  for (uint64_t word : s_) {
    h = mixed ^ word;
    mixed = splitmix64(h);
  }
  return Rng(mixed);
}

uint64_t Rng::next_u64() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::uniform_below(uint64_t bound) {
  assert(bound > 0 && "uniform_below needs a positive bound");
  // Lemire's multiply-and-reject ("Fast Random Integer Generation in an
  // Interval", 2019): the high word of x * bound is uniform once the low
  // words that fall in the short first interval are rejected.
  unsigned __int128 m = static_cast<unsigned __int128>(next_u64()) * bound;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < bound) {
    const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next_u64()) * bound;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

double Rng::uniform_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double Rng::normal() {
  // Box-Muller, cosine branch only; nothing is cached so Rng stays a plain
  // 256-bit value. 1 - U lies in (0, 1], keeping log() finite.
  const double u1 = 1.0 - uniform_double();
  const double u2 = uniform_double();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Rng::gamma(double shape) {
  assert(shape > 0 && "gamma needs a positive shape");
  if (shape < 1.0) {
    // Boost: if X ~ Gamma(a + 1) and U ~ U(0, 1], X * U^(1/a) ~ Gamma(a).
    const double x = gamma(shape + 1.0);
    const double u = 1.0 - uniform_double();
    return x * std::pow(u, 1.0 / shape);
  }
  // Marsaglia & Tsang, "A Simple Method for Generating Gamma Variables" (2000).
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  for (;;) {
    double x = 0.0;
    double v = 0.0;
    do {
      x = normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = uniform_double();
    const double x2 = x * x;
    if (u < 1.0 - 0.0331 * x2 * x2) return d * v;  // cheap squeeze
    if (std::log(u) < 0.5 * x2 + d * (1.0 - v + std::log(v))) return d * v;
  }
}

}  // namespace cohort
