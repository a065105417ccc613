// The Beast HTTP client against the real in-process server over loopback (HTTP and HTTPS), and
// against raw sockets that misbehave in ways a real server would not.
#include "upstream/http_client.hpp"

#include "http/dispatcher.hpp"
#include "http/router.hpp"
#include "net/runtime.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

namespace callgate::upstream {
namespace {

using callgate::testing::ServedRouter;
using callgate::testing::TempDir;
using namespace std::chrono_literals;

HttpOutcome SendAndWait(HttpClient& client, HttpRequest request) {
  std::promise<HttpOutcome> promise;
  auto future = promise.get_future();
  client.Send(std::move(request),
              [&promise](HttpOutcome outcome) { promise.set_value(std::move(outcome)); });
  return future.get();
}

const HttpResponse& ResponseOf(const HttpOutcome& outcome) {
  if (const auto* failure = std::get_if<HttpFailure>(&outcome)) {
    ADD_FAILURE() << "request failed: " << ToString(failure->kind) << ": " << failure->message;
    static const HttpResponse kEmpty;
    return kEmpty;
  }
  return std::get<HttpResponse>(outcome);
}

HttpFailure FailureOf(const HttpOutcome& outcome) {
  if (const auto* response = std::get_if<HttpResponse>(&outcome)) {
    ADD_FAILURE() << "expected a failure, got status " << response->status;
    return {};
  }
  return std::get<HttpFailure>(outcome);
}

double Metric(metrics::Registry& registry, const std::string& name) {
  std::istringstream text(registry.Render());
  std::string line;
  while (std::getline(text, line)) {
    if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
  }
  return -1;
}

// A server whose routes echo what they received.
class HttpClientTest : public ::testing::Test {
 protected:
  HttpClientTest() {
    router_.Add("GET", "/echo", [](http::Request request, http::Responder responder) {
      boost::json::object body{
          {"host", std::string(request.headers.Get("Host").value_or(""))},
          {"user_agent", std::string(request.headers.Get("User-Agent").value_or(""))},
          {"query", request.query},
          {"x_test", std::string(request.headers.Get("X-Test").value_or(""))}};
      responder.Send(http::Response::Json(200, body));
    });
    router_.Add(
        "POST", "/echo",
        [](http::Request request, http::Responder responder) {
          boost::json::object body{
              {"body", request.body},
              {"transfer_encoding",
               std::string(request.headers.Get("Transfer-Encoding").value_or(""))},
              {"content_length", std::string(request.headers.Get("Content-Length").value_or(""))}};
          responder.Send(http::Response::Json(201, body));
        },
        {.body = http::BodyKind::kRaw});
    router_.Add("GET", "/big", [](http::Request, http::Responder responder) {
      responder.Send(http::Response::Text(200, std::string(100'000, 'x')));
    });
    router_.Add("GET", "/never", [this](http::Request, http::Responder responder) {
      std::lock_guard lock(mutex_);
      parked_.push_back(std::move(responder));  // answered when the test ends
    });
  }

  ~HttpClientTest() override {
    {
      std::lock_guard lock(mutex_);
      for (auto& responder : parked_)
        responder.Send(http::Response::Text(200, "late"));
    }
    server_.reset();
    client_runtime_.Stop();
    client_thread_.join();
    client_.reset();
  }

  ServedRouter& Serve(http::ServerOptions options = {.host = "127.0.0.1", .port = 0}) {
    server_ = std::make_unique<ServedRouter>(runtime_, dispatcher_, options);
    return *server_;
  }

  HttpClient& Client(HttpClientOptions options = {}) {
    client_ = MakeHttpClient(client_runtime_, std::move(options));
    return *client_;
  }

  std::string Url(const std::string& path, const std::string& scheme = "http",
                  const std::string& host = "127.0.0.1") const {
    return scheme + "://" + host + ":" + std::to_string(server_->port()) + path;
  }

  net::Runtime runtime_{2};  // the server's, run by ServedRouter
  // The client's own runtime, so that its requests proceed with or without a server.
  net::Runtime client_runtime_{1};
  std::thread client_thread_{[this] { client_runtime_.Run(); }};
  http::Router router_;
  http::Dispatcher dispatcher_{router_, {}};
  std::unique_ptr<ServedRouter> server_;
  std::unique_ptr<HttpClient> client_;
  std::mutex mutex_;
  std::vector<http::Responder> parked_;
};

TEST_F(HttpClientTest, GetSendsHostUserAgentHeadersAndQuery) {
  Serve();
  auto& client = Client({.user_agent = "callgate-test/1"});
  HttpRequest request{.url = Url("/echo?agent_id=a%20b&x=1")};
  request.headers.Set("X-Test", "yes");
  const auto outcome = SendAndWait(client, request);
  const auto& response = ResponseOf(outcome);
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.Get("Content-Type").value_or(""), "application/json");
  const auto json = boost::json::parse(response.body).as_object();
  EXPECT_EQ(json.at("host").as_string(), "127.0.0.1:" + std::to_string(server_->port()));
  EXPECT_EQ(json.at("user_agent").as_string(), "callgate-test/1");
  EXPECT_EQ(json.at("query").as_string(), "agent_id=a%20b&x=1");
  EXPECT_EQ(json.at("x_test").as_string(), "yes");
}

TEST_F(HttpClientTest, PostWithContentLengthAndChunked) {
  Serve();
  auto& client = Client();
  const auto plain = SendAndWait(client, {.method = "POST", .url = Url("/echo"), .body = "hello"});
  ASSERT_EQ(ResponseOf(plain).status, 201);
  auto json = boost::json::parse(ResponseOf(plain).body).as_object();
  EXPECT_EQ(json.at("body").as_string(), "hello");
  EXPECT_EQ(json.at("content_length").as_string(), "5");
  EXPECT_EQ(json.at("transfer_encoding").as_string(), "");

  const std::string big(200'000, 'b');
  const auto chunked =
      SendAndWait(client, {.method = "POST", .url = Url("/echo"), .body = big, .chunked = true});
  ASSERT_EQ(ResponseOf(chunked).status, 201);
  json = boost::json::parse(ResponseOf(chunked).body).as_object();
  EXPECT_EQ(json.at("body").as_string(), big);
  EXPECT_EQ(json.at("transfer_encoding").as_string(), "chunked");
  EXPECT_EQ(json.at("content_length").as_string(), "");
}

TEST_F(HttpClientTest, ReusesKeepAliveConnectionsAndRunsManyAtOnce) {
  auto& server = Serve();
  auto& client = Client();
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/echo")})).status, 200);
  EXPECT_EQ(Metric(server.registry(), "callgate_http_connections_total"), 1)
      << "sequential requests share one pooled connection";

  constexpr int kConcurrent = 40;
  std::vector<std::promise<int>> results(kConcurrent);
  for (int i = 0; i < kConcurrent; ++i) {
    client.Send({.url = Url("/echo?i=" + std::to_string(i))}, [&results, i](HttpOutcome outcome) {
      const auto* response = std::get_if<HttpResponse>(&outcome);
      results[static_cast<std::size_t>(i)].set_value(response ? response->status : -1);
    });
  }
  for (auto& result : results)
    EXPECT_EQ(result.get_future().get(), 200);
  EXPECT_LE(Metric(server.registry(), "callgate_http_connections_total"), kConcurrent + 1);
}

TEST_F(HttpClientTest, AConnectionTheServerClosedWhileIdleIsNotReused) {
  auto& server = Serve({.host = "127.0.0.1", .port = 0, .idle_timeout = 100ms});
  auto& client = Client();
  ASSERT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/echo")})).status, 200);
  ASSERT_TRUE(callgate::testing::WaitFor(
      [&] { return Metric(server.registry(), "callgate_http_connections_open") == 0; }, 5s));
  // Even a POST (never retried once sent) succeeds: the closed connection is detected first.
  const auto outcome = SendAndWait(client, {.method = "POST", .url = Url("/echo"), .body = "x"});
  EXPECT_EQ(ResponseOf(outcome).status, 201);
  EXPECT_EQ(Metric(server.registry(), "callgate_http_connections_total"), 2);
}

std::uint16_t UnusedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  ::close(fd);  // bound, never listened: connecting is refused
  return ntohs(address.sin_port);
}

TEST_F(HttpClientTest, ConnectionRefusedIsAFailureBeforeSending) {
  const auto port = UnusedPort();
  auto& client = Client();
  const auto failure =
      FailureOf(SendAndWait(client, {.url = "http://127.0.0.1:" + std::to_string(port) + "/"}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kConnect);
  EXPECT_FALSE(failure.request_sent);
  EXPECT_NE(failure.message.find("127.0.0.1:" + std::to_string(port)), std::string::npos)
      << failure.message;
}

TEST_F(HttpClientTest, TimeoutAfterSendingSaysTheRequestMayHaveArrived) {
  Serve();
  auto& client = Client();
  const auto failure = FailureOf(SendAndWait(client, {.url = Url("/never"), .timeout = 300ms}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kTimeout);
  EXPECT_TRUE(failure.request_sent);
}

TEST_F(HttpClientTest, ResponseLargerThanTheLimit) {
  Serve();
  auto& client = Client();
  const auto failure =
      FailureOf(SendAndWait(client, {.url = Url("/big"), .max_response_bytes = 1000}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kResponseTooLarge);
  EXPECT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/big")})).body.size(), 100'000u);
}

TEST_F(HttpClientTest, InvalidUrls) {
  auto& client = Client();
  for (const char* url : {"", "not a url", "ftp://example.com/", "http:///path"}) {
    const auto failure = FailureOf(SendAndWait(client, {.url = url}));
    EXPECT_EQ(failure.kind, HttpFailure::Kind::kInvalidUrl) << url;
    EXPECT_FALSE(failure.request_sent);
  }
}

TEST_F(HttpClientTest, UnresolvableHost) {
  auto& client = Client();
  const auto failure = FailureOf(SendAndWait(client, {.url = "http://no-such-host.invalid/"}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kResolve);
  EXPECT_FALSE(failure.request_sent);
}

// HTTPS: the certificate must chain to a trusted CA and name the host.
class HttpsClientTest : public HttpClientTest {
 protected:
  void ServeTls(const std::string& subject_alt_name) {
    cert_ = callgate::testing::MakeTestCertificate(dir_.path().string(), subject_alt_name);
    ASSERT_FALSE(cert_.cert_file.empty()) << "openssl could not make a certificate";
    Serve({.host = "127.0.0.1",
           .port = 0,
           .tls_cert_file = cert_.cert_file,
           .tls_key_file = cert_.key_file});
  }
  TempDir dir_;
  callgate::testing::TestCertificate cert_;
};

TEST_F(HttpsClientTest, TrustedCertificateByNameAndByAddress) {
  ServeTls("DNS:localhost,IP:127.0.0.1");
  auto& client = Client({.ca_file = cert_.cert_file});
  EXPECT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/echo", "https")})).status, 200);
  const auto by_name = SendAndWait(client, {.url = Url("/echo", "https", "localhost")});
  if (const auto* failure = std::get_if<HttpFailure>(&by_name)) {
    // localhost may resolve to ::1 first; the server listens on 127.0.0.1 only, and the client
    // must fall back to the next address.
    FAIL() << ToString(failure->kind) << ": " << failure->message;
  }
  const auto& response = std::get<HttpResponse>(by_name);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(boost::json::parse(response.body).at("host").as_string(),
            "localhost:" + std::to_string(server_->port()));
  EXPECT_EQ(ResponseOf(SendAndWait(client, {.method = "POST",
                                            .url = Url("/echo", "https"),
                                            .body = "over tls",
                                            .chunked = true}))
                .status,
            201);
}

TEST_F(HttpsClientTest, UntrustedCertificateFailsBeforeSending) {
  ServeTls("DNS:localhost,IP:127.0.0.1");
  auto& client = Client();  // only the system store, which does not know the test CA
  const auto failure = FailureOf(SendAndWait(client, {.url = Url("/echo", "https")}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kTls);
  EXPECT_FALSE(failure.request_sent);
  EXPECT_NE(failure.message.find("certificate"), std::string::npos) << failure.message;
}

TEST_F(HttpsClientTest, CertificateForAnotherHostFails) {
  ServeTls("DNS:other.example");
  auto& client = Client({.ca_file = cert_.cert_file});
  const auto failure = FailureOf(SendAndWait(client, {.url = Url("/echo", "https")}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kTls);
  EXPECT_FALSE(failure.request_sent);
}

// A listener on a raw socket that answers every connection with `reply` and closes.
class RawServer {
 public:
  explicit RawServer(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(fd_, 8);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        const int client = ::accept(fd_, nullptr, nullptr);
        if (client < 0) return;
        char buffer[4096];
        (void)::recv(client, buffer, sizeof buffer, 0);  // the request (small)
        (void)::send(client, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        ::close(client);
      }
    });
  }
  ~RawServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  std::string reply_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
};

TEST_F(HttpClientTest, NotHttpIsABadResponse) {
  RawServer raw("<html>502 Bad Gateway</html>\r\n\r\n");
  auto& client = Client();
  const auto failure = FailureOf(SendAndWait(client, {.url = raw.Url()}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kBadResponse) << failure.message;
  EXPECT_TRUE(failure.request_sent);
}

TEST_F(HttpClientTest, TruncatedBodyIsABadResponse) {
  RawServer raw(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"a\":");
  auto& client = Client();
  const auto failure = FailureOf(SendAndWait(client, {.url = raw.Url()}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kBadResponse) << failure.message;
}

TEST_F(HttpClientTest, ClosedWithoutAnswerIsConnectionLost) {
  RawServer raw("");
  auto& client = Client();
  const auto failure = FailureOf(SendAndWait(client, {.url = raw.Url()}));
  EXPECT_EQ(failure.kind, HttpFailure::Kind::kConnectionLost) << failure.message;
  EXPECT_TRUE(failure.request_sent);
}

}  // namespace
}  // namespace callgate::upstream
