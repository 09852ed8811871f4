#include "shutdown_signals.h"

#include <pthread.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace cohort::cli {
namespace {

void say(const std::string& text) { (void)!::write(STDERR_FILENO, text.data(), text.size()); }

}  // namespace

ShutdownSignals::ShutdownSignals(std::string program) : program_(std::move(program)) {
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals_, &previous_mask_);
  thread_ = std::jthread([this] { wait_for_signals(); });
}

ShutdownSignals::~ShutdownSignals() {
  closing_ = true;
  pthread_kill(thread_.native_handle(), SIGTERM);  // wakes sigwait()
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &previous_mask_, nullptr);
}

void ShutdownSignals::wait_for_signals() {
  while (true) {
    int signal = 0;
    if (sigwait(&signals_, &signal) != 0 || closing_) return;
    if (stop_.stop_requested()) {
      say(program_ + ": " + strsignal(signal) + " again: exiting at once\n");
      std::_Exit(128 + signal);
    }
    say(program_ + ": " + strsignal(signal) + ": finishing the current step, then stopping (again to exit at once)\n");
    stop_.request_stop();
  }
}

}  // namespace cohort::cli
