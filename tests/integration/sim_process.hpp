// Test fixture: `callgate sim` as a separate process on 127.0.0.1 (port from --port-file), the
// upstream every end-to-end test talks to.
#pragma once

#include "support/http_client.hpp"
#include "support/process.hpp"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace callgate::testing {

class SimProcess {
 public:
  explicit SimProcess(std::vector<std::string> extra_args = {},
                      std::string api_key = "sim-test-key-0123456789")
      : api_key_(std::move(api_key)) {
    std::vector<std::string> args = {
        CallgateBinary(), "sim",   "--port", "0", "--port-file", (dir_.path() / "port").string(),
        "--api-key",      api_key_};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    process_ =
        std::make_unique<ChildProcess>(ChildProcess::Options{.args = args,
                                                             .environment = {},
                                                             .working_dir = dir_.path(),
                                                             .log_file = dir_.path() / "sim.log"});
    port_ = WaitForPortFile(dir_.path() / "port", *process_);
  }

  bool started() const { return port_ != 0; }
  std::uint16_t port() const { return port_; }
  const std::string& api_key() const { return api_key_; }
  ChildProcess& process() { return *process_; }
  const TempDir& dir() const { return dir_; }
  std::string Output() const { return process_->Output(); }

 private:
  TempDir dir_;
  std::string api_key_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

}  // namespace callgate::testing
