#include "rate_limiter.h"

#include <algorithm>

namespace cohort {

RateLimiter::RateLimiter(double rate, double burst) : rate_(rate), burst_(std::max(1.0, burst)) {}

double RateLimiter::refill(Bucket& bucket, Clock::time_point now) const {
  const double elapsed = std::chrono::duration<double>(now - bucket.refilled).count();
  bucket.tokens = std::min(burst_, bucket.tokens + std::max(0.0, elapsed) * rate_);
  bucket.refilled = now;
  return bucket.tokens;
}

RateLimiter::Decision RateLimiter::admit(const std::string& peer, Clock::time_point now) {
  if (rate_ <= 0.0) return Decision::kAllow;
  auto it = buckets_.find(peer);
  if (it == buckets_.end()) {
    if (buckets_.size() >= kForgetIdleBeyond) forget_idle_peers(now);
    it = buckets_.emplace(peer, Bucket{burst_, now, false}).first;
  }
  Bucket& bucket = it->second;
  if (refill(bucket, now) >= 1.0) {
    bucket.tokens -= 1.0;
    bucket.refusing = false;
    return Decision::kAllow;
  }
  const bool first = !bucket.refusing;
  bucket.refusing = true;
  return first ? Decision::kRefuseAndTell : Decision::kRefuseSilently;
}

void RateLimiter::forget_idle_peers(Clock::time_point now) {
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    it = refill(it->second, now) >= burst_ ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace cohort
