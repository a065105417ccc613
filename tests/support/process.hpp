// Test support: runs a program as a child process with a clean, explicit environment, its
// stdout and stderr captured to a file. Stops only the process it started, by pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace callgate::testing {

class ChildProcess {
 public:
  struct Options {
    std::vector<std::string> args;                   // args[0] is the program path
    std::map<std::string, std::string> environment;  // the whole environment (plus PATH, ASAN_*)
    std::filesystem::path working_dir;               // empty = inherit
    std::filesystem::path log_file;                  // stdout + stderr
  };

  explicit ChildProcess(Options options);
  ~ChildProcess();  // SIGKILL and reap, if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int signal_number) const;
  // Exit code (or 128 + signal number), or nothing if it did not exit within `timeout`.
  std::optional<int> WaitExit(std::chrono::milliseconds timeout);
  bool Running();
  std::string Output() const;

 private:
  Options options_;
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
};

// A fresh temporary directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// Waits until `path` holds a port number (a --port-file) or `process` has exited.
// Returns the port, or 0.
std::uint16_t WaitForPortFile(const std::filesystem::path& path, ChildProcess& process,
                              std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The callgate binary under test (set by CMake).
std::string CallgateBinary();

// Polls `condition` every 10 ms until true or `timeout`.
template <class Condition>
bool WaitFor(Condition condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

}  // namespace callgate::testing
