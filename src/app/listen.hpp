// What `serve` and `sim` both do around their server: bind, report the port, and stop
// gracefully on SIGINT/SIGTERM (a second signal stops at once).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace callgate::net {
class Runtime;
}  // namespace callgate::net
namespace callgate::http {
class Server;
}  // namespace callgate::http

namespace callgate::app {

// Writes the bound port to `path` through a temporary file and a rename, so a reader never
// sees a partial number. False when it cannot.
bool WritePortFile(const std::string& path, std::uint16_t port);

// Work to finish after the server drained and before the runtime stops (it may need the
// runtime, e.g. live conversations closing their WebSockets): `before_stop` runs on a thread of
// its own, which the destructor joins. Declare it after the runtime, so it is joined first.
struct StopHooks {
  std::function<void()> before_stop;
  std::thread thread;
  ~StopHooks() {
    if (thread.joinable()) thread.join();
  }
};

// Binds `server`, writes `port_file` (when not empty) and installs the signal handling: the
// first signal drains the server for up to `grace`, runs `hooks->before_stop` (when given),
// then stops `runtime`; a second signal stops it at once. Returns the bound port, or nothing
// after logging why (the caller exits with 1). The objects must outlive runtime.Run().
std::optional<std::uint16_t> ListenWithGracefulStop(net::Runtime& runtime, http::Server& server,
                                                    const std::string& port_file,
                                                    std::chrono::milliseconds grace,
                                                    StopHooks* hooks = nullptr);

}  // namespace callgate::app
