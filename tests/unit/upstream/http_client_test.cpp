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
#include <chrono>
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

sockaddr_in Loopback(std::uint16_t port) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(port);
  return address;
}

// A socket listening on 127.0.0.1 at a port of the kernel's choice (stored in `port`).
int ListenOnLoopback(int backlog, std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address = Loopback(0);
  socklen_t length = sizeof address;
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  ::listen(fd, backlog);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  port = ntohs(address.sin_port);
  return fd;
}

// A listener that never accepts. With a backlog of 0 the kernel completes one connection into
// the accept queue (`Fill()` makes it) and then drops every further SYN: a connect to it hangs,
// as one to a host that does not answer.
class SilentListener {
 public:
  explicit SilentListener(int backlog) : fd_(ListenOnLoopback(backlog, port_)) {}
  ~SilentListener() {
    if (filler_ >= 0) ::close(filler_);
    ::close(fd_);
  }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  bool Fill() {
    filler_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = Loopback(port_);
    return ::connect(filler_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  std::string Url(const std::string& scheme) const {
    return scheme + "://127.0.0.1:" + std::to_string(port_) + "/";
  }

 private:
  std::uint16_t port_ = 0;
  int fd_ = -1;
  int filler_ = -1;
};

// A request that `url` leaves hanging before it is sent fails as `kind` once the connect timeout
// has passed (well before the 10 s total timeout; no bound on how fast: the machine may be slow).
void ExpectConnectTimeout(HttpClient& client, const std::string& url, HttpFailure::Kind kind) {
  const auto started = std::chrono::steady_clock::now();
  const auto failure = FailureOf(SendAndWait(client, {.url = url}));
  EXPECT_EQ(failure.kind, kind) << failure.message;
  EXPECT_NE(failure.message.find("timed out"), std::string::npos) << failure.message;
  EXPECT_FALSE(failure.request_sent);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 8s);
}

TEST_F(HttpClientTest, AConnectThatHangsEndsAtTheConnectTimeout) {
  SilentListener listener(0);
  ASSERT_TRUE(listener.Fill());
  ExpectConnectTimeout(Client({.connect_timeout = 300ms}), listener.Url("http"),
                       HttpFailure::Kind::kConnect);
}

TEST_F(HttpClientTest, ATlsHandshakeThatStallsEndsAtTheConnectTimeout) {
  SilentListener listener(8);  // connects (the kernel accepts), never answers the ClientHello
  ExpectConnectTimeout(Client({.connect_timeout = 300ms}), listener.Url("https"),
                       HttpFailure::Kind::kTls);
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
    fd_ = ListenOnLoopback(8, port_);
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

// ---- Streamed responses (SendStreamed) ----

std::variant<HttpStreamedResponse, HttpFailure> OpenAndWait(HttpClient& client,
                                                            HttpRequest request) {
  std::promise<HttpStreamedOutcome> promise;
  auto future = promise.get_future();
  client.SendStreamed(std::move(request), [&promise](HttpStreamedOutcome outcome) {
    promise.set_value(std::move(outcome));
  });
  return future.get();
}

HttpStreamedResponse Opened(HttpStreamedOutcome outcome) {
  if (auto* failure = std::get_if<HttpFailure>(&outcome)) {
    ADD_FAILURE() << "request failed: " << ToString(failure->kind) << ": " << failure->message;
    return {};
  }
  return std::move(std::get<HttpStreamedResponse>(outcome));
}

http::BodyChunk Pull(http::BodyStream& body) {
  std::promise<http::BodyChunk> promise;
  auto future = promise.get_future();
  body.Next([&promise](http::BodyChunk chunk) { promise.set_value(std::move(chunk)); });
  return future.get();
}

// Pulls `body` to its end, checking every byte against `expected` as it goes (nothing is kept).
struct Drained {
  std::size_t bytes = 0;
  std::size_t chunks = 0;
  std::size_t largest_chunk = 0;
  bool matches = true;
  std::optional<std::string> error;
};
Drained Drain(http::BodyStream& body, const std::string& expected) {
  Drained drained;
  while (true) {
    http::BodyChunk chunk = Pull(body);
    if (chunk.kind == http::BodyChunk::Kind::kEnd) break;
    if (chunk.kind == http::BodyChunk::Kind::kError) {
      drained.error = chunk.error;
      break;
    }
    EXPECT_FALSE(chunk.data.empty());
    if (expected.compare(drained.bytes, chunk.data.size(), chunk.data) != 0) {
      drained.matches = false;
    }
    drained.bytes += chunk.data.size();
    drained.largest_chunk = std::max(drained.largest_chunk, chunk.data.size());
    ++drained.chunks;
  }
  return drained;
}

std::shared_ptr<const std::string> BigBody(std::size_t size) {
  std::string bytes(size, '\0');
  for (std::size_t i = 0; i < size; ++i)
    bytes[i] = static_cast<char>('A' + (i * 7 + i / 4096) % 26);
  return std::make_shared<const std::string>(std::move(bytes));
}

// A body of unknown length (sent chunked), produced inline from `source` in 10000-byte pieces.
class UnknownLengthStream final : public http::BodyStream {
 public:
  explicit UnknownLengthStream(std::shared_ptr<const std::string> source)
      : source_(std::move(source)) {}
  std::optional<std::uint64_t> Length() const override { return std::nullopt; }
  void Next(NextCallback done) override {
    if (offset_ >= source_->size()) return done(http::BodyChunk::End());
    const std::size_t n = std::min<std::size_t>(10'000, source_->size() - offset_);
    std::string piece = source_->substr(offset_, n);
    offset_ += n;
    done(http::BodyChunk::Data(std::move(piece)));
  }

 private:
  std::shared_ptr<const std::string> source_;
  std::size_t offset_ = 0;
};

constexpr std::size_t kTwentyMegabytes = 20 * 1024 * 1024;

TEST_F(HttpClientTest, StreamedBodyIsPulledInBoundedChunksAndTheConnectionIsReused) {
  const auto big = BigBody(kTwentyMegabytes);
  router_.Add("GET", "/large", [big](http::Request, http::Responder responder) {
    responder.Send(
        http::Response::Stream(200, "audio/mpeg", http::MakeStringBodyStream(big, 1024 * 1024)));
  });
  auto& server = Serve();
  auto& client = Client();  // max_response_bytes (16 MiB) applies to Send(), not to streams
  HttpStreamedResponse response = Opened(OpenAndWait(client, {.url = Url("/large")}));
  ASSERT_TRUE(response.body);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.headers.Get("Content-Type").value_or(""), "audio/mpeg");
  EXPECT_EQ(response.body->Length(), std::optional<std::uint64_t>(kTwentyMegabytes));
  const Drained drained = Drain(*response.body, *big);
  EXPECT_FALSE(drained.error) << *drained.error;
  EXPECT_EQ(drained.bytes, kTwentyMegabytes);
  EXPECT_TRUE(drained.matches);
  EXPECT_LE(drained.largest_chunk, HttpClientOptions{}.stream_chunk_bytes)
      << "the server wrote 1 MiB pieces; the client hands out at most 64 KiB at a time";
  EXPECT_GE(drained.chunks, kTwentyMegabytes / HttpClientOptions{}.stream_chunk_bytes);
  response.body.reset();

  // Read to its end, the connection went back to the pool.
  ASSERT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/echo")})).status, 200);
  EXPECT_EQ(Metric(server.registry(), "callgate_http_connections_total"), 1);
}

TEST_F(HttpClientTest, ChunkedStreamedBodyHasNoLength) {
  const auto source = BigBody(300'000);
  router_.Add("GET", "/chunked", [source](http::Request, http::Responder responder) {
    responder.Send(http::Response::Stream(200, "application/octet-stream",
                                          std::make_shared<UnknownLengthStream>(source)));
  });
  auto& server = Serve();
  auto& client = Client({.stream_chunk_bytes = 4096});
  for (int i = 0; i < 2; ++i) {
    HttpStreamedResponse response = Opened(OpenAndWait(client, {.url = Url("/chunked")}));
    ASSERT_TRUE(response.body);
    EXPECT_EQ(response.headers.Get("Transfer-Encoding").value_or(""), "chunked");
    EXPECT_FALSE(response.body->Length());
    const Drained drained = Drain(*response.body, *source);
    EXPECT_FALSE(drained.error);
    EXPECT_EQ(drained.bytes, source->size());
    EXPECT_TRUE(drained.matches);
    EXPECT_LE(drained.largest_chunk, 4096u);
  }
  EXPECT_EQ(Metric(server.registry(), "callgate_http_connections_total"), 1);
}

TEST_F(HttpClientTest, AnAbandonedStreamClosesItsConnection) {
  const auto big = BigBody(kTwentyMegabytes);
  router_.Add("GET", "/large", [big](http::Request, http::Responder responder) {
    responder.Send(http::Response::Stream(200, "audio/mpeg", http::MakeStringBodyStream(big)));
  });
  auto& server = Serve();
  auto& client = Client();
  {
    HttpStreamedResponse response = Opened(OpenAndWait(client, {.url = Url("/large")}));
    ASSERT_TRUE(response.body);
    const http::BodyChunk first = Pull(*response.body);
    ASSERT_EQ(first.kind, http::BodyChunk::Kind::kData);
    EXPECT_EQ(big->compare(0, first.data.size(), first.data), 0);
  }  // dropped after one chunk: the rest is not wanted
  ASSERT_TRUE(callgate::testing::WaitFor(
      [&] { return Metric(server.registry(), "callgate_http_connections_open") == 0; }, 10s))
      << "the server saw the connection close";
  ASSERT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/echo")})).status, 200);
  EXPECT_EQ(Metric(server.registry(), "callgate_http_connections_total"), 2)
      << "a connection with an unread body is never reused";
}

TEST_F(HttpClientTest, StreamedErrorAnswersAndHeadResponses) {
  router_.Add("GET", "/missing", [](http::Request, http::Responder responder) {
    responder.Send(http::Response::Json(404, {{"detail", "Not Found"}}));
  });
  auto& server = Serve();
  auto& client = Client();
  HttpStreamedResponse missing = Opened(OpenAndWait(client, {.url = Url("/missing")}));
  ASSERT_TRUE(missing.body);
  EXPECT_EQ(missing.status, 404);
  std::promise<std::optional<std::string>> whole;
  http::ReadWholeBody(missing.body, 1024, [&whole](std::optional<std::string> bytes, std::string) {
    whole.set_value(std::move(bytes));
  });
  EXPECT_EQ(whole.get_future().get(), std::optional<std::string>(R"({"detail":"Not Found"})"));
  missing.body.reset();

  HttpStreamedResponse head =
      Opened(OpenAndWait(client, {.method = "HEAD", .url = Url("/missing")}));
  ASSERT_TRUE(head.body);
  EXPECT_EQ(head.status, 404);
  EXPECT_EQ(head.body->Length(), std::optional<std::uint64_t>(0)) << "a HEAD answer has no body";
  EXPECT_EQ(Pull(*head.body).kind, http::BodyChunk::Kind::kEnd);
  head.body.reset();
  ASSERT_EQ(ResponseOf(SendAndWait(client, {.url = Url("/echo")})).status, 200);
  EXPECT_EQ(Metric(server.registry(), "callgate_http_connections_total"), 1);
}

TEST_F(HttpClientTest, AnnouncedBodyOverTheStreamLimitFailsUpFront) {
  const auto big = BigBody(100'000);
  router_.Add("GET", "/big-stream", [big](http::Request, http::Responder responder) {
    responder.Send(http::Response::Stream(200, "audio/mpeg", http::MakeStringBodyStream(big)));
  });
  Serve();
  auto& client = Client();
  const auto outcome =
      OpenAndWait(client, {.url = Url("/big-stream"), .max_response_bytes = 50'000});
  ASSERT_TRUE(std::holds_alternative<HttpFailure>(outcome));
  EXPECT_EQ(std::get<HttpFailure>(outcome).kind, HttpFailure::Kind::kResponseTooLarge);
}

// A body that stops after its first chunk and never ends (answered at the end of the test).
class StallingStream final : public http::BodyStream {
 public:
  explicit StallingStream(std::shared_ptr<std::vector<NextCallback>> parked)
      : parked_(std::move(parked)) {}
  std::optional<std::uint64_t> Length() const override { return std::nullopt; }
  void Next(NextCallback done) override {
    if (sent_++ == 0) return done(http::BodyChunk::Data("first"));
    parked_->push_back(std::move(done));
  }

 private:
  std::shared_ptr<std::vector<NextCallback>> parked_;
  int sent_ = 0;
};

TEST_F(HttpClientTest, AStalledBodyTimesOutPerChunk) {
  auto parked = std::make_shared<std::vector<http::BodyStream::NextCallback>>();
  router_.Add("GET", "/stalls", [parked](http::Request, http::Responder responder) {
    responder.Send(
        http::Response::Stream(200, "audio/mpeg", std::make_shared<StallingStream>(parked)));
  });
  Serve({.host = "127.0.0.1", .port = 0, .body_timeout = 1s});  // the server gives up too
  auto& client = Client();
  HttpStreamedResponse response =
      Opened(OpenAndWait(client, {.url = Url("/stalls"), .read_timeout = 300ms}));
  ASSERT_TRUE(response.body);
  const Drained drained = Drain(*response.body, "first");
  EXPECT_EQ(drained.bytes, 5u);
  ASSERT_TRUE(drained.error);
  EXPECT_NE(drained.error->find("timeout"), std::string::npos) << *drained.error;
}

TEST_F(HttpClientTest, TruncatedStreamIsAnError) {
  RawServer raw("HTTP/1.1 200 OK\r\nContent-Type: audio/mpeg\r\nContent-Length: 100000\r\n\r\n" +
                std::string(3000, 'm'));
  auto& client = Client();
  HttpStreamedResponse response = Opened(OpenAndWait(client, {.url = raw.Url()}));
  ASSERT_TRUE(response.body);
  EXPECT_EQ(response.body->Length(), std::optional<std::uint64_t>(100'000));
  const Drained drained = Drain(*response.body, std::string(3000, 'm'));
  EXPECT_EQ(drained.bytes, 3000u);
  EXPECT_TRUE(drained.matches);
  ASSERT_TRUE(drained.error) << "the body ended before its Content-Length";
  EXPECT_NE(drained.error->find("truncated"), std::string::npos) << *drained.error;

  RawServer chunked(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n400\r\nabc");
  HttpStreamedResponse cut = Opened(OpenAndWait(client, {.url = chunked.Url()}));
  ASSERT_TRUE(cut.body);
  const Drained partial = Drain(*cut.body, "helloabc");
  EXPECT_TRUE(partial.error) << "no last chunk";
  EXPECT_TRUE(partial.matches);
}

TEST_F(HttpClientTest, StreamingFailuresBeforeTheHeadAreFailures) {
  auto& client = Client();
  const auto refused =
      OpenAndWait(client, {.url = "http://127.0.0.1:" + std::to_string(UnusedPort()) + "/audio"});
  ASSERT_TRUE(std::holds_alternative<HttpFailure>(refused));
  EXPECT_EQ(std::get<HttpFailure>(refused).kind, HttpFailure::Kind::kConnect);
  EXPECT_FALSE(std::get<HttpFailure>(refused).request_sent);
  RawServer garbage("<html>502 Bad Gateway</html>\r\n\r\n");
  const auto bad = OpenAndWait(client, {.url = garbage.Url()});
  ASSERT_TRUE(std::holds_alternative<HttpFailure>(bad));
  EXPECT_EQ(std::get<HttpFailure>(bad).kind, HttpFailure::Kind::kBadResponse);
}

// The default SendStreamed, for fakes: Send()'s whole body served from memory.
class WholeBodyClient final : public HttpClient {
 public:
  void Send(HttpRequest, HttpCallback done) override {
    HttpResponse response;
    response.status = 200;
    response.headers.Set("Content-Type", "audio/mpeg");
    response.body = "whole body";
    done(std::move(response));
  }
};

TEST(HttpClientDefaults, SendStreamedServesSendsBody) {
  WholeBodyClient client;
  HttpStreamedResponse response = Opened(OpenAndWait(client, {.url = "http://x/"}));
  ASSERT_TRUE(response.body);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body->Length(), std::optional<std::uint64_t>(10));
  const Drained drained = Drain(*response.body, "whole body");
  EXPECT_EQ(drained.bytes, 10u);
  EXPECT_TRUE(drained.matches);
}

TEST_F(HttpsClientTest, StreamsOverTls) {
  const auto big = BigBody(3 * 1024 * 1024);
  router_.Add("GET", "/large", [big](http::Request, http::Responder responder) {
    responder.Send(http::Response::Stream(200, "audio/mpeg", http::MakeStringBodyStream(big)));
  });
  ServeTls("DNS:localhost,IP:127.0.0.1");
  auto& client = Client({.ca_file = cert_.cert_file});
  for (int i = 0; i < 2; ++i) {
    HttpStreamedResponse response = Opened(OpenAndWait(client, {.url = Url("/large", "https")}));
    ASSERT_TRUE(response.body);
    const Drained drained = Drain(*response.body, *big);
    EXPECT_FALSE(drained.error);
    EXPECT_EQ(drained.bytes, big->size());
    EXPECT_TRUE(drained.matches);
  }
  EXPECT_EQ(Metric(server_->registry(), "callgate_http_connections_total"), 1);
}

}  // namespace
}  // namespace callgate::upstream
