// The simulator's conversation WebSocket (sim::ConversationService) served by the real
// http::Server on net::Runtime over TCP on 127.0.0.1 (port 0), next to the REST half, driven by
// the independent raw WsClient: what the gateway's live-conversation engine will talk to.
#include "audio/codec.hpp"
#include "audio/speech.hpp"
#include "audio/vad.hpp"
#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "http/server.hpp"
#include "metrics/registry.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/agent/conversation_service.hpp"
#include "sim/agent/protocol.hpp"
#include "sim/simulator.hpp"
#include "support/http_client.hpp"
#include "support/served_router.hpp"
#include "support/ws_client.hpp"

#include <openssl/sha.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cstdio>
#include <future>
#include <thread>

namespace callgate::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kKey[] = "sk_integration_ws_2f9d0c1b7a";
constexpr char kInit[] =
    R"({"type":"conversation_initiation_client_data","dynamic_variables":{"purpose":"your order"}})";

std::string Sha256Hex(const std::vector<std::uint8_t>& bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", byte);
    hex += two;
  }
  return hex;
}

class SimWsTest : public ::testing::Test {
 protected:
  void Start(sim::ConversationServiceOptions options = {}) {
    sim::SimOptions sim_options;
    sim_options.api_key = kKey;
    sim_options.advance_clock = [this](std::chrono::seconds s) { clock_.Advance(s); };
    sim_options.agents = sim::DefaultAgents();
    sim_options.agents.push_back({.agent_id = "agent_pcm44",
                                  .name = "44.1 kHz",
                                  .is_public = true,
                                  .first_message = "Hello, this is the agent speaking.",
                                  .output_format = "pcm_44100"});
    sim_options.agents.push_back({.agent_id = "agent_ulaw",
                                  .name = "Telephony",
                                  .is_public = true,
                                  .first_message = "Hello, this is the agent speaking.",
                                  .input_format = "ulaw_8000",
                                  .output_format = "ulaw_8000"});
    sim_options.agents.push_back(
        {.agent_id = "agent_long",
         .name = "Talkative",
         .is_public = true,
         .first_message = "Good afternoon! I would like to tell you, at some length, about the "
                          "many excellent services that we offer to all of our customers."});
    simulator_ = std::make_unique<sim::Simulator>(std::move(sim_options), clock_, scheduler_);
    simulator_->AddRoutes(router_);
    if (options.ping_interval == sim::ConversationServiceOptions{}.ping_interval) {
      options.ping_interval = 300ms;
    }
    service_ = std::make_unique<sim::ConversationService>(*simulator_, scheduler_, options);
    service_->AddRoutes(router_);
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
    service_.reset();
  }

  std::unique_ptr<WsClient> Connect(const std::string& target,
                                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    return std::make_unique<WsClient>(port_, target, headers);
  }

