#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace callgate::testing {

ChildProcess::ChildProcess(Options options) : options_(std::move(options)) {
  std::map<std::string, std::string> environment = options_.environment;
  for (const char* inherited : {"PATH", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS"}) {
    if (const char* value = std::getenv(inherited); value && !environment.contains(inherited)) {
      environment[inherited] = value;
    }
  }
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : environment)
    env_strings.push_back(k + "=" + v);
  std::vector<char*> argv;
  for (auto& arg : options_.args)
    argv.push_back(arg.data());
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& entry : env_strings)
    envp.push_back(entry.data());
  envp.push_back(nullptr);

  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // If the test process dies without running our destructor (a crash), the child is killed
    // too instead of lingering. (PR_SET_PDEATHSIG follows the forking thread: the fixtures fork
    // from the test's own thread.)
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);  // the parent died before prctl took effect
    if (!options_.log_file.empty()) {
      const int fd = open(options_.log_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        close(fd);
      }
    }
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    if (!options_.working_dir.empty() && chdir(options_.working_dir.c_str()) != 0) _exit(126);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (Running()) {
    kill(pid_, SIGKILL);
    WaitExit(std::chrono::seconds(10));
  }
}

void ChildProcess::Signal(int signal_number) const {
  if (pid_ > 0) kill(pid_, signal_number);
}

std::optional<int> ChildProcess::WaitExit(std::chrono::milliseconds timeout) {
  if (exit_code_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

bool ChildProcess::Running() {
  return pid_ > 0 && !WaitExit(std::chrono::milliseconds(0)).has_value();
}

std::string ChildProcess::Output() const {
  std::ifstream in(options_.log_file);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "callgate-test-XXXXXX").string();
  if (mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::uint16_t WaitForPortFile(const std::filesystem::path& path, ChildProcess& process,
                              std::chrono::milliseconds timeout) {
  std::uint16_t port = 0;
  WaitFor(
      [&] {
        std::ifstream in(path);
        int value = 0;
        if (in >> value && value > 0 && value < 65536) port = static_cast<std::uint16_t>(value);
        return port != 0 || !process.Running();
      },
      timeout);
  return port;
}

std::string CallgateBinary() {
  return CALLGATE_BINARY;
}

}  // namespace callgate::testing
