// cohort: one executable, several subcommands.
#include <malloc.h>

#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "cohort/status.h"
#include "cohort/version.h"
#include "commands.h"

namespace {

constexpr std::string_view kUsage = R"(usage: cohort <command> [options]

commands:
  demo          run a local federated job on Fashion-MNIST: one coordinator
                and several worker processes on loopback
  coordinator   serve a job described by a TOML file (docs/CONFIG.md)
  worker        contribute this machine: train tasks from a coordinator
  simulate      run a job with all its workers in this process (experiments)
  aggregate     run a robust aggregation rule on saved updates (.npy)
  keygen        make an Ed25519 identity (a worker's account, a coordinator's key)
  ledger        verify a payout ledger, show balances and history, deposit stake
  privacy       the epsilon a differentially private job spends, or the noise it needs
  version       print the version

Run `cohort <command> --help` for a command's options.
)";

// Every round allocates and frees tensors of tens of megabytes (stacked
// updates, gradients, attack line searches). By default glibc serves such
// blocks with mmap and returns them with munmap, so each one is paid for again
// in page faults: 35-40% of `cohort simulate`'s time under an optimal attack.
// Keeping freed blocks in the heap for reuse removes that; the resident size
// still tracks the peak in use.
void reuse_large_allocations() {
  constexpr int kOneGiB = 1 << 30;
  mallopt(M_MMAP_THRESHOLD, kOneGiB);
  mallopt(M_TRIM_THRESHOLD, kOneGiB);
}

int run_command(std::string_view command, const std::vector<std::string>& args) {
  using namespace cohort::cli;
  if (command == "demo") return demo_command(args);
  if (command == "coordinator") return coordinator_command(args);
  if (command == "worker") return worker_command(args);
  if (command == "simulate") return simulate_command(args);
  if (command == "aggregate") return aggregate_command(args);
  if (command == "keygen") return keygen_command(args);
  if (command == "ledger") return ledger_command(args);
  if (command == "privacy") return privacy_command(args);
  if (command == "version" || command == "--version") {
    std::cout << cohort::kSoftwareVersion << "\n";
    return kExitOk;
  }
  if (command == "help" || command == "--help" || command == "-h") {
    std::cout << kUsage;
    return kExitOk;
  }
  std::cerr << "cohort: unknown command '" << command << "'\n\n" << kUsage;
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cohort::cli;
  reuse_large_allocations();
  if (argc < 2) {
    std::cerr << kUsage;
    return kExitUsage;
  }
  const std::string_view command = argv[1];
  // Expected failures are values; what escapes a command anyway (a bug, a
  // LibTorch or ZeroMQ exception no step caught) is named here instead of
  // ending in std::terminate.
  try {
    return run_command(command, std::vector<std::string>(argv + 2, argv + argc));
  } catch (const std::exception& error) {
    std::cerr << "cohort " << command << ": " << cohort::status_of_exception(error, "unexpected error").to_string()
              << "\n";
    return kExitFailure;
  }
}
