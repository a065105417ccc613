// What `serve` and `sim` both do around their server: bind, report the port, and stop
// gracefully on SIGINT/SIGTERM (a second signal stops at once).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

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

// Binds `server`, writes `port_file` (when not empty) and installs the signal handling: the
// first signal drains the server for up to `grace` then stops `runtime`, a second stops it at
// once. Returns the bound port, or nothing after logging why (the caller exits with 1). Both
// objects must outlive runtime.Run().
std::optional<std::uint16_t> ListenWithGracefulStop(net::Runtime& runtime, http::Server& server,
                                                    const std::string& port_file,
                                                    std::chrono::milliseconds grace);

}  // namespace callgate::app
