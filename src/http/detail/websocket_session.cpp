#include "http/detail/websocket_session.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <deque>
#include <mutex>

namespace callgate::http::detail {
namespace {

namespace websocket = beast::websocket;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

// One WebSocket over a connection's stream. The stream is used by reference: the connection
// (registry, shutdown) keeps owning it. Reads happen in RunWebSocket's loop; every write (text
// frames and the close frame) goes through `Writer`, the single writer coroutine.
template <class Stream>
class Session final : public WebSocketConnection,
                      public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(std::shared_ptr<Connection<Stream>> conn, std::size_t max_queued)
      : conn_(std::move(conn)), ws_(conn_->stream), max_queued_(max_queued) {}

  bool SendText(std::string message) override {
    {
      std::lock_guard lock(mutex_);
      if (closing_ || queue_.size() >= max_queued_) return false;
      queue_.push_back(std::move(message));
    }
    Kick();
    return true;
  }

  void Close(std::uint16_t code, std::string reason) override {
    {
      std::lock_guard lock(mutex_);
      if (closing_) return;
      closing_ = true;
      close_code_ = code;
      close_reason_ = std::move(reason);
    }
    Kick();
  }

  void Abort() override {
    auto conn = conn_;
    asio::post(conn->executor, [conn] {
      boost::system::error_code ignored;
      auto& socket = beast::get_lowest_layer(conn->stream);
      socket.set_option(asio::socket_base::linger(true, 0), ignored);
      socket.close(ignored);
    });
  }

  const std::string& remote() const override { return conn_->remote; }

  websocket::stream<Stream&>& ws() { return ws_; }

  // The close code we sent, if we closed first.
  std::optional<std::pair<std::uint16_t, std::string>> SentClose() {
    std::lock_guard lock(mutex_);
    if (!close_sent_) return std::nullopt;
    return std::make_pair(close_code_, close_reason_);
  }

 private:
  // Starts the writer on the connection's thread unless it is already running.
  void Kick() {
    auto self = this->shared_from_this();
    asio::post(conn_->executor, [self] {
      if (self->writing_) return;
      self->writing_ = true;
      asio::co_spawn(self->conn_->executor, Writer(self), asio::detached);
    });
  }

  // A static coroutine taking `self` by value: the frame owns the session from creation, before
  // co_spawn starts it.
  static asio::awaitable<void> Writer(std::shared_ptr<Session> self) { co_await self->Write(); }

  asio::awaitable<void> Write() {
    while (true) {
      std::string frame;
      bool send_close = false;
      {
        std::lock_guard lock(mutex_);
        if (!queue_.empty()) {
          frame = std::move(queue_.front());
          queue_.pop_front();
        } else if (closing_ && !close_sent_) {
          send_close = true;
          close_sent_ = true;
        } else {
          break;
        }
      }
      if (send_close) {
        // A failure here means the peer is gone; the read loop reports the end. (A named local,
        // not a temporary, in the co_await: see the g++ 12 note in server.cpp.)
        const websocket::close_reason close(static_cast<websocket::close_code>(close_code_),
                                            close_reason_);
        co_await ws_.async_close(close, kTuple);
        break;
      }
      ws_.text(true);
      auto [ec, n] = co_await ws_.async_write(asio::buffer(frame), kTuple);
      if (ec) {
        std::lock_guard lock(mutex_);
        closing_ = true;
        queue_.clear();
        break;
      }
    }
    writing_ = false;  // on the connection's thread
    // Frames queued after the loop decided to stop are picked up by the next Kick().
    bool more = false;
    {
      std::lock_guard lock(mutex_);
      more = !queue_.empty() || (closing_ && !close_sent_);
    }
    if (more) Kick();
  }

  std::shared_ptr<Connection<Stream>> conn_;
  websocket::stream<Stream&> ws_;
  std::size_t max_queued_;
  std::mutex mutex_;
  std::deque<std::string> queue_;
  bool closing_ = false;
  bool close_sent_ = false;
  std::uint16_t close_code_ = 1000;
  std::string close_reason_;
  bool writing_ = false;  // connection's thread only
};

}  // namespace

template <class Stream>
asio::awaitable<void> RunWebSocket(std::shared_ptr<Connection<Stream>> conn,
                                   beast::flat_buffer buffer,
                                   beast::http::request<beast::http::string_body> request,
                                   WebSocketAccept accept, WebSocketOptions options) {
  auto session = std::make_shared<Session<Stream>>(conn, options.max_queued_frames);
  auto& ws = session->ws();
  websocket::stream_base::timeout timeouts{};
  timeouts.handshake_timeout = options.handshake_timeout;
  timeouts.idle_timeout = websocket::stream_base::none();
  timeouts.keep_alive_pings = false;
  ws.set_option(timeouts);
  ws.read_message_max(options.max_message_bytes);
  ws.set_option(websocket::stream_base::decorator(
      [server = options.server_name, protocol = accept.subprotocol](websocket::response_type& res) {
        res.set(beast::http::field::server, server);
        if (!protocol.empty()) res.set(beast::http::field::sec_websocket_protocol, protocol);
      }));
  // Bytes that arrived after the upgrade request belong to the WebSocket.
  if (buffer.size() > 0) {
    // Beast's accept() takes no leftover buffer for a request already parsed; such bytes are a
    // client sending frames before the 101, which the protocol forbids. Drop them.
    spdlog::debug("{}: {} bytes before the WebSocket handshake completed were dropped",
                  conn->remote, buffer.size());
  }
  auto [aec] = co_await ws.async_accept(request, kTuple);
  if (aec) {
    spdlog::debug("{}: WebSocket handshake failed: {}", conn->remote, aec.message());
    co_return;
  }
  conn->drain = [session] { session->Close(1001, "server shutting down"); };
  accept.handler->OnOpen(session);

  beast::flat_buffer message;
  std::uint16_t code = 1006;
  std::string reason;
  while (true) {
    auto [ec, n] = co_await ws.async_read(message, kTuple);
    if (ec) {
      if (ec == websocket::error::closed) {
        code = static_cast<std::uint16_t>(ws.reason().code);
        reason = std::string(ws.reason().reason.c_str());
      } else if (auto sent = session->SentClose()) {
        // We closed and the peer dropped instead of echoing: report what we sent.
        code = sent->first;
        reason = sent->second;
      }
      break;
    }
    const std::string_view data(static_cast<const char*>(message.data().data()), message.size());
    if (ws.got_text()) {
      accept.handler->OnText(data);
    } else {
      accept.handler->OnBinary(data);
    }
    message.consume(message.size());
  }
  conn->drain = nullptr;
  if (auto sent = session->SentClose(); sent && code == 1006) {
    code = sent->first;
    reason = sent->second;
  }
  accept.handler->OnClose(code, reason);
}

template asio::awaitable<void> RunWebSocket<PlainStream>(
    std::shared_ptr<Connection<PlainStream>>, beast::flat_buffer,
    beast::http::request<beast::http::string_body>, WebSocketAccept, WebSocketOptions);
template asio::awaitable<void> RunWebSocket<TlsStream>(
    std::shared_ptr<Connection<TlsStream>>, beast::flat_buffer,
    beast::http::request<beast::http::string_body>, WebSocketAccept, WebSocketOptions);

}  // namespace callgate::http::detail