  // Reads JSON messages until one of `type` (returned), a close (returned as
  // {"type":"close","code":n}) or the end of the connection (nullopt). Everything read goes to
  // `seen` when given. Answers JSON pings when `answer_pings`.
  std::optional<json::object> ReadUntil(WsClient& ws, std::string_view type,
                                        std::vector<json::object>* seen = nullptr,
                                        bool answer_pings = true,
                                        std::chrono::milliseconds timeout = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      auto message = ws.Read(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!message) return std::nullopt;
      if (message->kind == WsClient::Message::Kind::kClose) {
        json::object close{
            {"type", "close"}, {"code", message->close_code}, {"reason", message->data}};
        if (seen) seen->push_back(close);
        return close;
      }
      json::object event = json::parse(message->data).as_object();
      if (seen) seen->push_back(event);
      if (answer_pings && event.at("type") == "ping") {
        ws.SendText(R"({"type":"pong","event_id":)" +
                    std::to_string(event.at("ping_event").at("event_id").as_int64()) + "}");
      }
      if (event.at("type").as_string() == type) return event;
    }
    return std::nullopt;
  }

  json::value Stats(const std::string& conversation_id) {
    auto response = Fetch(port_, "GET", "/_sim/conversations/" + conversation_id + "/websocket");
    if (!response || response->status != 200) {
      ADD_FAILURE() << (response ? response->body : "no response");
      return nullptr;
    }
    return json::parse(response->body);
  }

  // Waits until the session's statistics show it closed.
  json::value ClosedStats(const std::string& conversation_id) {
    for (int i = 0; i < 200; ++i) {
      auto stats = Stats(conversation_id);
      if (stats.is_object() && !stats.at("close").is_null()) return stats;
      std::this_thread::sleep_for(20ms);
    }
    return nullptr;
  }

  std::string SignedTarget(const std::string& agent_id) {
    auto response =
        Fetch(port_, "GET", "/v1/convai/conversation/get-signed-url?agent_id=" + agent_id,
              {{"xi-api-key", kKey}});
    if (!response || response->status != 200) return {};
    const std::string url(json::parse(response->body).at("signed_url").as_string());
    return url.substr(url.find("/v1/"));
  }

  static std::string ConversationId(const json::object& metadata) {
    return std::string(
        metadata.at("conversation_initiation_metadata_event").at("conversation_id").as_string());
  }

  // Sends `samples` (16 kHz PCM) as user_audio_chunk messages of 50 ms, paced in real time.
  static std::vector<std::uint8_t> SendSpeech(WsClient& ws,
                                              const std::vector<std::int16_t>& samples,
                                              const audio::AudioFormat& format) {
    std::vector<std::uint8_t> all;
    const std::size_t per_chunk = static_cast<std::size_t>(format.sample_rate) / 20;
    for (std::size_t at = 0; at < samples.size(); at += per_chunk) {
      const std::size_t n = std::min(per_chunk, samples.size() - at);
      const auto bytes = audio::Encode(format, std::span(samples).subspan(at, n));
      all.insert(all.end(), bytes.begin(), bytes.end());
      if (!ws.SendText(R"({"user_audio_chunk":")" +
                       sim::agent::Base64Encode(bytes.data(), bytes.size()) + "\"}")) {
        break;
      }
      std::this_thread::sleep_for(50ms);
    }
    return all;
  }

  static std::vector<std::int16_t> HelloThere(int rate) {
    static audio::SpeechSynthesizer synthesizer;
    auto samples = synthesizer.Synthesize("hello there", rate);
    samples.insert(samples.end(), static_cast<std::size_t>(rate), 0);  // 1 s of silence
    return samples;
  }

  core::ScaledClock clock_{1.0};
  net::Runtime runtime_{2};
  net::AsioScheduler scheduler_{runtime_};
  http::Router router_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::unique_ptr<sim::ConversationService> service_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::uint16_t port_ = 0;
};

TEST_F(SimWsTest, SignedUrlFlowSendsMetadataFirstAndTheSignatureIsSingleUse) {
  Start({.speech_speed = 8.0});
  const std::string target = SignedTarget("agent_sim_default");
  ASSERT_NE(target.find("conversation_signature="), std::string::npos) << target;
  auto ws = Connect(target, {{"Sec-WebSocket-Protocol", "convai"}});
  ASSERT_TRUE(ws->open()) << ws->handshake_status();
  EXPECT_EQ(ws->handshake_response().Header("sec-websocket-protocol"), "convai");
  ASSERT_TRUE(ws->SendText(kInit));
  auto first = ws->Read(10s);
  ASSERT_TRUE(first);
  const auto metadata = json::parse(first->data).as_object();
  ASSERT_EQ(metadata.at("type"), "conversation_initiation_metadata") << first->data;
  const auto& event = metadata.at("conversation_initiation_metadata_event");
  EXPECT_EQ(event.at("agent_output_audio_format"), "pcm_16000");
  EXPECT_EQ(event.at("user_input_audio_format"), "pcm_16000");
  auto response = ReadUntil(*ws, "agent_response");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->at("agent_response_event").at("agent_response"),
            "Hello! I'm calling about your order.");
  ws->SendClose(1000, "User ended conversation");
  ReadUntil(*ws, "close");  // a client keeps reading until the server's close
  const auto stats = ClosedStats(ConversationId(metadata));
  ASSERT_TRUE(stats.is_object());
  EXPECT_EQ(stats.at("close").at("by"), "client");
  EXPECT_EQ(stats.at("close").at("code"), 1000);
  EXPECT_EQ(stats.at("init_message"), json::parse(kInit));

  auto again = Connect(target);  // the same signature a second time
  ASSERT_TRUE(again->open());
  again->SendText(kInit);
  std::vector<json::object> seen;
  auto close = ReadUntil(*again, "close", &seen);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->at("code"), 1008);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen[0].at("type"), "error");
  EXPECT_EQ(seen[0].at("error_event").at("code"), 1008);
}

