#include "cohort/status.h"

namespace cohort {

std::string_view code_name(Status::Code code) {
  switch (code) {
    case Status::Code::kOk: return "OK";
    case Status::Code::kInvalidArgument: return "invalid argument";
    case Status::Code::kNotFound: return "not found";
    case Status::Code::kCorruption: return "corruption";
    case Status::Code::kIoError: return "I/O error";
    case Status::Code::kFailedPrecondition: return "failed precondition";
    case Status::Code::kResourceExhausted: return "resource exhausted";
    case Status::Code::kDeadlineExceeded: return "deadline exceeded";
    case Status::Code::kUnavailable: return "unavailable";
    case Status::Code::kInternal: return "internal error";
    case Status::Code::kUnsupported: return "unsupported";
  }
  return "unknown";
}

std::string Status::to_string() const {
  if (ok()) return "OK";
  return std::string(code_name(code_)) + ": " + message_;
}

Status Status::with_context(std::string_view context) const {
  if (ok()) return *this;
  return Status(code_, std::string(context) + ": " + message_);
}

Status status_of_exception(const std::exception& error, std::string_view context) {
  std::string_view what = error.what();
  what = what.substr(0, what.find("\nException raised from"));
  return Status::internal(std::string(context) + ": " + std::string(what));
}

}  // namespace cohort
