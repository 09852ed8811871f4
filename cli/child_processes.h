// Child processes that cannot outlive the command that started them (the
// demo's workers): each asks the kernel for SIGKILL when its parent dies, so
// even a parent killed with SIGKILL leaves no orphan, and whatever is still
// running when the object goes away is killed and reaped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "cohort/status.h"

namespace cohort::cli {

class ChildProcesses {
 public:
  ChildProcesses() = default;
  ChildProcesses(const ChildProcesses&) = delete;
  ChildProcesses& operator=(const ChildProcesses&) = delete;
  ~ChildProcesses();  // kills (SIGKILL) and reaps every child still running

  // Starts this executable again with `args` (args[0] is its name). The
  // child starts with SIGINT and SIGTERM unblocked, whatever the parent's
  // mask. Must be called from the thread that lives as long as the process
  // (the main thread): the kernel's parent-death signal follows the thread.
  Status spawn(const std::vector<std::string>& args);

  // Waits up to `timeout` for every child to exit, then kills the rest.
  // Returns how many exited with status 0.
  int wait_all(std::chrono::milliseconds timeout);

  size_t size() const { return pids_.size(); }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace cohort::cli
