// `callgate sim` as a separate process, over real sockets (HTTP and HTTPS).
#include "integration/sim_process.hpp"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

#include <csignal>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

boost::json::value Json(const HttpResponse& response) { return boost::json::parse(response.body); }

std::string CallBody(const std::string& to) {
  return R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio",)"
         R"("to_number":")" +
         to + R"(","conversation_initiation_client_data":{"dynamic_variables":)"
              R"({"purpose":"a parking ticket"}}})";
}

TEST(SimProcess, AnswersLikeTheRealApi) {
  SimProcess sim({"--time-scale", "1"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  const std::vector<std::pair<std::string, std::string>> auth = {{"xi-api-key", sim.api_key()}};

  auto response = Fetch(sim.port(), "GET", "/v1/convai/phone-numbers");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(response->Header("server"), "uvicorn");
  EXPECT_EQ(Json(*response).at("detail").at("status").as_string(), "needs_authorization");
  EXPECT_EQ(Json(*response).at("detail").at("request_id").as_string(),
            response->Header("x-trace-id"));

  response = Fetch(sim.port(), "GET", "/v1/convai/phone-numbers", auth);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  EXPECT_TRUE(Json(*response).is_array());

  response = Fetch(sim.port(), "GET", "/v1/nothing", auth);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->body, R"({"detail":"Not Found"})");

  auto headers = auth;
  headers.emplace_back("Content-Type", "application/json");
  response = Fetch(sim.port(), "POST", "/v1/convai/twilio/outbound-call", headers,
                   CallBody("+15551234567"));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const std::string conversation_id(Json(*response).at("conversation_id").as_string());
  EXPECT_TRUE(Json(*response).at("callSid").as_string().starts_with("CA"));

  // The journal saw the exact request, with the key redacted.
  auto journal = Fetch(sim.port(), "GET", "/_sim/requests?path=/v1/convai/twilio/outbound-call");
  ASSERT_TRUE(journal);
  const boost::json::value journal_json = Json(*journal);
  const auto& requests = journal_json.at("requests").as_array();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].at("headers").at("xi-api-key").as_string(), "***");
  EXPECT_EQ(journal->body.find(sim.api_key()), std::string::npos);
  EXPECT_EQ(boost::json::parse(requests[0].at("body").as_string())
                .at("conversation_initiation_client_data")
                .at("dynamic_variables")
                .at("purpose")
                .as_string(),
            "a parking ticket");

  // The clock can be moved: the call ends.
  ASSERT_TRUE(Fetch(sim.port(), "POST", "/_sim/clock/advance", {{"Content-Type", "application/json"}},
                    R"({"seconds":3600})"));
  response = Fetch(sim.port(), "GET", "/v1/convai/conversations/" + conversation_id, auth);
  ASSERT_TRUE(response);
  EXPECT_EQ(Json(*response).at("status").as_string(), "done");

  sim.process().Signal(SIGTERM);
  EXPECT_EQ(sim.process().WaitExit(20s), 0) << sim.Output();
  EXPECT_EQ(sim.Output().find(sim.api_key()), std::string::npos) << "the key is never logged";
}

TEST(SimProcess, CalleeBehaviourFromTheCommandLine) {
  SimProcess sim({"--callee", "+15550000486=busy", "--time-scale", "1"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"xi-api-key", sim.api_key()}, {"Content-Type", "application/json"}};
  auto response = Fetch(sim.port(), "POST", "/v1/convai/twilio/outbound-call", headers,
                        CallBody("+15550000486"));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const std::string id(Json(*response).at("conversation_id").as_string());
  ASSERT_TRUE(Fetch(sim.port(), "POST", "/_sim/clock/advance",
                    {{"Content-Type", "application/json"}}, R"({"seconds":60})"));
  response = Fetch(sim.port(), "GET", "/v1/convai/conversations/" + id,
                   {{"xi-api-key", sim.api_key()}});
  ASSERT_TRUE(response);
  EXPECT_EQ(Json(*response).at("status").as_string(), "failed");
  EXPECT_EQ(Json(*response).at("metadata").at("termination_reason").as_string(), "busy");
}

TEST(SimProcess, ServesHttpsWithTheGivenCertificate) {
  TempDir dir;
  const TestCertificate cert = MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty());
  SimProcess sim({"--tls-cert", cert.cert_file, "--tls-key", cert.key_file});
  ASSERT_TRUE(sim.started()) << sim.Output();
  TcpConnection connection(sim.port(), TlsClientOptions{.ca_file = cert.cert_file});
  ASSERT_TRUE(connection.connected());
  ASSERT_TRUE(connection.Send(
      BuildRequest("GET", "/v1/convai/phone-numbers", {{"xi-api-key", sim.api_key()}})));
  auto response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  // The signed URL it hands out is wss:// on HTTPS.
  ASSERT_TRUE(connection.Send(BuildRequest(
      "GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_default",
      {{"xi-api-key", sim.api_key()}})));
  response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_TRUE(Json(*response).at("signed_url").as_string().starts_with("wss://")) << response->body;
}

TEST(SimProcess, BadOptionsExitWith2) {
  TempDir dir;
  ChildProcess process({.args = {CallgateBinary(), "sim", "--port", "0", "--callee", "+1555=maybe"},
                        .environment = {},
                        .working_dir = dir.path(),
                        .log_file = dir.path() / "out.log"});
  EXPECT_EQ(process.WaitExit(20s), 2);
  EXPECT_NE(process.Output().find("--callee"), std::string::npos) << process.Output();
}

}  // namespace
}  // namespace callgate::testing
