// The real HTTP server (http::Server on net::Runtime, the code `callgate serve` runs) on
// 127.0.0.1 with test routes, over real TCP: the parts of the request pipeline that need routes
// later issues add (JSON bodies, API keys, handler failures, answers from other threads).
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/runtime.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <future>
#include <stdexcept>
#include <thread>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

class PipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add("POST", "/echo",
                [](http::Request request, http::Responder responder) {
                  responder.Send(http::Response::Json(200, {{"got", *request.json}}));
                },
                {.body = http::BodyKind::kJson, .max_body_bytes = 2048});
    router_.Add("POST", "/raw",
                [](http::Request request, http::Responder responder) {
                  responder.Send(http::Response::Json(200, {{"bytes", request.body.size()}}));
                },
                {.body = http::BodyKind::kRaw, .max_body_bytes = 64 * 1024});
    router_.Add("POST", "/big",
                [](http::Request request, http::Responder responder) {
                  responder.Send(http::Response::Json(200, {{"bytes", request.body.size()}}));
                },
                {.body = http::BodyKind::kRaw, .max_body_bytes = 4 * 1024 * 1024});
    router_.Add("GET", "/secret",
                [](http::Request, http::Responder responder) {
                  responder.Send(http::Response::Json(200, {{"secret", "data"}}));
                },
                {.requires_api_key = true});
    router_.Add("GET", "/items/{item_id}", [](http::Request request, http::Responder responder) {
      responder.Send(
          http::Response::Json(200, {{"item_id", request.PathParam("item_id")},
                                     {"sort", request.QueryParam("sort").value_or("")}}));
    });
    router_.Add("GET", "/throws",
                [](http::Request, http::Responder) -> void { throw std::runtime_error("boom"); });
    router_.Add("GET", "/forgets", [](http::Request, http::Responder) {});
    router_.Add("GET", "/later", [](http::Request, http::Responder responder) {
      std::thread([responder] {
        std::this_thread::sleep_for(50ms);
        responder.Send(http::Response::Json(200, {{"answered", "from another thread"}}));
      }).detach();
    });

    dispatcher_ = std::make_unique<http::Dispatcher>(
        router_, http::DispatchOptions{.default_max_body_bytes = 1024,
                                       .api_keys = {"key-one-abcdef", "key-two-ghijkl"}});
    served_ = std::make_unique<ServedRouter>(
        runtime_, *dispatcher_,
        http::ServerOptions{.host = "127.0.0.1", .port = 0, .body_timeout = 400ms});
    port_ = served_->port();
  }

  void TearDown() override {
    served_.reset();  // graceful stop; the runtime thread is joined
  }

  std::optional<HttpResponse> Post(const std::string& target, const std::string& body,
                                   const std::string& type = "application/json") {
    return Fetch(port_, "POST", target, {{"Content-Type", type}}, body);
  }

  static boost::json::value Json(const HttpResponse& r) { return boost::json::parse(r.body); }
  static std::string Code(const HttpResponse& r) {
    return std::string(Json(r).at("error").at("code").as_string());
  }

  net::Runtime runtime_{2};
  http::Router router_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::uint16_t port_ = 0;
};

TEST_F(PipelineTest, JsonBodyReachesTheHandler) {
  auto response =
      Post("/echo", R"({"to_number":"+15551234567","n":[1,2]})", "application/json; charset=utf-8");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(Json(*response).at("got").at("to_number").as_string(), "+15551234567");
}

TEST_F(PipelineTest, MalformedJsonIs400WithThePosition) {
  auto response = Post("/echo", "{\n  \"to_number\": \"+1555\",\n  oops\n}");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 400);
  EXPECT_EQ(Code(*response), "invalid_json");
  const auto details = Json(*response).at("error").at("details");
  EXPECT_EQ(details.at("line").as_int64(), 3);
  EXPECT_EQ(details.at("column").as_int64(), 3);
  EXPECT_EQ(details.at("offset").as_int64(), 28);

  response = Post("/echo", R"({"a": 1)");  // truncated
  ASSERT_TRUE(response);
  EXPECT_EQ(Code(*response), "invalid_json");
  response = Post("/echo", "");
  ASSERT_TRUE(response);
  EXPECT_EQ(Code(*response), "invalid_json");
}

