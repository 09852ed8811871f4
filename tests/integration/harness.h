// Helpers for tests that run real `cohort` processes: a child process with
// its output in a file (alone or leading a process group), a command run to
// its end, a scratch directory, a job file writer, a free port, the
// coordinator's published key, and an environment variable set for the
// processes a test starts.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "support/scratch_dir.h"

extern char** environ;

namespace cohort::testing {

// Whether a process runs in the test's process group or leads one of its
// own (as a command started from a shell does, so that a terminal's Ctrl-C
// reaches it and every child it started).
enum class ProcessGroup { kInherit, kOwn };

// `build/cohort <args>` with stdout and stderr in files; killed when dropped.
class CohortProcess {
 public:
  CohortProcess(const std::vector<std::string>& args, const std::filesystem::path& out,
                const std::filesystem::path& err, ProcessGroup group = ProcessGroup::kInherit)
      : out_(out), err_(err) {
    std::vector<std::string> all = {COHORT_BINARY};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : all) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    if (group == ProcessGroup::kOwn) {
      posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP);
      posix_spawnattr_setpgroup(&attributes, 0);
    }
    if (posix_spawn(&pid_, COHORT_BINARY, &actions, &attributes, argv.data(), environ) != 0) pid_ = -1;
    posix_spawnattr_destroy(&attributes);
    posix_spawn_file_actions_destroy(&actions);
    own_group_ = group == ProcessGroup::kOwn;
  }
  CohortProcess(const CohortProcess&) = delete;
  CohortProcess& operator=(const CohortProcess&) = delete;
  ~CohortProcess() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(own_group_ ? -pid_ : pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  bool started() const { return pid_ > 0; }

  // Sends `signal` (SIGTERM, SIGKILL...) unless the process has been reaped.
  void send(int signal) {
    if (pid_ > 0 && !exit_code_) ::kill(pid_, signal);
  }

  // Sends `signal` to the process group it leads (ProcessGroup::kOwn), as a
  // terminal's Ctrl-C does.
  void send_to_group(int signal) {
    if (pid_ > 0 && own_group_) ::kill(-pid_, signal);
  }

  // The exit code once the process has ended, without waiting.
  std::optional<int> poll() {
    int status = 0;
    if (!exit_code_ && pid_ > 0 && ::waitpid(pid_, &status, WNOHANG) == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    return exit_code_;
  }

  // The exit code, or nullopt if still running after `timeout` (then killed).
  std::optional<int> wait(std::chrono::seconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (poll()) return exit_code_;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return std::nullopt;
  }

  std::string stdout_text() const { return read(out_); }
  std::string stderr_text() const { return read(err_); }

 private:
  static std::string read(const std::filesystem::path& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  pid_t pid_ = -1;
  bool own_group_ = false;
  std::optional<int> exit_code_;
  std::filesystem::path out_, err_;
};

// A command run to its end: exit code (-1 if it ran past the timeout and
// was killed), stdout and stderr.
struct CommandRun {
  int code = -1;
  std::string out;
  std::string err;
};

inline CommandRun run_cohort(const std::vector<std::string>& args, const ScratchDir& dir,
                             std::chrono::seconds timeout = std::chrono::seconds(60)) {
  CohortProcess process(args, dir.path() / "out.txt", dir.path() / "err.txt");
  CommandRun run;
  run.code = process.wait(timeout).value_or(-1);
  run.out = process.stdout_text();
  run.err = process.stderr_text();
  return run;
}

// A TCP port on loopback that nothing listened on a moment ago.
inline int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);
  return ntohs(address.sin_port);
}

inline void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

inline std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// Waits until `process` has written `text` to stderr, or has ended, or
// `timeout` passed; whether the text is there.
inline bool wait_for_stderr(CohortProcess& process, std::string_view text, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process.stderr_text().find(text) == std::string::npos) {
    if (process.poll() || std::chrono::steady_clock::now() >= deadline) {
      return process.stderr_text().find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

// Sets an environment variable for the processes started while it lives.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value, 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// The public key (hex) a coordinator with job.output_dir = `output_dir`
// publishes in coordinator.pub when it starts, which workers need to
// connect with CURVE; "" if the file did not appear within `timeout`.
inline std::string coordinator_key(const std::filesystem::path& output_dir,
                                   std::chrono::seconds timeout = std::chrono::seconds(60)) {
  const std::filesystem::path path = output_dir / "coordinator.pub";
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!std::filesystem::exists(path)) {
    if (std::chrono::steady_clock::now() >= deadline) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::vector<std::string> lines = read_lines(path);
  return lines.empty() ? "" : lines.front();
}

}  // namespace cohort::testing
