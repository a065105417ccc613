// The simulator's REST half served by the real http::Server on net::Runtime, over real TCP on
// 127.0.0.1 (port 0), with a ScaledClock and the Asio scheduler: what end-to-end tests of the
// gateway will talk to.
#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/simulator.hpp"
#include "support/http_client.hpp"
#include "support/served_router.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cerrno>
#include <cstring>
#include <future>
#include <thread>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kKey[] = "sk_integration_9c3e71a0b5d24f68";

class SimRestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sim::SimOptions options;
    options.api_key = kKey;
    options.advance_clock = [this](std::chrono::seconds s) { clock_.Advance(s); };
    simulator_ = std::make_unique<sim::Simulator>(std::move(options), clock_, scheduler_);
    simulator_->AddRoutes(router_);
    dispatcher_ = std::make_unique<http::Dispatcher>(
        router_, http::DispatchOptions{.render_error = simulator_->ErrorRenderer(),
                                       .observer = simulator_->Observer()});
    served_ = std::make_unique<ServedRouter>(
        runtime_, *dispatcher_,
        http::ServerOptions{.host = "127.0.0.1", .port = 0, .server_name = "uvicorn"});
    port_ = served_->port();
  }

  void TearDown() override {
    served_.reset();  // graceful stop; the runtime thread is joined
  }

  std::optional<HttpResponse> Api(const std::string& method, const std::string& target,
                                  const std::string& body = {}) {
    std::vector<std::pair<std::string, std::string>> headers{{"xi-api-key", kKey}};
    if (!body.empty()) headers.emplace_back("Content-Type", "application/json");
    return Fetch(port_, method, target, headers, body);
  }
  std::optional<HttpResponse> Control(const std::string& method, const std::string& target,
                                      const std::string& body = {}) {
    return Fetch(port_, method, target, {{"Content-Type", "application/json"}}, body);
  }
  static boost::json::value Json(const HttpResponse& r) { return boost::json::parse(r.body); }

  static constexpr char kCallBody[] =
      R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio",)"
      R"("to_number":"+15551234567","conversation_initiation_client_data":)"
      R"({"dynamic_variables":{"purpose":"your order"}}})";

  core::ScaledClock clock_{1.0};
  net::Runtime runtime_{2};
  net::AsioScheduler scheduler_{runtime_};
  http::Router router_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::uint16_t port_ = 0;
};

TEST_F(SimRestTest, OutboundCallIsJournaledExactly) {
  auto response = Api("POST", "/v1/convai/twilio/outbound-call", kCallBody);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const auto body = Json(*response);
  EXPECT_EQ(body.at("success"), true);
  EXPECT_TRUE(body.at("conversation_id").as_string().starts_with("conv_"));
  EXPECT_EQ(response->Header("x-trace-id").size(), 32u);
  EXPECT_EQ(response->Header("server"), "uvicorn");

  auto journal = Control("GET", "/_sim/requests?path=/v1/convai/twilio/outbound-call");
  ASSERT_TRUE(journal);
  ASSERT_EQ(journal->status, 200);
  EXPECT_EQ(journal->body.find(kKey), std::string::npos) << "the key never reaches the journal";
  const auto requests = Json(*journal).at("requests").as_array();
  ASSERT_EQ(requests.size(), 1u);
  const auto& entry = requests[0];
  EXPECT_EQ(entry.at("method"), "POST");
  EXPECT_EQ(entry.at("body").as_string(), kCallBody);
  EXPECT_EQ(entry.at("status"), 200);
  EXPECT_EQ(entry.at("headers").at("xi-api-key"), "***");
  EXPECT_EQ(entry.at("headers").at("content-type"), "application/json");
  EXPECT_EQ(entry.at("headers").at("content-length").as_string(),
            std::to_string(std::strlen(kCallBody)));
  EXPECT_EQ(entry.at("trace_id").as_string(), response->Header("x-trace-id"));
}

TEST_F(SimRestTest, ConversationWalksToDoneWhenTheClockIsAdvanced) {
  auto response = Api("POST", "/v1/convai/twilio/outbound-call", kCallBody);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const std::string id(Json(*response).at("conversation_id").as_string());

  response = Api("GET", "/v1/convai/conversations/" + id);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  EXPECT_EQ(Json(*response).at("status"), "initiated");

  auto advanced = Control("POST", "/_sim/clock/advance", R"({"seconds":60})");
  ASSERT_TRUE(advanced);
  ASSERT_EQ(advanced->status, 200) << advanced->body;

  response = Api("GET", "/v1/convai/conversations/" + id);
  ASSERT_TRUE(response);
  const auto body = Json(*response);
  EXPECT_EQ(body.at("status"), "done");
  EXPECT_EQ(body.at("analysis").at("call_successful"), "success");
  EXPECT_EQ(body.at("transcript").at(0).at("message"), "Hello! I'm calling about your order.");
  EXPECT_EQ(body.at("has_audio"), true);
}

