// How a harness reports a broken invariant: it prints what broke and aborts,
// which libFuzzer records as a crash (and saves the input that caused it).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace cohort::fuzz {

inline void check(bool holds, const char* invariant) {
  if (holds) return;
  std::fprintf(stderr, "fuzz invariant violated: %s\n", invariant);
  std::abort();
}

}  // namespace cohort::fuzz
