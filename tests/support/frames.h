// Payload frames from and to text, for tests of the wire and the channels.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cohort/frame.h"

namespace cohort::testing {

inline Frame frame_of(std::string_view text) {
  return Frame::copy_of({reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

inline std::string text_of(const Frame& frame) { return {reinterpret_cast<const char*>(frame.data()), frame.size()}; }

}  // namespace cohort::testing
