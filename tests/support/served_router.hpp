// Test support: the real http::Server (the code `callgate serve` and `callgate sim` run) on
// 127.0.0.1, port chosen by the kernel, its runtime run on a thread of its own; stopped
// gracefully on destruction. Tests own the runtime, router and dispatcher, so they can hand
// the same runtime to schedulers and other components.
#pragma once

#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/runtime.hpp"

#include <chrono>
#include <cstdint>
#include <thread>

namespace callgate::testing {

class ServedRouter {
 public:
  ServedRouter(net::Runtime& runtime, const http::Dispatcher& dispatcher,
               http::ServerOptions options = {.host = "127.0.0.1", .port = 0});
  ~ServedRouter();  // Stop()
  ServedRouter(const ServedRouter&) = delete;
  ServedRouter& operator=(const ServedRouter&) = delete;

  std::uint16_t port() const { return port_; }
  http::Server& server() { return server_; }
  metrics::Registry& registry() { return registry_; }

  // Graceful shutdown, then the runtime stops; returns once its thread has ended. Idempotent.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(2));
  // Waits for the runtime's thread after the test stopped the runtime itself.
  void Join();

 private:
  net::Runtime& runtime_;
  metrics::Registry registry_;
  http::Server server_;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

}  // namespace callgate::testing
