#include "receipt_store.h"

#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "cohort/durable_file.h"

namespace cohort {

Result<ReceiptStore> ReceiptStore::open(std::filesystem::path state_dir) {
  const std::filesystem::path path = state_dir / kFileName;
  COHORT_ASSIGN_OR_RETURN(std::vector<std::string> lines, read_complete_lines(path));
  std::set<uint64_t> task_ids;
  for (const std::string& line : lines) {
    Result<Receipt> receipt = parse_receipt_json(line);
    if (!receipt.ok()) {
      return Status::corruption(path.string() + ": a line that is not a receipt (" + receipt.status().message() +
                                "): " + line.substr(0, 80));
    }
    task_ids.insert(receipt->task_id);
  }
  return ReceiptStore(std::move(state_dir), std::move(task_ids));
}

Status ReceiptStore::add(const Receipt& receipt) {
  task_ids_.insert(receipt.task_id);
  std::error_code ignored;  // a directory that cannot be made fails the write below
  std::filesystem::create_directories(state_dir_, ignored);
  return append_line_durably(state_dir_ / kFileName, receipt_json(receipt));
}

}  // namespace cohort