TEST_F(SimWsTest, PrivateAgentsNeedASignatureAndPublicOnesDoNot) {
  Start({.speech_speed = 8.0});
  auto denied = Connect("/v1/convai/conversation?agent_id=agent_sim_default");
  ASSERT_TRUE(denied->open());
  std::vector<json::object> seen;
  auto close = ReadUntil(*denied, "close", &seen);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->at("code"), 1008);
  EXPECT_EQ(seen.at(0).at("error_event").at("error_type"), "authentication_error");

  auto bad = Connect("/v1/convai/conversation?agent_id=agent_sim_default&token=forged");
  ASSERT_TRUE(bad->open());
  close = ReadUntil(*bad, "close");
  ASSERT_TRUE(close);
  EXPECT_EQ(close->at("code"), 1008);

  auto open = Connect("/v1/convai/conversation?agent_id=agent_sim_public&source=python_sdk");
  ASSERT_TRUE(open->open());
  open->SendText(R"({"type":"conversation_initiation_client_data"})");
  auto first = open->Read(10s);
  ASSERT_TRUE(first);
  EXPECT_EQ(json::parse(first->data).at("type"), "conversation_initiation_metadata");
}

TEST_F(SimWsTest, RefusalAsHttp403WhenConfigured) {
  Start({.reject_with_http = true});
  auto denied = Connect("/v1/convai/conversation?agent_id=agent_sim_default");
  EXPECT_FALSE(denied->open());
  EXPECT_EQ(denied->handshake_status(), 403);
  EXPECT_TRUE(json::parse(denied->handshake_response().body).as_object().contains("detail"));
  auto unknown = Connect("/v1/convai/conversation?agent_id=agent_nope");
  EXPECT_EQ(unknown->handshake_status(), 404);
  auto token = Connect("/v1/convai/conversation?agent_id=agent_sim_default&token=" +
                       SignedTarget("agent_sim_default")
                           .substr(SignedTarget("agent_sim_default").find("signature=") + 10));
  EXPECT_TRUE(token->open()) << "the token spelling of the signature is accepted";
}

TEST_F(SimWsTest, AnythingButInitiationFirstCloses1008) {
  Start();
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_sim_public");
  ASSERT_TRUE(ws->open());
  ws->SendText(R"({"type":"user_activity"})");
  std::vector<json::object> seen;
  auto close = ReadUntil(*ws, "close", &seen);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->at("code"), 1008);
  EXPECT_EQ(close->at("reason"), "invalid_message");
  EXPECT_EQ(seen.at(0).at("error_event").at("error_type"), "invalid_message");
}

TEST_F(SimWsTest, PingsAreTrackedByEventId) {
  Start({.ping_interval = 100ms, .speech_speed = 8.0});
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_sim_public");
  ASSERT_TRUE(ws->open());
  ws->SendText(kInit);
  auto metadata = ReadUntil(*ws, "conversation_initiation_metadata");
  ASSERT_TRUE(metadata);
  std::vector<std::int64_t> answered;
  for (int i = 0; i < 3; ++i) {
    auto ping = ReadUntil(*ws, "ping");
    ASSERT_TRUE(ping);
    answered.push_back(ping->at("ping_event").at("event_id").as_int64());
  }
  std::this_thread::sleep_for(100ms);
  const auto stats = Stats(ConversationId(*metadata));
  ASSERT_TRUE(stats.is_object());
  std::size_t matched = 0;
  for (const auto& ping : stats.at("pings").as_array()) {
    const auto id = ping.at("event_id").as_int64();
    if (std::find(answered.begin(), answered.end(), id) == answered.end()) continue;
    ++matched;
    EXPECT_EQ(ping.at("pong_received"), true) << id;
    EXPECT_GE(ping.at("latency_ms").as_int64(), 0);
  }
  EXPECT_EQ(matched, 3u);
}

