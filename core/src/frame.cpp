#include "cohort/frame.h"

#include <cstring>

namespace cohort {

Frame Frame::shared(std::shared_ptr<const void> owner, std::span<const uint8_t> bytes) {
  return Frame(std::move(owner), bytes.data(), bytes.size(), /*exclusive=*/false);
}

Frame Frame::exclusive(std::shared_ptr<void> owner, std::span<uint8_t> bytes) {
  return Frame(std::move(owner), bytes.data(), bytes.size(), /*exclusive=*/true);
}

Frame Frame::copy_of(std::span<const uint8_t> bytes) {
  auto copy = std::make_shared<std::vector<uint8_t>>(bytes.begin(), bytes.end());
  std::span<uint8_t> view(copy->data(), copy->size());
  return exclusive(std::move(copy), view);
}

size_t size_of(const Frames& frames) {
  size_t total = 0;
  for (const Frame& frame : frames) total += frame.size();
  return total;
}

}  // namespace cohort
