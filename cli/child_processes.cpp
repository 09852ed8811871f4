#include "child_processes.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <thread>

namespace cohort::cli {
namespace {

// Runs in the forked child of a multi-threaded parent: only
// async-signal-safe calls until exec.
[[noreturn]] void become_child(pid_t parent, char* const* argv) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::execv("/proc/self/exe", argv);
  ::_exit(127);
}

}  // namespace

ChildProcesses::~ChildProcesses() {
  for (pid_t pid : pids_) ::kill(pid, SIGKILL);
  for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
}

Status ChildProcesses::spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const std::string& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) return Status::io_error(std::string("cannot start a process: ") + std::strerror(errno));
  if (pid == 0) become_child(parent, argv.data());
  pids_.push_back(pid);
  return Status();
}

int ChildProcesses::wait_all(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int clean = 0;
  std::vector<pid_t> running = std::move(pids_);
  pids_.clear();
  while (!running.empty()) {
    for (auto it = running.begin(); it != running.end();) {
      int status = 0;
      if (::waitpid(*it, &status, WNOHANG) != *it) {
        ++it;
        continue;
      }
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++clean;
      it = running.erase(it);
    }
    if (running.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (pid_t pid : running) ::kill(pid, SIGKILL);
      for (pid_t pid : running) ::waitpid(pid, nullptr, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return clean;
}

}  // namespace cohort::cli
