// One frame of a message's payload: bytes kept alive by an owner (a
// received network message, a tensor's storage, a copy), passed around by
// value without copying them. It lets the tensor codec and the channels
// hand payloads to each other without naming the transport (ZeroMQ).
//
// A frame is either shared (its owner may also be held by others, e.g. the
// tensor a model was encoded from: read-only) or exclusive (nobody outside
// the frame and its copies sees the bytes, e.g. a received message: whoever
// consumes the last copy may adopt and write them, as decode_payload does
// for a single aligned chunk).
//
// Frames are immutable values; copies share the owner. Thread-safe as far
// as the owner is (shared_ptr counting is).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace cohort {

class Frame {
 public:
  Frame() = default;

  // Bytes that `owner` keeps alive and others may read too: never written.
  static Frame shared(std::shared_ptr<const void> owner, std::span<const uint8_t> bytes);

  // Bytes that only this frame (and its copies) reach.
  static Frame exclusive(std::shared_ptr<void> owner, std::span<uint8_t> bytes);

  // A frame owning a copy of `bytes` (exclusive).
  static Frame copy_of(std::span<const uint8_t> bytes);

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  bool is_exclusive() const { return exclusive_; }

  // The owner, for a consumer that keeps the bytes alive on its own terms
  // (a zero-copy send, a tensor adopting the bytes).
  const std::shared_ptr<const void>& owner() const { return owner_; }

  // The bytes, writable: only for an exclusive frame (nullptr otherwise).
  uint8_t* exclusive_data() const { return exclusive_ ? const_cast<uint8_t*>(data_) : nullptr; }

 private:
  Frame(std::shared_ptr<const void> owner, const uint8_t* data, size_t size, bool exclusive)
      : owner_(std::move(owner)), data_(data), size_(size), exclusive_(exclusive) {}

  std::shared_ptr<const void> owner_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool exclusive_ = false;
};

// The frames of one message's payload, in order.
using Frames = std::vector<Frame>;

// The total bytes of `frames`.
size_t size_of(const Frames& frames);

}  // namespace cohort
