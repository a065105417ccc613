// `callgate sim` as a separate process, over real sockets (HTTP and HTTPS).
#include "integration/sim_process.hpp"
#include "support/ws_client.hpp"

#include "audio/mp3.hpp"

#include <gtest/gtest.h>
#include <boost/json/parse.hpp>

#include <cmath>
#include <csignal>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

boost::json::value Json(const HttpResponse& response) {
  return boost::json::parse(response.body);
}

std::string CallBody(const std::string& to) {
  return R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio",)"
         R"("to_number":")" +
         to +
         R"(","conversation_initiation_client_data":{"dynamic_variables":)"
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
  ASSERT_TRUE(Fetch(sim.port(), "POST", "/_sim/clock/advance",
                    {{"Content-Type", "application/json"}}, R"({"seconds":3600})"));
  response = Fetch(sim.port(), "GET", "/v1/convai/conversations/" + conversation_id, auth);
  ASSERT_TRUE(response);
  EXPECT_EQ(Json(*response).at("status").as_string(), "done");

  sim.process().Signal(SIGTERM);
  EXPECT_EQ(sim.process().WaitExit(20s), 0) << sim.Output();
  EXPECT_EQ(sim.Output().find(sim.api_key()), std::string::npos) << "the key is never logged";
}

TEST(SimProcess, ServesAPlayableMp3RecordingOnceTheCallIsDone) {
  SimProcess sim({"--time-scale", "1"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  const std::vector<std::pair<std::string, std::string>> auth = {{"xi-api-key", sim.api_key()}};
  auto headers = auth;
  headers.emplace_back("Content-Type", "application/json");
  auto response = Fetch(sim.port(), "POST", "/v1/convai/twilio/outbound-call", headers,
                        CallBody("+15551234567"));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const std::string audio_path = "/v1/convai/conversations/" +
                                 std::string(Json(*response).at("conversation_id").as_string()) +
                                 "/audio";

  response = Fetch(sim.port(), "GET", audio_path, auth);  // still ringing: no audio yet
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404) << response->body;
  response = Fetch(sim.port(), "GET", audio_path);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);

  ASSERT_TRUE(Fetch(sim.port(), "POST", "/_sim/clock/advance",
                    {{"Content-Type", "application/json"}}, R"({"seconds":3600})"));
  response = Fetch(sim.port(), "GET", audio_path, auth);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(response->Header("content-type"), "audio/mpeg");
  int rate = 0;
  const auto samples = audio::DecodeMp3(response->body, &rate);
  ASSERT_GT(rate, 0);
  const double seconds = static_cast<double>(samples.size()) / rate;
  EXPECT_GT(seconds, 3.0) << "the transcript spoken: several turns";
  double energy = 0;
  for (const auto sample : samples)
    energy += static_cast<double>(sample) * sample;
  EXPECT_GT(std::sqrt(energy / static_cast<double>(samples.size())), 300.0) << "not silence";

  auto again = Fetch(sim.port(), "GET", audio_path, auth);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body, response->body) << "rendered once, the same bytes every time";
}

