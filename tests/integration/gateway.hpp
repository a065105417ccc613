// Test fixture: a real `callgate serve` process on 127.0.0.1, port chosen by the kernel and
// reported through --port-file, with its own temporary data directory as working directory
// (so no stray .env is read) and a clean environment.
#pragma once

#include "support/http_client.hpp"
#include "support/process.hpp"

#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace callgate::testing {

using Env = std::map<std::string, std::string>;

class Gateway {
 public:
  explicit Gateway(std::map<std::string, std::string> environment = {},
                   std::vector<std::string> extra_args = {}) {
    std::vector<std::string> args = {
        CallgateBinary(), "serve", "--host",      "127.0.0.1",
        "--port",         "0",     "--port-file", (dir_.path() / "port").string()};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    if (!environment.contains("DATABASE_URL")) {
      environment["DATABASE_URL"] = "sqlite:" + (dir_.path() / "data" / "callgate.db").string();
    }
    process_ = std::make_unique<ChildProcess>(
        ChildProcess::Options{.args = args,
                              .environment = environment,
                              .working_dir = dir_.path(),
                              .log_file = dir_.path() / "gateway.log"});
    port_ = WaitForPortFile(dir_.path() / "port", *process_);
    if (port_ == 0) failed_to_start_ = true;
  }

  bool started() const { return !failed_to_start_; }
  std::uint16_t port() const { return port_; }
  ChildProcess& process() { return *process_; }
  const TempDir& dir() const { return dir_; }
  std::string Output() const { return process_->Output(); }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
  bool failed_to_start_ = false;
};

}  // namespace callgate::testing
