// Errors as values.
//
// Expected failures (a malformed file, a rejected update, a late worker, a
// bad config key) cross module boundaries as a Status or a Result<T>, never as
// an exception. Exceptions are reserved for bugs and lost resources and are
// caught once per round or in main().
//
// Status and Result are value types: cheap to move, safe to copy, and not
// thread-safe to mutate concurrently (like any value). Both are
// [[nodiscard]]: a failure cannot be dropped by accident; a caller that
// means to ignore one says so with (void).
#pragma once

#include <cassert>
#include <exception>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cohort {

class [[nodiscard]] Status {
 public:
  // Stored in logs and on the wire (proto ErrorCode mirrors these):
  // never renumber.
  enum class Code {
    kOk = 0,
    kInvalidArgument = 1,    // the caller's input is malformed or out of range
    kNotFound = 2,           // a file, key or worker does not exist
    kCorruption = 3,         // stored or received bytes fail validation
    kIoError = 4,            // the OS or the network failed
    kFailedPrecondition = 5, // valid input in the wrong state (wrong round)
    kResourceExhausted = 6,  // a size, count or rate limit was exceeded
    kDeadlineExceeded = 7,   // a deadline passed
    kUnavailable = 8,        // a requested facility is absent (e.g. CUDA)
    kInternal = 9,           // a bug: an invariant did not hold
    kUnsupported = 10,       // a version or format this build does not speak
  };

  Status() = default;  // OK

  static Status ok_status() { return Status(); }
  static Status invalid_argument(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status not_found(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status io_error(std::string msg) { return {Code::kIoError, std::move(msg)}; }
  static Status failed_precondition(std::string msg) { return {Code::kFailedPrecondition, std::move(msg)}; }
  static Status resource_exhausted(std::string msg) { return {Code::kResourceExhausted, std::move(msg)}; }
  static Status deadline_exceeded(std::string msg) { return {Code::kDeadlineExceeded, std::move(msg)}; }
  static Status unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status internal(std::string msg) { return {Code::kInternal, std::move(msg)}; }
  static Status unsupported(std::string msg) { return {Code::kUnsupported, std::move(msg)}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid argument: <message>", or "OK".
  std::string to_string() const;

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status with_context(std::string_view context) const;

 private:
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
};

std::string_view code_name(Status::Code code);

// The Status of an exception caught where none may escape (a round's step, a
// task): Internal "<context>: <what>", without the C++ stack trace that
// LibTorch appends to its messages ("Exception raised from ...").
Status status_of_exception(const std::exception& error, std::string_view context);

// Either a T or a non-OK Status. Accessing value() of an error is a bug.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT
    assert(!std::get<Status>(state_).ok() && "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }

  // The error, or OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(state_); }

  T& value() & { return std::get<T>(state_); }
  const T& value() const& { return std::get<T>(state_); }
  T&& value() && { return std::get<T>(std::move(state_)); }

  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> state_;
};

// Runs `body` (which returns a Status or a Result) so that an exception it
// throws, a LibTorch shape error say, comes back as status_of_exception()
// instead of ending the process.
template <class Body>
auto catching_exceptions(std::string_view context, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& error) {
    return status_of_exception(error, context);
  }
}

}  // namespace cohort

// Returns early from the enclosing function when `expr` yields a non-OK
// Status. Works in functions returning Status or Result<T>.
#define COHORT_RETURN_IF_ERROR(expr)             \
  do {                                           \
    ::cohort::Status cohort_status_ = (expr);    \
    if (!cohort_status_.ok()) return cohort_status_; \
  } while (0)

#define COHORT_CONCAT_INNER_(a, b) a##b
#define COHORT_CONCAT_(a, b) COHORT_CONCAT_INNER_(a, b)

// `COHORT_ASSIGN_OR_RETURN(auto x, f());` binds x to f()'s value or returns
// its error from the enclosing function.
#define COHORT_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto COHORT_CONCAT_(cohort_result_, __LINE__) = (expr);                    \
  if (!COHORT_CONCAT_(cohort_result_, __LINE__).ok())                        \
    return COHORT_CONCAT_(cohort_result_, __LINE__).status();                \
  lhs = std::move(COHORT_CONCAT_(cohort_result_, __LINE__)).value()
