#include "cohort/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace cohort {
namespace {

TEST(StatusTest, DefaultIsOkWithEmptyMessage) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.to_string(), "OK");
  EXPECT_TRUE(Status::ok_status().ok());
}

TEST(StatusTest, FactoriesSetCodeAndMessage) {
  struct Case {
    Status status;
    Status::Code code;
    int raw;  // the stored value; never renumbered
    const char* name;
  };
  const Case cases[] = {
      {Status::invalid_argument("m"), Status::Code::kInvalidArgument, 1, "invalid argument"},
      {Status::not_found("m"), Status::Code::kNotFound, 2, "not found"},
      {Status::corruption("m"), Status::Code::kCorruption, 3, "corruption"},
      {Status::io_error("m"), Status::Code::kIoError, 4, "I/O error"},
      {Status::failed_precondition("m"), Status::Code::kFailedPrecondition, 5,
       "failed precondition"},
      {Status::resource_exhausted("m"), Status::Code::kResourceExhausted, 6,
       "resource exhausted"},
      {Status::deadline_exceeded("m"), Status::Code::kDeadlineExceeded, 7, "deadline exceeded"},
      {Status::unavailable("m"), Status::Code::kUnavailable, 8, "unavailable"},
      {Status::internal("m"), Status::Code::kInternal, 9, "internal error"},
      {Status::unsupported("m"), Status::Code::kUnsupported, 10, "unsupported"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_FALSE(c.status.ok());
    EXPECT_EQ(c.status.code(), c.code);
    EXPECT_EQ(static_cast<int>(c.status.code()), c.raw);
    EXPECT_EQ(c.status.message(), "m");
    EXPECT_EQ(code_name(c.code), c.name);
    EXPECT_EQ(c.status.to_string(), std::string(c.name) + ": m");
  }
  EXPECT_EQ(code_name(Status::Code::kOk), "OK");
}

TEST(StatusTest, ToStringJoinsCodeNameAndMessage) {
  EXPECT_EQ(Status::not_found("no file /x").to_string(), "not found: no file /x");
}

TEST(StatusTest, WithContextPrefixesMessageAndKeepsCode) {
  Status s = Status::corruption("bad magic").with_context("checkpoint a.ck");
  EXPECT_EQ(s.code(), Status::Code::kCorruption);
  EXPECT_EQ(s.message(), "checkpoint a.ck: bad magic");
  // Nested contexts read outermost first.
  EXPECT_EQ(s.with_context("resume").message(), "resume: checkpoint a.ck: bad magic");
}

TEST(StatusTest, WithContextOnOkStaysOkAndEmpty) {
  Status s = Status().with_context("anything");
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.message(), "");
}

TEST(ResultTest, HoldsValue) {
  Result<int> r = 42;
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r.status().ok());
  EXPECT_EQ(r.value(), 42);
  EXPECT_EQ(*r, 42);
}

TEST(ResultTest, HoldsError) {
  Result<int> r = Status::not_found("gone");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kNotFound);
  EXPECT_EQ(r.status().message(), "gone");
}

TEST(ResultTest, ArrowAndMoveOutOfValue) {
  Result<std::string> r = std::string("abc");
  EXPECT_EQ(r->size(), 3u);
  Result<std::unique_ptr<int>> p = std::make_unique<int>(7);
  std::unique_ptr<int> owned = std::move(p).value();
  ASSERT_NE(owned, nullptr);
  EXPECT_EQ(*owned, 7);
}

// Helpers for the macros: each records how far it got in `reached`.
Result<int> parse_positive(int x) {
  if (x <= 0) return Status::invalid_argument("not positive: " + std::to_string(x));
  return x;
}

Result<int> doubled(int x, bool& reached) {
  COHORT_ASSIGN_OR_RETURN(int v, parse_positive(x));
  reached = true;
  return v * 2;
}

Status check_both(int a, int b, int& checked) {
  COHORT_RETURN_IF_ERROR(parse_positive(a).status());
  ++checked;
  COHORT_RETURN_IF_ERROR(parse_positive(b).status());
  ++checked;
  return Status();
}

Result<int> sum_of_two(int a, int b) {
  // Two uses in one function must not clash.
  COHORT_ASSIGN_OR_RETURN(int x, parse_positive(a));
  COHORT_ASSIGN_OR_RETURN(int y, parse_positive(b));
  return x + y;
}

Result<int> status_into_result(int a) {
  COHORT_RETURN_IF_ERROR(parse_positive(a).status().with_context("a"));
  return a;
}

TEST(StatusMacrosTest, AssignOrReturnBindsValue) {
  bool reached = false;
  Result<int> r = doubled(5, reached);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 10);
  EXPECT_TRUE(reached);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesErrorAndStops) {
  bool reached = false;
  Result<int> r = doubled(-3, reached);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "not positive: -3");
  EXPECT_FALSE(reached);
}

TEST(StatusMacrosTest, AssignOrReturnTwiceInOneFunction) {
  ASSERT_TRUE(sum_of_two(2, 3).ok());
  EXPECT_EQ(*sum_of_two(2, 3), 5);
  EXPECT_EQ(sum_of_two(2, 0).status().message(), "not positive: 0");
}

TEST(StatusMacrosTest, ReturnIfErrorContinuesOnOk) {
  int checked = 0;
  EXPECT_TRUE(check_both(1, 2, checked).ok());
  EXPECT_EQ(checked, 2);
}

TEST(StatusMacrosTest, ReturnIfErrorStopsAtFirstError) {
  int checked = 0;
  Status s = check_both(1, -2, checked);
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "not positive: -2");
  EXPECT_EQ(checked, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorWorksInResultFunction) {
  EXPECT_EQ(*status_into_result(4), 4);
  Result<int> r = status_into_result(0);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "a: not positive: 0");
}

}  // namespace
}  // namespace cohort