TEST_F(PipelineTest, WrongContentTypeIs415) {
  auto response = Post("/echo", "to_number=%2B1555", "application/x-www-form-urlencoded");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 415);
  EXPECT_EQ(Code(*response), "unsupported_media_type");
  // Without a Content-Type the body is still parsed as JSON.
  response = Fetch(port_, "POST", "/echo", {}, R"({"x":1})");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(PipelineTest, BodyLimitsAre413PerRoute) {
  auto response = Post("/echo", "[" + std::string(3000, ' ') + "]");  // route limit 2048
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(Code(*response), "payload_too_large");
  EXPECT_TRUE(response->Closes());
  // A route that raised its limit accepts what the default (1024) would refuse.
  response = Post("/raw", std::string(10000, 'b'), "application/octet-stream");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(Json(*response).at("bytes").as_int64(), 10000);
}

// Beast's parser has a default limit of 1 MiB; a route's own limit replaces it, both ways.
TEST_F(PipelineTest, ARouteLimitAboveOneMebibyteHolds) {
  const std::string two_mib(2 * 1024 * 1024, 'm');
  auto response = Post("/big", two_mib, "application/octet-stream");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(Json(*response).at("bytes").as_int64(), static_cast<std::int64_t>(two_mib.size()));

  // A declared length over the route's limit is refused from the head alone: the client that
  // sent no body gets its 413 at once.
  TcpConnection connection(port_);
  ASSERT_TRUE(
      connection.Send("POST /big HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: 5000000\r\n\r\n"));
  response = connection.Read(5s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(Code(*response), "payload_too_large");
  EXPECT_EQ(Json(*response).at("error").at("details").at("limit_bytes").as_int64(),
            4 * 1024 * 1024);
  EXPECT_TRUE(response->Closes());
}

TEST_F(PipelineTest, ChunkedBodiesAreReadAndLimited) {
  TcpConnection connection(port_);
  std::string request =
      "POST /raw HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i)
    request += "3e8\r\n" + std::string(1000, 'c') + "\r\n";
  request += "0\r\n\r\n";
  ASSERT_TRUE(connection.Send(request));
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(Json(*response).at("bytes").as_int64(), 10000);

  // Over the limit with no Content-Length to refuse it up front: caught while reading.
  TcpConnection big(port_);
  std::string too_much =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 4; ++i)
    too_much += "3e8\r\n" + std::string(1000, ' ') + "\r\n";
  too_much += "0\r\n\r\n";
  ASSERT_TRUE(big.Send(too_much));
  response = big.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
}

TEST_F(PipelineTest, SlowBodyIs408) {
  TcpConnection connection(port_);
  ASSERT_TRUE(
      connection.Send("POST /raw HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: 100\r\n\r\nonly ten b"));
  auto response = connection.Read(5s);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 408);
  EXPECT_EQ(Code(*response), "request_timeout");
  EXPECT_TRUE(connection.WaitClosed(2s));
}

