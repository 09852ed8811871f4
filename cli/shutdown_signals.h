// SIGTERM and SIGINT as a request to stop: the first one asks the command to
// finish its current step and leave cleanly; a second one ends the process
// at once (as kill -9 would: everything durable is already on disk).
//
// Why a thread and no handler: a signal handler may only touch
// async-signal-safe state, which would have to be a global (a flag or a
// self-pipe's descriptor). Instead the signals are blocked in every thread
// and one thread owned by this object takes them with sigwait() and
// requests the stop through an ordinary std::stop_source. Construct it
// first thing in a command, before any other thread exists (ZeroMQ's and
// LibTorch's threads inherit the blocked mask), and keep it alive as long
// as its token is used. One per process.
#pragma once

#include <signal.h>

#include <atomic>
#include <stop_token>
#include <string>
#include <thread>

namespace cohort::cli {

class ShutdownSignals {
 public:
  // `program` names the process in the message printed on a signal.
  explicit ShutdownSignals(std::string program);
  // Stops the signal thread and restores the previous signal mask.
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // Requested when the first SIGTERM or SIGINT arrives.
  std::stop_token token() const { return stop_.get_token(); }

 private:
  void wait_for_signals();

  std::string program_;
  sigset_t signals_{};
  sigset_t previous_mask_{};
  std::stop_source stop_;
  std::atomic<bool> closing_ = false;  // set by the destructor before it wakes the thread
  std::jthread thread_;
};

}  // namespace cohort::cli
