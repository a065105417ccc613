// Internal to http/: runs an accepted upgrade request as a WebSocket session on a connection's
// stream. Defined (and instantiated for both transports) in websocket_session.cpp so that Beast's
// websocket headers are compiled in one translation unit only.
#pragma once

#include "http/detail/connection.hpp"
#include "http/websocket.hpp"

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace callgate::http::detail {

struct WebSocketOptions {
  std::size_t max_message_bytes = 1024 * 1024;
  std::size_t max_queued_frames = 4096;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::string server_name;
};

// Completes the handshake for `request` (already read from `conn`'s stream, with `buffer`
// holding any bytes after it), then runs until the WebSocket closes. `accept.handler` receives
// every event; OnClose is always called once the handshake succeeded.
template <class Stream>
asio::awaitable<void> RunWebSocket(std::shared_ptr<Connection<Stream>> conn,
                                   beast::flat_buffer buffer,
                                   beast::http::request<beast::http::string_body> request,
                                   WebSocketAccept accept, WebSocketOptions options);

}  // namespace callgate::http::detail
