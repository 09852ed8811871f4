// Per-peer message rate limits: a token bucket for each peer, refilled at
// `rate` tokens per second up to `burst`. Each message takes a token; a
// peer without one is refused. Only the first refusal of a streak is worth
// an answer, so that a flooding peer cannot make the coordinator flood back.
// Not thread-safe (the coordinator's receive loop owns it).
#pragma once

#include <chrono>
#include <string>
#include <unordered_map>

namespace cohort {

class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Decision {
    kAllow,
    kRefuseAndTell,    // the first refusal since the peer's last accepted message
    kRefuseSilently,   // later ones
  };

  // rate <= 0 allows everything. burst >= 1.
  RateLimiter(double rate, double burst);

  Decision admit(const std::string& peer, Clock::time_point now);

  // Peers remembered (each costs a few dozen bytes).
  size_t peers() const { return buckets_.size(); }

 private:
  struct Bucket {
    double tokens = 0.0;
    Clock::time_point refilled;
    bool refusing = false;
  };
  // Beyond this many peers, the buckets of peers that are back to a full
  // bucket (idle long enough) are dropped: forgetting them changes nothing.
  static constexpr size_t kForgetIdleBeyond = 4096;

  void forget_idle_peers(Clock::time_point now);
  double refill(Bucket& bucket, Clock::time_point now) const;

  double rate_;
  double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace cohort