TEST_F(PipelineTest, ExpectContinueGetsA100First) {
  TcpConnection connection(port_);
  ASSERT_TRUE(
      connection.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      "Content-Length: 7\r\nExpect: 100-continue\r\n\r\n"));
  auto interim = connection.Read(5s);
  ASSERT_TRUE(interim);
  EXPECT_EQ(interim->status, 100);
  ASSERT_TRUE(connection.Send(R"({"x":1})"));
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(PipelineTest, ApiKeysAreRequiredWhereTheRouteSaysSo) {
  auto response = Fetch(port_, "GET", "/secret");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(Code(*response), "missing_api_key");
  response = Fetch(port_, "GET", "/secret", {{"X-API-Key", "key-one-abcdeX"}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(Code(*response), "invalid_api_key");
  response = Fetch(port_, "GET", "/secret", {{"X-API-Key", "key-two-ghijkl"}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  response = Fetch(port_, "GET", "/secret", {{"Authorization", "Bearer key-one-abcdef"}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  // Routes that do not ask for a key stay open.
  response = Fetch(port_, "GET", "/items/1");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(PipelineTest, PathAndQueryParameters) {
  auto response = Fetch(port_, "GET", "/items/conv%20%2F42?sort=new+first&x=1");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  EXPECT_EQ(Json(*response).at("item_id").as_string(), "conv /42");
  EXPECT_EQ(Json(*response).at("sort").as_string(), "new first");
}

TEST_F(PipelineTest, HandlerFailuresBecome500AndTheServerStaysUp) {
  auto response = Fetch(port_, "GET", "/throws", {{"X-Request-Id", "trace-me"}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);
  EXPECT_EQ(Code(*response), "internal_error");
  EXPECT_EQ(Json(*response).at("error").at("request_id").as_string(), "trace-me");
  EXPECT_EQ(response->body.find("boom"), std::string::npos) << "no internals to the client";

  response = Fetch(port_, "GET", "/forgets");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 500);

  response = Fetch(port_, "GET", "/items/ok");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(PipelineTest, AnswersFromAnotherThreadKeepTheConnectionInOrder) {
  TcpConnection connection(port_);
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(connection.Send(BuildRequest("GET", "/later")));
    ASSERT_TRUE(connection.Send(BuildRequest("GET", "/items/" + std::to_string(i))));
    auto later = connection.Read();
    auto item = connection.Read();
    ASSERT_TRUE(later && item);
    EXPECT_EQ(Json(*later).at("answered").as_string(), "from another thread");
    EXPECT_EQ(Json(*item).at("item_id").as_string(), std::to_string(i));
  }
}

}  // namespace
}  // namespace callgate::testing

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

TEST(HttpsServer, ServesOverVerifiedTls) {
  TempDir dir;
  const TestCertificate cert = MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty()) << "openssl could not make a certificate";
  net::Runtime runtime(2);
  http::Router router;
  router.Add("GET", "/hello", [](http::Request request, http::Responder responder) {
    responder.Send(http::Response::Json(200, {{"tls", request.tls}}));
  });
  http::Dispatcher dispatcher(router, {});
  ServedRouter served(runtime, dispatcher,
                      {.host = "127.0.0.1",
                       .port = 0,
                       .tls_cert_file = cert.cert_file,
                       .tls_key_file = cert.key_file});
  const std::uint16_t port = served.port();
  EXPECT_TRUE(served.server().tls());

  {
    TcpConnection connection(port, TlsClientOptions{.ca_file = cert.cert_file});
    ASSERT_TRUE(connection.connected());
    for (int i = 0; i < 3; ++i) {  // keep-alive over TLS
      ASSERT_TRUE(connection.Send(BuildRequest("GET", "/hello")));
      auto response = connection.Read();
      ASSERT_TRUE(response);
      EXPECT_EQ(response->status, 200);
      EXPECT_EQ(response->body, R"({"tls":true})");
    }
    // A client that expects another host name refuses the certificate.
    TcpConnection wrong_name(
        port, TlsClientOptions{.ca_file = cert.cert_file, .server_name = "api.elevenlabs.io"});
    EXPECT_FALSE(wrong_name.connected());
    // Plain HTTP to the TLS port gets no HTTP answer, and the server keeps serving.
    TcpConnection plain(port);
    ASSERT_TRUE(plain.Send(BuildRequest("GET", "/hello")));
    EXPECT_FALSE(plain.Read(2s));
    TcpConnection again(port, TlsClientOptions{.ca_file = cert.cert_file});
    ASSERT_TRUE(again.connected());
    ASSERT_TRUE(again.Send(BuildRequest("GET", "/hello")));
    auto response = again.Read();
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200);
  }
}

TEST(HttpsServer, MissingCertificateIsAClearError) {
  net::Runtime runtime(1);
  metrics::Registry registry;
  http::Router router;
  http::Dispatcher dispatcher(router, {});
  http::Server server(
      runtime, dispatcher, registry,
      {.tls_cert_file = "/nonexistent/cert.pem", .tls_key_file = "/nonexistent/key.pem"});
  try {
    server.Listen();
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/cert.pem"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace callgate::testing