TEST_F(SimWsTest, UserSpeechIsTranscribedAndHashed) {
  Start({.speech_speed = 8.0});
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_sim_public");
  ASSERT_TRUE(ws->open());
  ws->SendText(kInit);
  auto metadata = ReadUntil(*ws, "conversation_initiation_metadata");
  ASSERT_TRUE(metadata);
  const auto sent = SendSpeech(*ws, HelloThere(16000), *audio::ParseFormat("pcm_16000"));
  std::vector<json::object> seen;
  auto transcript = ReadUntil(*ws, "user_transcript", &seen);
  ASSERT_TRUE(transcript);
  const std::string text(
      transcript->at("user_transcription_event").at("user_transcript").as_string());
  EXPECT_TRUE(text.starts_with("(user spoke for ")) << text;
  const auto stats = Stats(ConversationId(*metadata));
  EXPECT_EQ(stats.at("user_audio_bytes").as_int64(), static_cast<std::int64_t>(sent.size()));
  EXPECT_EQ(stats.at("user_audio_sha256").as_string(), Sha256Hex(sent));
}

TEST_F(SimWsTest, AgentAudioIsSpeechInEveryFormat) {
  Start({.speech_speed = 8.0});
  for (const std::string agent : {"agent_sim_public", "agent_pcm44", "agent_ulaw"}) {
    SCOPED_TRACE(agent);
    auto ws = Connect("/v1/convai/conversation?agent_id=" + agent);
    ASSERT_TRUE(ws->open());
    ws->SendText(kInit);
    auto metadata = ReadUntil(*ws, "conversation_initiation_metadata");
    ASSERT_TRUE(metadata);
    const auto format =
        audio::ParseFormat(std::string(metadata->at("conversation_initiation_metadata_event")
                                           .at("agent_output_audio_format")
                                           .as_string()));
    ASSERT_TRUE(format);
    auto response = ReadUntil(*ws, "agent_response");
    ASSERT_TRUE(response);
    const auto id = response->at("agent_response_event").at("event_id").as_int64();
    std::vector<std::int16_t> samples;
    // Audio of the greeting until 1.5 s of it arrived (it is about 2 s long).
    while (samples.size() < static_cast<std::size_t>(format->sample_rate) * 3 / 2) {
      auto audio_event = ReadUntil(*ws, "audio");
      ASSERT_TRUE(audio_event);
      EXPECT_EQ(audio_event->at("audio_event").at("event_id").as_int64(), id);
      auto bytes =
          sim::agent::Base64Decode(audio_event->at("audio_event").at("audio_base_64").as_string());
      ASSERT_TRUE(bytes);
      const auto decoded = audio::Decode(*format, *bytes);
      samples.insert(samples.end(), decoded.begin(), decoded.end());
    }
    EXPECT_GT(audio::RmsDbfs(samples), -35.0) << "speech, not silence";
    ws->SendClose(1000);
    ReadUntil(*ws, "close");
  }
}

TEST_F(SimWsTest, UserSpeechInterruptsTheAgent) {
  Start({.speech_speed = 1.0});
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_long");
  ASSERT_TRUE(ws->open());
  ws->SendText(kInit);
  auto first_audio = ReadUntil(*ws, "audio");
  ASSERT_TRUE(first_audio);
  const auto id = first_audio->at("audio_event").at("event_id").as_int64();
  SendSpeech(*ws, HelloThere(16000), *audio::ParseFormat("pcm_16000"));
  std::vector<json::object> seen;
  auto interruption = ReadUntil(*ws, "interruption", &seen);
  ASSERT_TRUE(interruption);
  EXPECT_EQ(interruption->at("interruption_event").at("event_id").as_int64(), id);
  auto correction = ReadUntil(*ws, "agent_response_correction", &seen);
  ASSERT_TRUE(correction);
  const std::string corrected(
      correction->at("agent_response_correction_event").at("corrected_agent_response").as_string());
  EXPECT_TRUE(std::string("Good afternoon! I would like to tell you").starts_with(corrected) ||
              corrected.starts_with("Good afternoon!"))
      << corrected;
  seen.clear();
  ReadUntil(*ws, "user_transcript", &seen);
  ReadUntil(*ws, "never", &seen, true, 1500ms);
  for (const auto& event : seen) {
    if (event.at("type") == "audio") {
      EXPECT_GT(event.at("audio_event").at("event_id").as_int64(), id)
          << "audio of the interrupted turn after the interruption";
    }
  }
}

