// Server-side WebSockets as the application sees them: no Beast, no sockets.
//
// A route added with Router::AddWebSocket() has an acceptor that looks at the upgrade request and
// either refuses it with an HTTP response or returns a handler. The server then completes the
// handshake and calls the handler: OnOpen once, OnText/OnBinary per message, OnClose exactly once
// at the end. Callbacks for one connection never run concurrently (they run on its strand), but
// the handler may be called from different I/O threads over time, and its own timers may run
// concurrently with callbacks: handlers guard their state.
//
// WebSocketConnection methods are thread-safe and never block: frames are queued (bounded) and
// written by a single writer, in order.
#pragma once

#include "http/message.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::http {

class WebSocketConnection {
 public:
  virtual ~WebSocketConnection() = default;
  // Queues a text frame. False when the connection is closing/closed or the queue is full.
  virtual bool SendText(std::string message) = 0;
  // Sends a close frame with `code` after the frames already queued; OnClose follows.
  virtual void Close(std::uint16_t code, std::string reason) = 0;
  // Drops the TCP connection without a close frame (fault injection); OnClose gets 1006.
  virtual void Abort() = 0;
  virtual const std::string& remote() const = 0;
};

class WebSocketHandler {
 public:
  virtual ~WebSocketHandler() = default;
  virtual void OnOpen(std::shared_ptr<WebSocketConnection> connection) = 0;
  virtual void OnText(std::string_view message) = 0;
  virtual void OnBinary(std::string_view /*message*/) {}
  // `code` is the close code sent or received; 1006 when the connection dropped without one.
  virtual void OnClose(std::uint16_t code, std::string_view reason) = 0;
};

struct WebSocketAccept {
  std::shared_ptr<WebSocketHandler> handler;  // accept with this handler...
  std::optional<Response> refusal;            // ...or answer the upgrade request with this
  std::string subprotocol;                    // echoed in Sec-WebSocket-Protocol when set
};

using WebSocketAcceptor = std::function<WebSocketAccept(const Request& request)>;

}  // namespace callgate::http