TEST(SimProcess, ConversationWebSocketThroughASignedUrl) {
  SimProcess sim({"--ping-interval-ms", "200", "--speech-speed", "4"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  auto response =
      Fetch(sim.port(), "GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_default",
            {{"xi-api-key", sim.api_key()}});
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const std::string url(Json(*response).at("signed_url").as_string());
  // Built from the request's Host header (the test client sends "127.0.0.1" without a port).
  ASSERT_TRUE(url.starts_with("ws://127.0.0.1/v1/convai/conversation?agent_id=agent_sim_default&"))
      << url;
  EXPECT_NE(url.find("conversation_signature="), std::string::npos) << url;

  WsClient client(sim.port(), url.substr(url.find("/v1/")));
  ASSERT_TRUE(client.open()) << client.handshake_status();
  ASSERT_TRUE(client.SendText(
      R"({"type":"conversation_initiation_client_data","dynamic_variables":{"purpose":"a test"}})"));
  auto first = client.Read();
  ASSERT_TRUE(first);
  const auto metadata = boost::json::parse(first->data);
  ASSERT_EQ(metadata.at("type").as_string(), "conversation_initiation_metadata");
  const auto& event = metadata.at("conversation_initiation_metadata_event");
  EXPECT_EQ(event.at("agent_output_audio_format").as_string(), "pcm_16000");
  const std::string conversation_id(event.at("conversation_id").as_string());

  bool greeted = false;
  bool audio = false;
  int pongs = 0;
  for (int i = 0; i < 200 && (!greeted || !audio || pongs < 2); ++i) {
    auto message = client.Read(std::chrono::seconds(10));
    ASSERT_TRUE(message);
    const auto json = boost::json::parse(message->data);
    const auto type = json.at("type").as_string();
    if (type == "agent_response") {
      greeted = json.at("agent_response_event").at("agent_response").as_string() ==
                "Hello! I'm calling about a test.";
    } else if (type == "audio") {
      audio = !json.at("audio_event").at("audio_base_64").as_string().empty();
    } else if (type == "ping") {
      const auto id = json.at("ping_event").at("event_id").as_int64();
      ASSERT_TRUE(client.SendText(R"({"type":"pong","event_id":)" + std::to_string(id) + "}"));
      ++pongs;
    }
  }
  EXPECT_TRUE(greeted);
  EXPECT_TRUE(audio);
  EXPECT_GE(pongs, 2);
  auto stats = Fetch(sim.port(), "GET", "/_sim/conversations/" + conversation_id + "/websocket");
  ASSERT_TRUE(stats);
  ASSERT_EQ(stats->status, 200) << stats->body;
  EXPECT_EQ(boost::json::parse(stats->body)
                .at("init_message")
                .at("dynamic_variables")
                .at("purpose")
                .as_string(),
            "a test");
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
  response =
      Fetch(sim.port(), "GET", "/v1/convai/conversations/" + id, {{"xi-api-key", sim.api_key()}});
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
  ASSERT_TRUE(connection.Send(
      BuildRequest("GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_default",
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
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"--webhook-fault", "explode=2"},
        std::vector<std::string>{"--webhook-event", "everything"}}) {
    std::vector<std::string> args{CallgateBinary(), "sim", "--port", "0"};
    args.insert(args.end(), bad.begin(), bad.end());
    ChildProcess webhook_process({.args = args,
                                  .environment = {},
                                  .working_dir = dir.path(),
                                  .log_file = dir.path() / (bad[0].substr(2) + ".log")});
    EXPECT_EQ(webhook_process.WaitExit(20s), 2);
    EXPECT_NE(webhook_process.Output().find(bad[0]), std::string::npos) << webhook_process.Output();
  }
}

TEST(SimProcess, WebhookFlagsReachTheSender) {
  // Nothing listens on port 1: the delivery fails, and the control API says how.
  SimProcess sim({"--time-scale", "100", "--webhook-url", "http://127.0.0.1:1/hook",
                  "--webhook-event", "transcript", "--webhook-event", "audio", "--webhook-fault",
                  "bad_signature=2"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  auto state = Fetch(sim.port(), "GET", "/_sim/webhooks");
  ASSERT_TRUE(state && state->status == 200);
  EXPECT_EQ(Json(*state).at("url").as_string(), "http://127.0.0.1:1/hook");
  EXPECT_EQ(Json(*state).at("events").as_array().size(), 2u);
  auto faults = Fetch(sim.port(), "GET", "/_sim/webhook-faults");
  ASSERT_TRUE(faults);
  EXPECT_EQ(Json(*faults).at("faults").at(0).at("remaining").as_int64(), 2);

  auto call = Fetch(sim.port(), "POST", "/v1/convai/twilio/outbound-call",
                    {{"xi-api-key", sim.api_key()}, {"Content-Type", "application/json"}},
                    CallBody("+15551234567"));
  ASSERT_TRUE(call && call->status == 200);
  // 28 simulated seconds at x100: under a second.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto s = Fetch(sim.port(), "GET", "/_sim/webhooks");
        return s && !Json(*s).at("deliveries").as_array().empty();
      },
      20s))
      << sim.Output();
  state = Fetch(sim.port(), "GET", "/_sim/webhooks");
  ASSERT_TRUE(state);
  const auto state_json = Json(*state);
  const auto& delivery = state_json.at("deliveries").at(0);
  EXPECT_EQ(delivery.at("type").as_string(), "post_call_transcription");
  EXPECT_EQ(delivery.at("outcome").as_string(), "failed");
  EXPECT_EQ(delivery.at("fault").as_string(), "bad_signature");
  EXPECT_NE(std::string(delivery.at("error").as_string()).find("connect_failed"),
            std::string::npos);
}

}  // namespace
}  // namespace callgate::testing