TEST_F(SimWsTest, AWholeConversationEndsWithEndCallAndReachesDone) {
  Start({.speech_speed = 8.0, .turns = 2});
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_sim_public");
  ASSERT_TRUE(ws->open());
  ws->SendText(kInit);
  auto metadata = ReadUntil(*ws, "conversation_initiation_metadata");
  ASSERT_TRUE(metadata);
  const std::string id = ConversationId(*metadata);
  std::vector<json::object> seen;
  for (int turn = 0; turn < 2; ++turn) {
    ASSERT_TRUE(ReadUntil(*ws, "agent_response", &seen));
    ws->SendText(R"({"type":"user_message","text":"message )" + std::to_string(turn) + "\"}");
  }
  auto goodbye = ReadUntil(*ws, "agent_response", &seen);
  ASSERT_TRUE(goodbye);
  EXPECT_EQ(goodbye->at("agent_response_event").at("agent_response"),
            "Thank you for your time. Goodbye!");
  auto end_call = ReadUntil(*ws, "agent_tool_response", &seen);
  ASSERT_TRUE(end_call);
  EXPECT_EQ(end_call->at("agent_tool_response").at("tool_name"), "end_call");
  auto close = ReadUntil(*ws, "close", &seen);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->at("code"), 1000);

  auto conversation = Fetch(port_, "GET", "/v1/convai/conversations/" + id, {{"xi-api-key", kKey}});
  ASSERT_TRUE(conversation);
  ASSERT_EQ(conversation->status, 200) << conversation->body;
  auto body = json::parse(conversation->body);
  const auto& transcript = body.at("transcript").as_array();
  ASSERT_EQ(transcript.size(), 5u) << conversation->body;
  EXPECT_EQ(transcript[0].at("message"), "Hi! How can I help you today?");
  EXPECT_EQ(transcript[1].at("message"), "message 0");
  EXPECT_EQ(transcript[4].at("message"), "Thank you for your time. Goodbye!");
  EXPECT_NE(body.at("status"), "done");
  auto advanced = Fetch(port_, "POST", "/_sim/clock/advance",
                        {{"Content-Type", "application/json"}}, R"({"seconds":60})");
  ASSERT_TRUE(advanced);
  ASSERT_EQ(advanced->status, 200);
  conversation = Fetch(port_, "GET", "/v1/convai/conversations/" + id, {{"xi-api-key", kKey}});
  ASSERT_TRUE(conversation);
  EXPECT_EQ(json::parse(conversation->body).at("status"), "done");
  const auto stats = ClosedStats(id);
  EXPECT_EQ(stats.at("close").at("by"), "server");
  EXPECT_EQ(stats.at("events_sent").at("agent_tool_response"), 1);
}

TEST_F(SimWsTest, InactivityCloses1002) {
  Start({.inactivity_timeout = 500ms, .speech_speed = 8.0});
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_sim_public");
  ASSERT_TRUE(ws->open());
  ws->SendText(kInit);
  std::vector<json::object> seen;
  auto close = ReadUntil(*ws, "close", &seen);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->at("code"), 1002);
  ASSERT_GE(seen.size(), 2u);
  const auto& error = seen[seen.size() - 2];
  EXPECT_EQ(error.at("type"), "error");
  EXPECT_EQ(error.at("error_event").at("error_type"), "transport_receive_timeout");
}

TEST_F(SimWsTest, DropFaultCutsTheConnectionWithoutACloseFrame) {
  Start({.speech_speed = 8.0});
  auto fault = Fetch(port_, "POST", "/_sim/websocket-faults",
                     {{"Content-Type", "application/json"}}, R"({"drop_after_events":3})");
  ASSERT_TRUE(fault);
  ASSERT_EQ(fault->status, 200) << fault->body;
  auto ws = Connect("/v1/convai/conversation?agent_id=agent_sim_public");
  ASSERT_TRUE(ws->open());
  ws->SendText(kInit);
  std::vector<json::object> seen;
  auto end = ReadUntil(*ws, "close", &seen);
  EXPECT_FALSE(end) << "no close frame";
  EXPECT_LE(seen.size(), 3u);
  ASSERT_FALSE(seen.empty());
  const auto stats = ClosedStats(ConversationId(seen[0]));
  EXPECT_EQ(stats.at("close").at("code"), 1006);
  EXPECT_EQ(stats.at("close").at("by"), "server");

  auto next = Connect("/v1/convai/conversation?agent_id=agent_sim_public");  // fault used up
  ASSERT_TRUE(next->open());
  next->SendText(kInit);
  EXPECT_TRUE(ReadUntil(*next, "audio"));
}

}  // namespace
}  // namespace callgate::testing
