// The worker's receipts file (receipt_store.h): receipts it adds are held
// and read back, a file from before the "task" key (with "task_id") still
// loads, and a line that is not a receipt is Corruption.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "receipt_store.h"
#include "support/scratch_dir.h"

namespace cohort {
namespace {

using testing::ScratchDir;

Receipt receipt_of(uint64_t task_id) {
  Receipt r;
  r.round = 2;
  r.task_id = task_id;
  r.worker.fill(0x11);
  r.update_hash.fill(0x22);
  r.verdict = Verdict::kPassed;
  r.reward = 5'000'000;
  r.chain_seq = 17;
  r.chain_hash.fill(0x33);
  r.coordinator.fill(0x44);
  r.signature.fill(0x55);
  return r;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

TEST(ReceiptStoreTest, AnEmptyStateDirectoryHoldsNone) {
  ScratchDir dir;
  Result<ReceiptStore> store = ReceiptStore::open(dir.path() / "not-yet");
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_FALSE(store->holds(1));
}

TEST(ReceiptStoreTest, AddedReceiptsAreHeldAndReadBack) {
  ScratchDir dir;
  const std::filesystem::path state = dir.path() / "state";  // made by the first add
  {
    Result<ReceiptStore> store = ReceiptStore::open(state);
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE(store->add(receipt_of(7)).ok());
    ASSERT_TRUE(store->add(receipt_of(9)).ok());
    EXPECT_TRUE(store->holds(7));
  }
  Result<ReceiptStore> reopened = ReceiptStore::open(state);
  ASSERT_TRUE(reopened.ok()) << reopened.status().to_string();
  EXPECT_TRUE(reopened->holds(7));
  EXPECT_TRUE(reopened->holds(9));
  EXPECT_FALSE(reopened->holds(8));
}

// A line as workers wrote them before the receipt's JSON form moved to
// receipt.h and took the ledger's key, "task".
TEST(ReceiptStoreTest, AnOldFileWithTaskIdStillLoads) {
  ScratchDir dir;
  const std::string hex32_11(64, '1'), hex32_22(64, '2');
  write_file(dir.path() / ReceiptStore::kFileName,
             R"({"round":1,"task_id":4294967297,"worker":")" + hex32_11 + R"(","update_hash":")" + hex32_22 +
                 R"(","verdict":"unaudited","reason":"","reward":2500000,"slashed":0,"chain_seq":12,)" +
                 R"("chain_hash":")" + hex32_22 + R"(","coordinator":")" + hex32_11 + R"(","signature":")" +
                 std::string(128, 'a') + "\"}\n");
  Result<ReceiptStore> store = ReceiptStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_TRUE(store->holds(4294967297));
  // New receipts go on in the current form, beside the old line.
  ASSERT_TRUE(store->add(receipt_of(5)).ok());
  Result<ReceiptStore> reopened = ReceiptStore::open(dir.path());
  ASSERT_TRUE(reopened.ok()) << reopened.status().to_string();
  EXPECT_TRUE(reopened->holds(4294967297));
  EXPECT_TRUE(reopened->holds(5));
}

TEST(ReceiptStoreTest, ATornLastLineIsCutOff) {
  ScratchDir dir;
  write_file(dir.path() / ReceiptStore::kFileName, receipt_json(receipt_of(3)) + "\n" + R"({"round":2,"ta)");
  Result<ReceiptStore> store = ReceiptStore::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.status().to_string();
  EXPECT_TRUE(store->holds(3));
}

TEST(ReceiptStoreTest, ALineThatIsNotAReceiptIsCorruption) {
  ScratchDir dir;
  write_file(dir.path() / ReceiptStore::kFileName, "{\"task\":3}\n");
  Result<ReceiptStore> store = ReceiptStore::open(dir.path());
  EXPECT_EQ(store.status().code(), Status::Code::kCorruption);
  EXPECT_NE(store.status().message().find(ReceiptStore::kFileName), std::string::npos) << store.status().message();
}

}  // namespace
}  // namespace cohort
