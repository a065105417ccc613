// The HTTP/1.1 server: accepts connections, reads requests with limits and timeouts, hands them
// to the Dispatcher, writes responses, records the access log and HTTP metrics.
//
// Each connection is a coroutine on its own strand of the runtime's io_context. Requests on one
// connection are handled strictly one after another, so pipelined requests are answered in
// order. Limits: MAX_HEADER_BYTES (431), the route's body limit (413), HEADER_TIMEOUT_MS once a
// request has started (408, the slow-loris defence), IDLE_TIMEOUT_MS between keep-alive
// requests (closed quietly), BODY_TIMEOUT_MS for the body (408).
#pragma once

#include "http/dispatcher.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace callgate::net {
class Runtime;
}  // namespace callgate::net
namespace callgate::metrics {
class Registry;
}  // namespace callgate::metrics

namespace callgate::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::size_t max_header_bytes = 16 * 1024;
  std::chrono::milliseconds header_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  std::chrono::milliseconds body_timeout{60'000};
  std::string server_name = "callgate";
  // HTTPS when both are set (PEM files); plain HTTP otherwise.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::size_t websocket_max_message_bytes = 1024 * 1024;
};

class Server {
 public:
  Server(net::Runtime& runtime, const Dispatcher& dispatcher, metrics::Registry& registry,
         ServerOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens; returns the bound port (useful with port 0). Throws std::runtime_error
  // with a message naming the address when it cannot (in use, not an address of this host...).
  std::uint16_t Listen();

  // Starts accepting on the runtime's threads.
  void Start();

  // Graceful stop: no new connections; idle keep-alive connections are closed; requests in
  // flight finish and their connections close after the response. When none is left, or
  // `grace` has passed (the rest are then cut), `on_done` runs on an I/O thread.
  void Shutdown(std::chrono::milliseconds grace, std::function<void()> on_done);

  std::size_t open_connections() const;
  bool tls() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace callgate::http
