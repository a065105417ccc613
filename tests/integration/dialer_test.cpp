// The dialer connector end to end: `callgate serve` and `callgate sim` as processes; a dialer
// (this test) calls POST /webhook/initiate-call and follows the live session through
// /webhook/sessions, with file and null audio backends (no sound card here), and the
// simulator's per-session WebSocket statistics as the independent witness.
#include "integration/gateway.hpp"
#include "integration/sim_process.hpp"

#include <gtest/gtest.h>
#include <sndfile.h>
#include <boost/json.hpp>

#include <cmath>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kKey[] = "gw_key_dialer_test_c81f";

boost::json::value Json(const std::string& text) {
  return boost::json::parse(text);
}

Env DialerEnv(const SimProcess& sim, const TempDir& dir, Env extra = {}) {
  Env env{{"ELEVENLABS_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port())},
          {"ELEVENLABS_API_KEY", sim.api_key()},
          {"ELEVENLABS_AGENT_ID", "agent_sim_default"},
          {"API_KEYS", kKey},
          {"AUDIO_INPUT", "null"},
          {"AUDIO_OUTPUT", "file:" + (dir.path() / "out.wav").string()}};
  for (auto& [name, value] : extra)
    env[name] = value;
  return env;
}

std::optional<HttpResponse> Initiate(const Gateway& gateway, const std::string& body,
                                     bool with_key = true) {
  std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
  if (with_key) headers.emplace_back("X-API-Key", kKey);
  return Fetch(gateway.port(), "POST", "/webhook/initiate-call", headers, body);
}

boost::json::object Session(const Gateway& gateway, const std::string& id) {
  auto response = Fetch(gateway.port(), "GET", "/webhook/sessions/" + id, {{"X-API-Key", kKey}});
  if (!response || response->status != 200) return {};
  return Json(response->body).as_object();
}

std::string Status(const boost::json::object& session) {
  const auto* status = session.if_contains("status");
  return status != nullptr && status->is_string() ? std::string(status->as_string()) : "";
}

std::size_t SignedUrlRequests(const SimProcess& sim) {
  auto response =
      Fetch(sim.port(), "GET", "/_sim/requests?path=/v1/convai/conversation/get-signed-url");
  if (!response || response->status != 200) return 999;
  return Json(response->body).at("requests").as_array().size();
}

TEST(Dialer, ALiveSessionFromInitiationToAStoredTranscript) {
  SimProcess sim({"--ping-interval-ms", "200"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  TempDir dir;
  Gateway gateway(DialerEnv(sim, dir));
  ASSERT_TRUE(gateway.started()) << gateway.Output();

  // No key: 401 and nothing started upstream.
  auto anonymous = Initiate(gateway, R"({"session_id":"nokey"})", false);
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  EXPECT_EQ(SignedUrlRequests(sim), 0u);

  // The seed's body: agent_id, session_id, metadata.
  auto started = Initiate(gateway, R"({"agent_id":"agent_sim_default","session_id":"lead-42",)"
                                   R"("metadata":{"crm":"n8n","lead":42},)"
                                   R"("dynamic_variables":{"purpose":"your delivery"}})");
  ASSERT_TRUE(started);
  ASSERT_EQ(started->status, 202) << started->body;
  const auto answer = Json(started->body);
  EXPECT_EQ(answer.at("session_id").as_string(), "lead-42");
  EXPECT_EQ(answer.at("metadata").at("lead").as_int64(), 42);

  // A second session with the same id while it runs: 409.
  auto duplicate = Initiate(gateway, R"({"session_id":"lead-42"})");
  ASSERT_TRUE(duplicate);
  EXPECT_EQ(duplicate->status, 409);
  EXPECT_EQ(Json(duplicate->body).at("error").at("code").as_string(), "session_exists");

  // It becomes active, talks, and answers pings.
  ASSERT_TRUE(WaitFor(
      [&] {
        const auto s = Session(gateway, "lead-42");
        return Status(s) == "active" && s.at("pings").at("answered").as_int64() >= 2 &&
               !s.at("transcript").as_array().empty() &&
               s.at("audio").at("seconds_played").to_number<double>() >= 1.2;
      },
      30s))
      << gateway.Output();
  auto session = Session(gateway, "lead-42");
  const std::string conversation_id(session.at("conversation_id").as_string());
  EXPECT_EQ(session.at("transcript").at(0).at("text").as_string(),
            "Hello! I'm calling about your delivery.");
  auto listing = Fetch(gateway.port(), "GET", "/webhook/sessions", {{"X-API-Key", kKey}});
  ASSERT_TRUE(listing && listing->status == 200);
  EXPECT_NE(listing->body.find("lead-42"), std::string::npos);

  // The simulator saw the initiation message first, with the variables, and its pings answered.
  auto ws = Fetch(sim.port(), "GET", "/_sim/conversations/" + conversation_id + "/websocket");
  ASSERT_TRUE(ws && ws->status == 200) << (ws ? ws->body : "");
  const auto ws_stats = Json(ws->body);
  EXPECT_EQ(ws_stats.at("init_message").at("type").as_string(),
            "conversation_initiation_client_data");
  EXPECT_EQ(ws_stats.at("init_message").at("dynamic_variables").at("purpose").as_string(),
            "your delivery");
  int answered = 0;
  for (const auto& ping : ws_stats.at("pings").as_array()) {
    if (ping.at("pong_received").as_bool()) ++answered;
  }
  EXPECT_GE(answered, 2);
  EXPECT_GT(ws_stats.at("user_audio_bytes").as_int64(), 0) << "the null input streams silence";

  // DELETE ends it cleanly (close 1000 from the client), and it is stored with its transcript.
  auto ended = Fetch(gateway.port(), "DELETE", "/webhook/sessions/lead-42", {{"X-API-Key", kKey}});
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended->status, 202);
  ASSERT_TRUE(WaitFor([&] { return Status(Session(gateway, "lead-42")) == "ended"; }, 20s));
  session = Session(gateway, "lead-42");
  EXPECT_EQ(session.at("end_reason").at("code").as_string(), "stopped");
  EXPECT_EQ(session.at("metadata").at("crm").as_string(), "n8n");
  EXPECT_FALSE(session.at("transcript").as_array().empty());
  ws = Fetch(sim.port(), "GET", "/_sim/conversations/" + conversation_id + "/websocket");
  ASSERT_TRUE(ws && ws->status == 200);
  const auto closed = Json(ws->body);
  EXPECT_EQ(closed.at("close").at("code").as_int64(), 1000);
  EXPECT_EQ(closed.at("close").at("by").as_string(), "client");
  auto again = Fetch(gateway.port(), "DELETE", "/webhook/sessions/lead-42", {{"X-API-Key", kKey}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 409);

  // The output file holds the agent's speech: a valid WAV with non-silent samples.
  SF_INFO info{};
  SNDFILE* file = sf_open((dir.path() / "out.wav").c_str(), SFM_READ, &info);
  ASSERT_NE(file, nullptr) << sf_strerror(nullptr);
  std::vector<short> samples(static_cast<std::size_t>(info.frames * info.channels));
  sf_read_short(file, samples.data(), static_cast<sf_count_t>(samples.size()));
  sf_close(file);
  double energy = 0;
  for (short s : samples)
    energy += static_cast<double>(s) * s;
  EXPECT_GT(info.frames, 16000) << "at least a second of audio";
  EXPECT_GT(std::sqrt(energy / std::max<std::size_t>(1, samples.size())), 100.0);

  // The gateway stops cleanly.
  gateway.process().Signal(SIGTERM);
  ASSERT_EQ(gateway.process().WaitExit(30s), 0) << gateway.Output();
}

TEST(Dialer, FailuresEndTheSessionWithAClearReasonAndTheServerKeepsServing) {
  SimProcess sim;
  ASSERT_TRUE(sim.started()) << sim.Output();
  TempDir dir;
  {
    Gateway gateway(DialerEnv(sim, dir));
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    auto unknown = Initiate(gateway, R"({"agent_id":"agent_nope","session_id":"u1"})");
    ASSERT_TRUE(unknown && unknown->status == 202);
    ASSERT_TRUE(WaitFor([&] { return Status(Session(gateway, "u1")) == "ended"; }, 20s));
    EXPECT_EQ(Session(gateway, "u1").at("end_reason").at("code").as_string(), "signed_url_failed");
    auto bad = Initiate(gateway, R"({"session_id":"has space"})");
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    auto health = Fetch(gateway.port(), "GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200);
  }
  {
    Gateway gateway(DialerEnv(sim, dir, {{"ELEVENLABS_API_KEY", "sk_wrong"}}));
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    ASSERT_TRUE(Initiate(gateway, R"({"session_id":"k1"})")->status == 202);
    ASSERT_TRUE(WaitFor([&] { return Status(Session(gateway, "k1")) == "ended"; }, 20s));
    const auto session = Session(gateway, "k1");
    EXPECT_EQ(session.at("end_reason").at("code").as_string(), "signed_url_failed");
    EXPECT_EQ(gateway.Output().find("sk_wrong"), std::string::npos) << "never log a secret";
  }
  {
    Gateway gateway(DialerEnv(sim, dir, {{"AUDIO_INPUT", "device:no-such-microphone"}}));
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    ASSERT_TRUE(Initiate(gateway, R"({"session_id":"d1"})")->status == 202);
    ASSERT_TRUE(WaitFor([&] { return Status(Session(gateway, "d1")) == "ended"; }, 20s));
    EXPECT_EQ(Session(gateway, "d1").at("end_reason").at("code").as_string(),
              "audio_device_unavailable");
    auto health = Fetch(gateway.port(), "GET", "/healthz");
    ASSERT_TRUE(health);
    EXPECT_EQ(health->status, 200) << "a dead device ends the session, not the server";
  }
}

}  // namespace
}  // namespace callgate::testing
