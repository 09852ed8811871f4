// The receipts a worker keeps: "<state_dir>/receipts.jsonl", one receipt a
// line in receipt_json's form (receipt.h; docs/LEDGER.md, "A worker's
// receipts file"), each appended and fsynced as it arrives. It knows which
// tasks it holds, so that a receipt a Welcome repeats is kept once. It does
// not check signatures: the caller keeps only receipts it verified.
// Resource type; one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <set>

#include "cohort/receipt.h"
#include "cohort/status.h"

namespace cohort {

class ReceiptStore {
 public:
  static constexpr const char* kFileName = "receipts.jsonl";

  // The receipts already in `state_dir` (none when the file or the
  // directory does not exist yet; a line torn by a crash is cut off first,
  // durable_file.h). Errors: the file cannot be read; Corruption, naming
  // the file, for a line that is not a receipt (either key of the task id
  // reads: "task", or the older "task_id").
  static Result<ReceiptStore> open(std::filesystem::path state_dir);

  // Whether the receipt of `task_id` is held.
  bool holds(uint64_t task_id) const { return task_ids_.contains(task_id); }

  // Appends `receipt`, making the state directory when it is missing. It
  // is held from then on even when the write fails, so that it is not
  // offered again. Errors: the line could not be written durably.
  Status add(const Receipt& receipt);

 private:
  ReceiptStore(std::filesystem::path state_dir, std::set<uint64_t> task_ids)
      : state_dir_(std::move(state_dir)), task_ids_(std::move(task_ids)) {}

  std::filesystem::path state_dir_;
  std::set<uint64_t> task_ids_;  // of the receipts in the file
};

}  // namespace cohort
