// The server's WebSocket endpoints (http::Router::AddWebSocket) over real TCP and TLS, driven by
// the independent raw client in tests/support/ws_client.
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/runtime.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <thread>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

// Echoes text; "bye" makes it close with 1000, "abort" drops the TCP connection, "flood" sends
// 500 numbered messages. Records OnClose.
class EchoHandler final : public http::WebSocketHandler {
 public:
  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override {
    connection_ = std::move(connection);
    connection_->SendText("hello " + connection_->remote());
  }
  void OnText(std::string_view message) override {
    if (message == "bye") {
      connection_->Close(1000, "goodbye");
    } else if (message == "abort") {
      connection_->Abort();
    } else if (message == "flood") {
      std::thread([c = connection_] {
        for (int i = 0; i < 500; ++i)
          c->SendText(std::to_string(i));
      }).detach();
    } else {
      connection_->SendText("echo:" + std::string(message));
    }
  }
  void OnClose(std::uint16_t code, std::string_view reason) override {
    std::lock_guard lock(mutex_);
    closed_ = std::make_pair(code, std::string(reason));
    changed_.notify_all();
    connection_.reset();
  }
  std::optional<std::pair<std::uint16_t, std::string>> WaitClosed() {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, 10s, [&] { return closed_.has_value(); });
    return closed_;
  }

 private:
  std::shared_ptr<http::WebSocketConnection> connection_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::optional<std::pair<std::uint16_t, std::string>> closed_;
};

class WebSocketTest : public ::testing::Test {
 protected:
  void Start(const std::string& cert = {}, const std::string& key = {}) {
    router_.AddWebSocket("/ws/{room}", [this](const http::Request& request) {
      http::WebSocketAccept accept;
      if (request.QueryParam("token") != "letmein") {
        accept.refusal = http::ErrorResponse(403, "forbidden", "bad token", request.request_id);
        return accept;
      }
      last_room_ = std::string(request.PathParam("room"));
      handler_ = std::make_shared<EchoHandler>();
      accept.handler = handler_;
      if (request.headers.Get("Sec-WebSocket-Protocol")) accept.subprotocol = "convai";
      return accept;
    });
    dispatcher_ = std::make_unique<http::Dispatcher>(router_, http::DispatchOptions{});
    served_ = std::make_unique<ServedRouter>(
        runtime_, *dispatcher_,
        http::ServerOptions{.host = "127.0.0.1",
                            .port = 0,
                            .tls_cert_file = cert,
                            .tls_key_file = key,
                            .websocket_max_message_bytes = 64 * 1024});
    port_ = served_->port();
  }

  void TearDown() override {
    served_.reset();  // graceful stop; the runtime thread is joined
  }

  net::Runtime runtime_{2};
  http::Router router_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::uint16_t port_ = 0;
  std::shared_ptr<EchoHandler> handler_;
  std::string last_room_;
};

TEST_F(WebSocketTest, EchoAndServerClose) {
  Start();
  WsClient client(port_, "/ws/lobby?token=letmein", {{"Sec-WebSocket-Protocol", "convai"}});
  ASSERT_TRUE(client.open()) << client.handshake_status();
  EXPECT_EQ(client.handshake_response().Header("sec-websocket-protocol"), "convai");
  EXPECT_EQ(last_room_, "lobby");
  auto hello = client.Read();
  ASSERT_TRUE(hello);
  EXPECT_EQ(hello->data, "hello 127.0.0.1");
  const std::string big(20000, 'x');  // more than one frame's worth on the way back
  for (const std::string& text : {std::string("one"), std::string("two"), big}) {
    ASSERT_TRUE(client.SendText(text));
    auto echo = client.Read();
    ASSERT_TRUE(echo);
    EXPECT_EQ(echo->data, "echo:" + text);
  }
  ASSERT_TRUE(client.SendText("bye"));
  auto close = client.Read();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->kind, WsClient::Message::Kind::kClose);
  EXPECT_EQ(close->close_code, 1000);
  EXPECT_EQ(close->data, "goodbye");
  auto closed = handler_->WaitClosed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->first, 1000);
}

