// `cohort demo` and its worker processes (issue 21): Ctrl-C used to kill the
// demo at once and leave its workers running as orphans (about 600 MB each,
// until their idle timeout), and `--rounds 0` hung. The demo now stops its
// children on every exit path: a first Ctrl-C stops the job cleanly, and a
// demo killed outright takes its workers with it.
#include <gtest/gtest.h>

#include <dirent.h>

#include <fstream>

#include "harness.h"

namespace cohort::testing {
namespace {

using std::chrono::seconds;

// Pids of live processes whose command line mentions `needle` (the demo's
// output directory is in each worker's --state-dir).
std::vector<pid_t> processes_mentioning(const std::string& needle) {
  std::vector<pid_t> found;
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) return found;
  while (const dirent* entry = ::readdir(proc)) {
    const std::string name = entry->d_name;
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream in("/proc/" + name + "/cmdline", std::ios::binary);
    const std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ifstream stat_file("/proc/" + name + "/stat");
    std::string stat;
    std::getline(stat_file, stat);
    const bool zombie = stat.find(") Z ") != std::string::npos;
    if (!zombie && cmdline.find(needle) != std::string::npos) found.push_back(std::stoi(name));
  }
  ::closedir(proc);
  return found;
}

// Whether `count` worker processes of the demo in `output_dir` run, within
// `timeout` (a forked worker shows its own command line once it exec'd).
bool workers_running(const std::string& output_dir, size_t count, seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (processes_mentioning(output_dir + "/worker-").size() != count) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

bool no_worker_left(const std::string& output_dir, seconds timeout) { return workers_running(output_dir, 0, timeout); }

// Short rounds (a twentieth of an epoch of the small model), many of them: the
// tests stop it after the first.
std::vector<std::string> long_demo(const std::string& output_dir) {
  return {"demo",          "--workers", "2",          "--rounds",     "500",     "--model", "mlp",
          "--local-epochs", "0.05",     "--no-proof", "--output-dir", output_dir};
}

// Ctrl-C in a terminal signals the whole process group: the demo, and its
// workers with it.
TEST(DemoProcesses, CtrlCStopsTheDemoAndEveryWorker) {
  ScratchDir dir;
  const std::string output_dir = (dir.path() / "demo").string();
  CohortProcess demo(long_demo(output_dir), dir.path() / "demo.out", dir.path() / "demo.err", ProcessGroup::kOwn);
  ASSERT_TRUE(wait_for_stderr(demo, "round 1/500", seconds(240))) << demo.stderr_text();
  ASSERT_TRUE(workers_running(output_dir, 2, seconds(30)));
  demo.send_to_group(SIGINT);
  ASSERT_EQ(demo.wait(seconds(120)), 0) << demo.stderr_text();
  EXPECT_NE(demo.stderr_text().find("stopped after round"), std::string::npos) << demo.stderr_text();
  EXPECT_TRUE(no_worker_left(output_dir, seconds(30)));
}

// SIGTERM to the demo alone: it stops the job and its workers itself.
TEST(DemoProcesses, SigtermToTheDemoAloneStopsItsWorkers) {
  ScratchDir dir;
  const std::string output_dir = (dir.path() / "demo").string();
  CohortProcess demo(long_demo(output_dir), dir.path() / "demo.out", dir.path() / "demo.err");
  ASSERT_TRUE(wait_for_stderr(demo, "round 1/500", seconds(240))) << demo.stderr_text();
  demo.send(SIGTERM);
  ASSERT_EQ(demo.wait(seconds(120)), 0) << demo.stderr_text();
  EXPECT_TRUE(no_worker_left(output_dir, seconds(30)));
}

// kill -9 leaves the demo no exit path of its own: the kernel ends its
// workers (they asked to die with their parent).
TEST(DemoProcesses, ADemoKilledOutrightTakesItsWorkersWithIt) {
  ScratchDir dir;
  const std::string output_dir = (dir.path() / "demo").string();
  CohortProcess demo(long_demo(output_dir), dir.path() / "demo.out", dir.path() / "demo.err");
  ASSERT_TRUE(wait_for_stderr(demo, "started 2 worker process(es)", seconds(240))) << demo.stderr_text();
  ASSERT_TRUE(workers_running(output_dir, 2, seconds(30)));
  demo.send(SIGKILL);
  demo.wait(seconds(30));
  EXPECT_TRUE(no_worker_left(output_dir, seconds(30)));
}

}  // namespace
}  // namespace cohort::testing
