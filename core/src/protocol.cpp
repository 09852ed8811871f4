#include "cohort/protocol.h"

#include <cstdio>

#include "cohort/proto/cohort.capnp.h"

namespace cohort {

static_assert(proto::PROTOCOL_VERSION == kProtocolVersion, "proto/cohort.capnp and protocol.h disagree");

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return 4;
    case DType::kFloat64: return 8;
    case DType::kFloat16: return 2;
    case DType::kBFloat16: return 2;
  }
  return 0;
}

std::string_view dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat32: return "float32";
    case DType::kFloat64: return "float64";
    case DType::kFloat16: return "float16";
    case DType::kBFloat16: return "bfloat16";
  }
  return "unknown";
}

Result<DType> parse_dtype(std::string_view name) {
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kFloat16, DType::kBFloat16}) {
    if (name == dtype_name(d)) return d;
  }
  return Status::invalid_argument("unknown dtype '" + std::string(name) +
                                  "' (expected float32, float64, float16 or bfloat16)");
}

int64_t TensorSpec::numel() const {
  int64_t n = 1;
  for (int64_t dim : shape) n *= dim;
  return n;
}

std::string_view error_code_name(ErrorCode code) {
  switch (code) {
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kMalformedMessage: return "malformed message";
    case ErrorCode::kUnsupportedVersion: return "unsupported version";
    case ErrorCode::kNotRegistered: return "not registered";
    case ErrorCode::kWrongRound: return "wrong round";
    case ErrorCode::kUnknownTask: return "unknown task";
    case ErrorCode::kDuplicate: return "duplicate";
    case ErrorCode::kTooLarge: return "too large";
    case ErrorCode::kInvalidUpdate: return "invalid update";
    case ErrorCode::kDeadlineExceeded: return "deadline exceeded";
    case ErrorCode::kUnavailable: return "unavailable";
    case ErrorCode::kBadSignature: return "bad signature";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kRateLimited: return "rate limited";
  }
  return "unknown";
}

std::string_view message_kind(const Message& message) {
  static constexpr std::string_view kNames[] = {"hello",  "welcome",   "task",          "update",
                                                "round-result", "error", "bye", "challenge",
                                                "reveal", "model-request", "model-archive"};
  return kNames[message.index()];
}

ErrorCode error_code_for(const Status& status) {
  switch (status.code()) {
    case Status::Code::kCorruption: return ErrorCode::kMalformedMessage;
    case Status::Code::kResourceExhausted: return ErrorCode::kTooLarge;
    case Status::Code::kDeadlineExceeded: return ErrorCode::kDeadlineExceeded;
    case Status::Code::kUnavailable: return ErrorCode::kUnavailable;
    case Status::Code::kInvalidArgument: return ErrorCode::kInvalidUpdate;
    case Status::Code::kFailedPrecondition: return ErrorCode::kWrongRound;
    case Status::Code::kUnsupported: return ErrorCode::kUnsupportedVersion;
    default: return ErrorCode::kInternal;
  }
}

std::string reveal_tensor_name(uint32_t segment, bool after, bool momentum) {
  char name[64];
  std::snprintf(name, sizeof(name), "s%06u.%s.%s", segment, after ? "after" : "before",
                momentum ? "momentum" : "parameters");
  return name;
}

}  // namespace cohort
