#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cohort/aggregation.h"

namespace cohort {
namespace {

RuleRegistry builtin_registry() {
  RuleRegistry registry;
  register_builtin_rules(registry);
  return registry;
}

TEST(RuleRegistryTest, BuiltinRulesIncludeFedavg) {
  RuleRegistry registry = builtin_registry();
  std::vector<std::string> names = registry.names();
  EXPECT_NE(std::find(names.begin(), names.end(), "fedavg"), names.end());
  Result<std::unique_ptr<AggregationRule>> rule = registry.create("fedavg", RuleParams(0, {}));
  ASSERT_TRUE(rule.ok()) << rule.status().to_string();
  ASSERT_NE(rule->get(), nullptr);
  EXPECT_EQ((*rule)->name(), "fedavg");
}

TEST(RuleRegistryTest, EmptyRegistryKnowsNothing) {
  RuleRegistry registry;
  EXPECT_TRUE(registry.names().empty());
  EXPECT_EQ(registry.create("fedavg", RuleParams(0, {})).status().code(),
            Status::Code::kInvalidArgument);
}

TEST(RuleRegistryTest, UnknownRuleListsKnownNames) {
  RuleRegistry registry;
  registry.add("median", [](RuleParams&) -> Result<std::unique_ptr<AggregationRule>> {
    return Status::internal("not built in this test");
  });
  registry.add("fedavg", [](RuleParams&) -> Result<std::unique_ptr<AggregationRule>> {
    return Status::internal("not built in this test");
  });
  Result<std::unique_ptr<AggregationRule>> r = registry.create("krum", RuleParams(1, {}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  const std::string msg = r.status().message();
  EXPECT_NE(msg.find("'krum'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("known: fedavg, median"), std::string::npos) << msg;
}

TEST(RuleRegistryTest, NamesAreSorted) {
  RuleRegistry registry;
  auto factory = [](RuleParams&) -> Result<std::unique_ptr<AggregationRule>> {
    return Status::internal("unused");
  };
  registry.add("trimmed-mean", factory);
  registry.add("bulyan", factory);
  registry.add("krum", factory);
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"bulyan", "krum", "trimmed-mean"}));
}

TEST(RuleRegistryTest, UnknownParameterIsRejectedByName) {
  RuleRegistry registry = builtin_registry();
  Result<std::unique_ptr<AggregationRule>> r =
      registry.create("fedavg", RuleParams(0, {{"beta", "0.1"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find("'beta'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("'fedavg'"), std::string::npos) << r.status().message();
}

TEST(RuleRegistryTest, NegativeFIsRejected) {
  RuleRegistry registry = builtin_registry();
  Result<std::unique_ptr<AggregationRule>> r = registry.create("fedavg", RuleParams(-1, {}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE(registry.create("fedavg", RuleParams(3, {})).ok());
}

// A rule that reads one parameter, to test how the registry drives factories.
class Scaled final : public AggregationRule {
 public:
  explicit Scaled(double scale) : scale_(scale) {}
  std::string_view name() const override { return "scaled"; }
  Result<AggregationResult> aggregate(const at::Tensor& rows, std::span<const double> weights,
                                      const AggregationContext&) const override {
    COHORT_ASSIGN_OR_RETURN(AggregationResult r, fedavg(rows, weights));
    r.aggregate = r.aggregate * scale_;
    return r;
  }
  double scale() const { return scale_; }

 private:
  double scale_;
};

RuleRegistry scaled_registry() {
  RuleRegistry registry;
  registry.add("scaled", [](RuleParams& params) -> Result<std::unique_ptr<AggregationRule>> {
    COHORT_ASSIGN_OR_RETURN(double scale, params.get_double("scale", 1.0));
    if (scale <= 0.0) return Status::invalid_argument("scale must be > 0");
    return std::unique_ptr<AggregationRule>(std::make_unique<Scaled>(scale));
  });
  return registry;
}

TEST(RuleRegistryTest, FactoryReadsItsParameters) {
  RuleRegistry registry = scaled_registry();
  Result<std::unique_ptr<AggregationRule>> r =
      registry.create("scaled", RuleParams(0, {{"scale", "2.5"}}));
  ASSERT_TRUE(r.ok()) << r.status().to_string();
  EXPECT_EQ(static_cast<const Scaled&>(**r).scale(), 2.5);
  Result<std::unique_ptr<AggregationRule>> fallback = registry.create("scaled", RuleParams(0, {}));
  ASSERT_TRUE(fallback.ok());
  EXPECT_EQ(static_cast<const Scaled&>(**fallback).scale(), 1.0);
}

TEST(RuleRegistryTest, FactoryErrorPropagates) {
  RuleRegistry registry = scaled_registry();
  Result<std::unique_ptr<AggregationRule>> r =
      registry.create("scaled", RuleParams(0, {{"scale", "-1"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(), "scale must be > 0");
  Result<std::unique_ptr<AggregationRule>> bad =
      registry.create("scaled", RuleParams(0, {{"scale", "two"}}));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'scale'"), std::string::npos);
}

TEST(RuleRegistryTest, ReadParameterWithExtraOneIsStillRejected) {
  RuleRegistry registry = scaled_registry();
  Result<std::unique_ptr<AggregationRule>> r =
      registry.create("scaled", RuleParams(0, {{"scale", "2"}, {"sclae", "3"}}));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("'sclae'"), std::string::npos) << r.status().message();
}

// ------------------------------------------------------------ RuleParams

TEST(RuleParamsTest, GetDoubleParsesOrFallsBack) {
  RuleParams p(2, {{"a", "0.25"}, {"b", "1e-3"}, {"c", "-7"}});
  EXPECT_EQ(p.f(), 2);
  EXPECT_EQ(*p.get_double("a", 9.0), 0.25);
  EXPECT_EQ(*p.get_double("b", 9.0), 0.001);
  EXPECT_EQ(*p.get_double("c", 9.0), -7.0);
  EXPECT_EQ(*p.get_double("missing", 9.0), 9.0);
}

TEST(RuleParamsTest, GetDoubleRejectsNonNumbers) {
  for (const char* text : {"", "abc", "1.5x", " 1", "nan", "inf", "-inf", "1e999"}) {
    RuleParams p(0, {{"beta", text}});
    Result<double> r = p.get_double("beta", 0.0);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("'beta'"), std::string::npos) << r.status().message();
  }
}

TEST(RuleParamsTest, GetIntParsesOrFallsBack) {
  RuleParams p(0, {{"k", "42"}, {"m", "-7"}, {"big", "9223372036854775807"}});
  EXPECT_EQ(*p.get_int("k", 0), 42);
  EXPECT_EQ(*p.get_int("m", 0), -7);
  EXPECT_EQ(*p.get_int("big", 0), INT64_C(9223372036854775807));
  EXPECT_EQ(*p.get_int("missing", 5), 5);
}

TEST(RuleParamsTest, GetIntRejectsNonIntegers) {
  for (const char* text : {"", "4.5", "1e3", "x", "12 ", "9223372036854775808"}) {
    RuleParams p(0, {{"k", text}});
    Result<int64_t> r = p.get_int("k", 0);
    ASSERT_FALSE(r.ok()) << "'" << text << "'";
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    EXPECT_NE(r.status().message().find("'k'"), std::string::npos);
  }
}

TEST(RuleParamsTest, CheckAllUsedNamesTheUnreadKey) {
  RuleParams p(0, {{"a", "1"}, {"b", "2"}});
  ASSERT_TRUE(p.get_int("a", 0).ok());
  Status s = p.check_all_used("rule 'krum'");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "rule 'krum' has no parameter 'b'");
  ASSERT_TRUE(p.get_double("b", 0).ok());
  EXPECT_TRUE(p.check_all_used("rule 'krum'").ok());
}

TEST(RuleParamsTest, MissingKeyIsNotMarkedUsed) {
  RuleParams p(0, {});
  ASSERT_TRUE(p.get_int("absent", 1).ok());
  EXPECT_TRUE(p.check_all_used("x").ok());
}

}  // namespace
}  // namespace cohort
