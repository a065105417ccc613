// Internal to http/: a server connection over a given transport, shared by server.cpp and
// websocket_session.cpp. Includes Beast; never include it from a public header.
#pragma once

#include "net/watchdog.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <utility>

namespace callgate::http::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

// What the registry and shutdown need of a connection, whatever its transport.
struct ConnectionBase {
  explicit ConnectionBase(asio::any_io_executor ex)
      : executor(std::move(ex)), watchdog(executor, [this] { Cancel(); }) {}
  virtual ~ConnectionBase() = default;
  ConnectionBase(const ConnectionBase&) = delete;
  ConnectionBase& operator=(const ConnectionBase&) = delete;
  virtual void Cancel() = 0;  // cancels pending I/O; call on `executor`
  // The executor of the connection's I/O thread (its io_context's own: one thread runs it, so
  // the connection's handlers never run concurrently and need no strand).
  asio::any_io_executor executor;
  // The deadline of what the connection waits for (a request, its head or body, the client
  // taking the answer): its expiry cancels the pending I/O (see net/watchdog.hpp).
  net::Watchdog watchdog;
  std::atomic<bool> idle{true};  // waiting for the first byte of a request
  std::string remote;
  // Set while the connection is a WebSocket: closes it with 1001 on graceful shutdown.
  // Only touched on `executor`.
  std::function<void()> drain;
  // Set while the connection waits for the next chunk of a streamed body (no socket operation
  // is pending then): Cancel() calls it to cut that wait. Only touched on `executor`.
  std::function<void()> interrupt;
};

// Bare sockets: the watchdog keeps every deadline, so beast::tcp_stream's expiry bookkeeping on
// each read and write would be cost without use.
using PlainStream = asio::ip::tcp::socket;
using TlsStream = beast::ssl_stream<asio::ip::tcp::socket>;

template <class Stream>
struct Connection final : ConnectionBase {
  template <class... Args>
  explicit Connection(asio::any_io_executor ex, Args&&... args)
      : ConnectionBase(std::move(ex)), stream(std::forward<Args>(args)...) {}
  void Cancel() override {
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream).cancel(ignored);
    if (interrupt) interrupt();
  }
  Stream stream;
};

}  // namespace callgate::http::detail