TEST_F(SimRestTest, UnknownRoutesAndAuthOverTheWire) {
  auto response = Api("GET", "/v1/convai/agents-that-do-not-exist");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(Json(*response), boost::json::parse(R"({"detail":"Not Found"})"));

  response = Fetch(port_, "GET", "/v1/convai/phone-numbers");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(Json(*response).at("detail").at("request_id").as_string(),
            response->Header("x-trace-id"));
}

// Sends one request on a raw socket and reports how the connection ended: "reset" when recv
// fails with ECONNRESET before any byte arrives, "data" when bytes arrive, "eof" on a clean
// close, "timeout" otherwise.
std::string HowConnectionEnds(std::uint16_t port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return "connect failed";
  }
  std::string outcome = "timeout";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
      static_cast<ssize_t>(request.size())) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, 10'000) > 0) {
      char byte;
      const ssize_t n = ::recv(fd, &byte, 1, 0);
      outcome = n > 0 ? "data" : n == 0 ? "eof" : errno == ECONNRESET ? "reset" : "error";
    }
  }
  ::close(fd);
  return outcome;
}

TEST_F(SimRestTest, ResetFaultResetsTheConnection) {
  auto added =
      Control("POST", "/_sim/faults",
              R"({"route":"POST /v1/convai/twilio/outbound-call","reset":true,"count":2})");
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 200) << added->body;

  const std::string request =
      BuildRequest("POST", "/v1/convai/twilio/outbound-call",
                   {{"xi-api-key", kKey}, {"Content-Type", "application/json"}}, kCallBody);
  EXPECT_EQ(HowConnectionEnds(port_, request), "reset")
      << "an aborted connection must be closed with a bare RST; a FIN first (graceful "
         "shutdown of the send side) makes clients see a clean EOF instead (http/server.cpp)";
  EXPECT_FALSE(Fetch(port_, "POST", "/v1/convai/twilio/outbound-call",
                     {{"xi-api-key", kKey}, {"Content-Type", "application/json"}}, kCallBody))
      << "the second reset answers nothing either";

  // The fault is used up: the next call is answered, and the journal shows all three.
  auto response = Api("POST", "/v1/convai/twilio/outbound-call", kCallBody);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  const auto requests = Json(*Control("GET", "/_sim/requests")).at("requests").as_array();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].at("status"), 0);
  EXPECT_EQ(requests[1].at("status"), 0);
  EXPECT_EQ(requests[2].at("status"), 200);
}

TEST_F(SimRestTest, TruncateFaultIsWellFramedButCut) {
  auto whole = Api("GET", "/v1/convai/phone-numbers");
  ASSERT_TRUE(whole);
  ASSERT_TRUE(Control("POST", "/_sim/faults", R"({"route":"*","truncate":true})"));
  auto cut = Api("GET", "/v1/convai/phone-numbers");
  ASSERT_TRUE(cut) << "Content-Length must match the cut body, or the read would time out";
  EXPECT_EQ(cut->status, 200);
  EXPECT_EQ(cut->body, whole->body.substr(0, whole->body.size() / 2));
  EXPECT_EQ(cut->Header("content-length"), std::to_string(cut->body.size()));
}

TEST_F(SimRestTest, TruncateFaultCutsAStreamedRecordingToo) {
  auto call = Api("POST", "/v1/convai/twilio/outbound-call", kCallBody);
  ASSERT_TRUE(call);
  ASSERT_EQ(call->status, 200);
  const std::string id(Json(*call).at("conversation_id").as_string());
  ASSERT_TRUE(Control("POST", "/_sim/clock/advance", R"({"seconds":60})"));
  const std::string audio = "/v1/convai/conversations/" + id + "/audio";
  auto whole = Api("GET", audio);
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200);
  ASSERT_GT(whole->body.size(), 1000u);

  ASSERT_TRUE(Control("POST", "/_sim/faults",
                      R"({"route":"GET /v1/convai/conversations/{conversation_id}/audio",)"
                      R"("truncate":true})"));
  auto cut = Api("GET", audio);
  ASSERT_TRUE(cut) << "Content-Length must match the cut body, or the read would time out";
  EXPECT_EQ(cut->status, 200);
  EXPECT_EQ(cut->Header("content-type"), "audio/mpeg");
  EXPECT_EQ(cut->body, whole->body.substr(0, whole->body.size() / 2));
  EXPECT_EQ(cut->Header("content-length"), std::to_string(cut->body.size()));
}

TEST_F(SimRestTest, LatencyFaultDelaysTheAnswer) {
  auto added = Control("POST", "/_sim/faults",
                       R"({"route":"GET /v1/convai/phone-numbers","latency_ms":300})");
  ASSERT_TRUE(added);
  ASSERT_EQ(added->status, 200);
  const auto started = std::chrono::steady_clock::now();
  auto response = Api("GET", "/v1/convai/phone-numbers");
  const auto elapsed = std::chrono::steady_clock::now() - started;
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_TRUE(Json(*response).is_array());
  EXPECT_GE(elapsed, 300ms);
}

}  // namespace
}  // namespace callgate::testing
