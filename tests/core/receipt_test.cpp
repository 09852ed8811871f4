// The JSON form of a receipt (receipt.h): every field round-trips, the key
// of the task id is the ledger's "task", and the older "task_id" form of a
// worker's receipts file still reads.
#include "cohort/receipt.h"

#include <gtest/gtest.h>

#include <string>

namespace cohort {
namespace {

Receipt sample_receipt() {
  Receipt r;
  r.round = 3;
  r.task_id = 99;
  r.worker.fill(0x01);
  r.update_hash.fill(0x02);
  r.verdict = Verdict::kFailed;
  r.reason = "segment 7: parameters differ after re-execution";
  r.reward = 0;
  r.slashed = 150'000'000;
  r.chain_seq = 41;
  r.chain_hash.fill(0x03);
  r.coordinator.fill(0x04);
  for (size_t i = 0; i < r.signature.size(); ++i) r.signature[i] = static_cast<uint8_t>(i);
  return r;
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return at == std::string::npos ? text : text.replace(at, from.size(), to);
}

TEST(ReceiptJsonTest, EveryFieldRoundTrips) {
  const Receipt receipt = sample_receipt();
  Result<Receipt> parsed = parse_receipt_json(receipt_json(receipt));
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(*parsed, receipt);
}

TEST(ReceiptJsonTest, TheTaskIsUnderTheLedgersKey) {
  const std::string json = receipt_json(sample_receipt());
  EXPECT_EQ(json.rfind(R"({"round":3,"task":99,"worker":"0101)", 0), 0u) << json;
  EXPECT_EQ(json.find("task_id"), std::string::npos) << json;
}

TEST(ReceiptJsonTest, TheOlderTaskIdFormStillReads) {
  const Receipt receipt = sample_receipt();
  const std::string old = replaced(receipt_json(receipt), R"("task":)", R"("task_id":)");
  Result<Receipt> parsed = parse_receipt_json(old);
  ASSERT_TRUE(parsed.ok()) << parsed.status().to_string();
  EXPECT_EQ(*parsed, receipt);
}

TEST(ReceiptJsonTest, WhatIsNotAReceiptIsCorruption) {
  const std::string good = receipt_json(sample_receipt());
  for (const std::string& bad : {std::string("not json"), std::string("[1,2]"), std::string("{}"),
                                 replaced(good, R"("task":99)", R"("task":-1)"),
                                 replaced(good, R"("round":3)", R"("round":4294967296)"),
                                 replaced(good, R"("verdict":"failed")", R"("verdict":"fine")"),
                                 replaced(good, R"("worker":"01)", R"("worker":"zz)"),
                                 replaced(good, R"("signature":"00)", R"("signature":")"),
                                 replaced(good, R"("reward":0)", R"("reward":"0")")}) {
    Result<Receipt> parsed = parse_receipt_json(bad);
    EXPECT_EQ(parsed.status().code(), Status::Code::kCorruption) << bad;
  }
}

}  // namespace
}  // namespace cohort