TEST_F(WebSocketTest, ClientCloseCodeReachesTheHandler) {
  Start();
  WsClient client(port_, "/ws/a?token=letmein");
  ASSERT_TRUE(client.open());
  ASSERT_TRUE(client.Read());
  ASSERT_TRUE(client.SendClose(4001, "client done"));
  auto echo = client.Read();  // the server echoes the close; then the client closes TCP
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->kind, WsClient::Message::Kind::kClose);
  EXPECT_EQ(echo->close_code, 4001);
  auto closed = handler_->WaitClosed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->first, 4001);
  EXPECT_EQ(closed->second, "client done");
}

TEST_F(WebSocketTest, RefusedUpgradeGetsTheHttpResponse) {
  Start();
  WsClient client(port_, "/ws/a?token=wrong");
  EXPECT_FALSE(client.open());
  EXPECT_EQ(client.handshake_status(), 403);
  // A plain GET to a WebSocket route is told to upgrade.
  auto plain = Fetch(port_, "GET", "/ws/a?token=letmein");
  ASSERT_TRUE(plain);
  EXPECT_EQ(plain->status, 426);
  EXPECT_EQ(plain->Header("upgrade"), "websocket");
}

TEST_F(WebSocketTest, AbortDropsTheConnectionAndReports1006) {
  Start();
  WsClient client(port_, "/ws/a?token=letmein");
  ASSERT_TRUE(client.open());
  ASSERT_TRUE(client.Read());
  ASSERT_TRUE(client.SendText("abort"));
  EXPECT_FALSE(client.Read(5s)) << "no close frame, just a dropped connection";
  auto closed = handler_->WaitClosed();
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->first, 1006);
}

TEST_F(WebSocketTest, FramesFromAnotherThreadArriveInOrder) {
  Start();
  WsClient client(port_, "/ws/a?token=letmein");
  ASSERT_TRUE(client.open());
  ASSERT_TRUE(client.Read());
  ASSERT_TRUE(client.SendText("flood"));
  for (int i = 0; i < 500; ++i) {
    auto message = client.Read();
    ASSERT_TRUE(message) << i;
    ASSERT_EQ(message->data, std::to_string(i));
  }
}

TEST_F(WebSocketTest, OversizedMessageClosesWith1009) {
  Start();
  WsClient client(port_, "/ws/a?token=letmein");
  ASSERT_TRUE(client.open());
  ASSERT_TRUE(client.Read());
  ASSERT_TRUE(client.SendText(std::string(100 * 1024, 'y')));  // limit is 64 KiB
  auto close = client.Read();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->kind, WsClient::Message::Kind::kClose);
  EXPECT_EQ(close->close_code, 1009);
}

TEST_F(WebSocketTest, GracefulShutdownClosesWith1001) {
  Start();
  WsClient client(port_, "/ws/a?token=letmein");
  ASSERT_TRUE(client.open());
  ASSERT_TRUE(client.Read());
  std::promise<void> stopped;
  served_->server().Shutdown(5s, [&] {
    runtime_.Stop();
    stopped.set_value();
  });
  auto close = client.Read();
  ASSERT_TRUE(close);
  EXPECT_EQ(close->kind, WsClient::Message::Kind::kClose);
  EXPECT_EQ(close->close_code, 1001);
  EXPECT_EQ(stopped.get_future().wait_for(10s), std::future_status::ready);
  served_->Join();
}

TEST_F(WebSocketTest, WorksOverTls) {
  TempDir dir;
  const TestCertificate cert = MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty());
  Start(cert.cert_file, cert.key_file);
  WsClient client(port_, "/ws/secure?token=letmein", {},
                  TlsClientOptions{.ca_file = cert.cert_file});
  ASSERT_TRUE(client.open());
  ASSERT_TRUE(client.Read());
  ASSERT_TRUE(client.SendText("over tls"));
  auto echo = client.Read();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->data, "echo:over tls");
}

}  // namespace
}  // namespace callgate::testing
