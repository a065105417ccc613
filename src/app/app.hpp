// The composition root: builds every component from the configuration, runs the service and
// stops the components in reverse order. The only place that knows concrete types.
#pragma once

#include "config/config.hpp"

#include <cstdint>
#include <functional>
#include <string>

namespace callgate::app {

struct ServeOptions {
  std::string port_file;  // when set, the bound port is written there once listening
  // Called once the server listens, before requests are served (e.g. `demo` prints how to try
  // it and points its simulator's webhooks at the gateway).
  std::function<void(std::uint16_t port)> on_listening;
};

// Runs `callgate serve` until SIGINT/SIGTERM. Returns the process exit code: 0 after a graceful
// stop, 1 when a component cannot start (the reason is logged).
int Serve(const config::Config& config, const ServeOptions& options);

// "callgate 0.1.0 (commit abc123, g++ 12.2.0)"
std::string VersionString();

}  // namespace callgate::app
