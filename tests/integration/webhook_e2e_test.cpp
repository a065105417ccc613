// Post-call webhooks end to end: `callgate sim` sends signed webhooks to `callgate serve`, both
// real processes on loopback; a forwarding target and a load generator run in this process.
// Durability: the gateway is SIGKILLed while webhooks are posted; every acknowledged event must
// be in the store after a restart.
#include "integration/gateway.hpp"
#include "integration/sim_process.hpp"
#include "support/served_router.hpp"
#include "webhook/signature.hpp"

#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "net/runtime.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kGatewayKey[] = "gw_key_webhook_e2e_41a0";
constexpr char kSecret[] = "whsec_e2e_8d1f0c2b7a6e";
constexpr char kCall[] = R"({"to_number":"+15551234567","prompt":"Confirm the delivery slot"})";

boost::json::value Json(const std::string& text) {
  return boost::json::parse(text);
}

Env GatewayEnv(const SimProcess& sim, Env extra = {}) {
  Env env{{"ELEVENLABS_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port())},
          {"ELEVENLABS_API_KEY", sim.api_key()},
          {"ELEVENLABS_AGENT_ID", "agent_sim_default"},
          {"ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_sim_twilio"},
          {"ELEVENLABS_WEBHOOK_SECRET", kSecret},
          {"API_KEYS", kGatewayKey}};
  for (auto& [name, value] : extra)
    env[name] = value;
  return env;
}

std::optional<HttpResponse> Get(std::uint16_t port, const std::string& target) {
  return Fetch(port, "GET", target, {{"X-API-Key", kGatewayKey}});
}

// Points the simulator's webhooks at the gateway.
void WireWebhooks(
    const SimProcess& sim, const Gateway& gateway,
    const std::string& events = R"(["transcript","audio","call_initiation_failure"])") {
  const std::string body = R"({"url":"http://127.0.0.1:)" + std::to_string(gateway.port()) +
                           R"(/api/webhooks/elevenlabs","secret":")" + kSecret + R"(","events":)" +
                           events + "}";
  auto response = Fetch(sim.port(), "POST", "/_sim/webhooks/config", {}, body);
  ASSERT_TRUE(response && response->status == 200) << (response ? response->body : "");
}

std::string PlaceCall(const Gateway& gateway) {
  auto response = Fetch(gateway.port(), "POST", "/api/calls/outbound",
                        {{"X-API-Key", kGatewayKey}, {"Content-Type", "application/json"}}, kCall);
  EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "");
  if (!response || response->status != 200) return {};
  return std::string(Json(response->body).at("conversation_id").as_string());
}

boost::json::array Events(const Gateway& gateway, const std::string& query = "") {
  auto response = Get(gateway.port(), "/api/webhooks/events" + query);
  EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "");
  if (!response || response->status != 200) return {};
  return Json(response->body).at("events").as_array();
}

TEST(WebhookEndToEnd, ASimulatedCallsSignedWebhooksCompleteTheLedgerAndServeTheAudio) {
  SimProcess sim({"--time-scale", "100"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  Gateway gateway(GatewayEnv(sim));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  WireWebhooks(sim, gateway);
  const std::string id = PlaceCall(gateway);
  ASSERT_FALSE(id.empty());

  ASSERT_TRUE(WaitFor([&] { return Events(gateway, "?conversation_id=" + id).size() == 2; }, 30s))
      << gateway.Output();
  for (const auto& event : Events(gateway, "?conversation_id=" + id)) {
    EXPECT_EQ(event.at("verification").as_string(), "verified");
    EXPECT_EQ(event.at("source").as_string(), "webhook");
  }
  // The raw payload is kept as received.
  const auto transcription = Events(gateway, "?type=post_call_transcription&conversation_id=" + id);
  ASSERT_EQ(transcription.size(), 1u);
  auto record = Get(gateway.port(), "/api/webhooks/events/" +
                                        std::string(transcription[0].at("event_id").as_string()));
  ASSERT_TRUE(record && record->status == 200);
  EXPECT_NE(record->body.find("post_call_transcription"), std::string::npos);

  // The ledger shows the call done with its transcript.
  ASSERT_TRUE(WaitFor(
      [&] {
        auto calls = Get(gateway.port(), "/api/calls?status=done");
        return calls && calls->status == 200 &&
               Json(calls->body).at("calls").as_array().size() == 1;
      },
      30s));

  // The recording came as post_call_audio and is served from the gateway's disk even once the
  // upstream no longer has it.
  auto upstream_audio = Fetch(sim.port(), "GET", "/v1/convai/conversations/" + id + "/audio",
                              {{"xi-api-key", sim.api_key()}});
  ASSERT_TRUE(upstream_audio && upstream_audio->status == 200);
  auto deleted = Fetch(sim.port(), "DELETE", "/v1/convai/conversations/" + id,
                       {{"xi-api-key", sim.api_key()}});
  ASSERT_TRUE(deleted && deleted->status == 200);
  auto audio = Get(gateway.port(), "/api/conversations/" + id + "/audio");
  ASSERT_TRUE(audio);
  EXPECT_EQ(audio->status, 200);
  EXPECT_EQ(audio->Header("content-type"), "audio/mpeg");
  EXPECT_EQ(audio->body, upstream_audio->body);
  // The terminal banner was printed.
  EXPECT_NE(gateway.Output().find("ElevenLabs webhook: post_call_transcription"),
            std::string::npos);
  // The inbox's counts are on /metrics, read from the inbox itself.
  auto metrics = Get(gateway.port(), "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  for (const char* line :
       {"\ncallgate_webhook_events_total{result=\"stored\"} 2\n",
        "\ncallgate_webhook_events_total{result=\"duplicate\"} 0\n",
        "\ncallgate_webhook_events_waiting 0\n", "\ncallgate_sessions_active 0\n",
        "\ncallgate_session_tick_lateness_seconds{quantile=\"1\"} 0\n"}) {
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << " in\n" << metrics->body;
  }
  // The group commits that stored the two events were timed: the slowest took some time.
  const std::string slowest_commit = "\ncallgate_webhook_commit_seconds{quantile=\"1\"} ";
  const std::size_t at = metrics->body.find(slowest_commit);
  ASSERT_NE(at, std::string::npos) << metrics->body;
  EXPECT_GT(std::stod(metrics->body.substr(at + slowest_commit.size())), 0.0) << metrics->body;
}

TEST(WebhookEndToEnd, AWithheldWebhookIsReconciledFromTheApi) {
  // The simulator never sends this call's webhooks; the gateway's refresher sees the call end
  // and, RECONCILE_AFTER_SECONDS later, fetches the conversation and its recording.
  SimProcess sim({"--time-scale", "100", "--webhook-fault", "withhold=2"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  Gateway gateway(GatewayEnv(sim, {{"RECONCILE_AFTER_SECONDS", "1"}}));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  WireWebhooks(sim, gateway, R"(["transcript","audio"])");
  const std::string id = PlaceCall(gateway);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(WaitFor([&] { return Events(gateway, "?conversation_id=" + id).size() == 2; }, 30s))
      << gateway.Output();
  for (const auto& event : Events(gateway, "?conversation_id=" + id)) {
    EXPECT_EQ(event.at("source").as_string(), "reconciliation");
    EXPECT_EQ(event.at("verification").as_string(), "api");
  }
  auto state = Fetch(sim.port(), "GET", "/_sim/webhooks");
  ASSERT_TRUE(state);
  int withheld = 0;
  const auto state_json = Json(state->body);
  for (const auto& d : state_json.at("deliveries").as_array()) {
    if (d.at("outcome").as_string() == "withheld") ++withheld;
  }
  EXPECT_EQ(withheld, 2) << "the webhooks really were never sent";
  auto metrics = Get(gateway.port(), "/metrics");
  ASSERT_TRUE(metrics && metrics->status == 200);
  for (const char* line :
       {"\ncallgate_webhook_reconciliations_total{result=\"reconciled\"} 1\n",
        "\ncallgate_webhook_reconciliations_total{result=\"audio_reconciled\"} 1\n",
        "\ncallgate_webhook_events_total{result=\"stored\"} 2\n"}) {
    EXPECT_NE(metrics->body.find(line), std::string::npos) << line << " in\n" << metrics->body;
  }
  // The ledger is complete, with the transcript.
  auto calls = Get(gateway.port(), "/api/calls?status=done");
  ASSERT_TRUE(calls && calls->status == 200);
  const auto listed = Json(calls->body);
  ASSERT_EQ(listed.at("calls").as_array().size(), 1u);
  // The recording is on the gateway's disk: served even once the upstream forgets it.
  auto deleted = Fetch(sim.port(), "DELETE", "/v1/convai/conversations/" + id,
                       {{"xi-api-key", sim.api_key()}});
  ASSERT_TRUE(deleted && deleted->status == 200);
  auto audio = Get(gateway.port(), "/api/conversations/" + id + "/audio");
  ASSERT_TRUE(audio);
  EXPECT_EQ(audio->status, 200);
  EXPECT_GT(audio->body.size(), 1000u);
}

TEST(WebhookEndToEnd, BadlySignedAndStaleWebhooksAreRefusedAndNotStored) {
  SimProcess sim({"--time-scale", "100", "--webhook-fault", "bad_signature", "--webhook-fault",
                  "stale_timestamp", "--webhook-fault", "unsigned"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  Gateway gateway(GatewayEnv(sim));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  WireWebhooks(sim, gateway, R"(["transcript"])");
  for (int i = 0; i < 4; ++i)
    ASSERT_FALSE(PlaceCall(gateway).empty());
  ASSERT_TRUE(WaitFor(
      [&] {
        auto state = Fetch(sim.port(), "GET", "/_sim/webhooks");
        return state && Json(state->body).at("deliveries").as_array().size() == 4;
      },
      30s));
  auto state = Fetch(sim.port(), "GET", "/_sim/webhooks");
  const auto deliveries = Json(state->body).at("deliveries").as_array();
  int refused = 0, delivered = 0;
  for (const auto& d : deliveries) {
    if (d.at("status").as_int64() == 401) ++refused;
    if (d.at("status").as_int64() == 200) ++delivered;
  }
  EXPECT_EQ(refused, 3) << "wrong signature, stale timestamp and no signature";
  EXPECT_EQ(delivered, 1);
  EXPECT_EQ(Events(gateway).size(), 1u);
}

TEST(WebhookEndToEnd, AForwardingTargetThatFailsTwiceGetsTheEventOnceSigned) {
  // The forwarding target, in this process: 500, 500, then 200.
  net::Runtime runtime(1);
  http::Router router;
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> received;  // (signature, body)
  std::atomic<int> attempts{0};
  router.Add("POST", "/n8n/hook",
             [&](http::Request request, http::Responder responder) {
               const int n = ++attempts;
               if (n <= 2) {
                 responder.Send(http::Response::Text(500, "try later"));
                 return;
               }
               std::lock_guard lock(mutex);
               received.emplace_back(
                   std::string(request.headers.Get("ElevenLabs-Signature").value_or("")),
                   request.body);
               responder.Send(http::Response::Json(200, {{"ok", true}}));
             },
             {.body = http::BodyKind::kRaw});
  http::Dispatcher dispatcher(router, {});
  ServedRouter target(runtime, dispatcher);

  SimProcess sim({"--time-scale", "100"});
  ASSERT_TRUE(sim.started()) << sim.Output();
  constexpr char kForwardSecret[] = "fwd_e2e_secret_77c1";
  Gateway gateway(GatewayEnv(
      sim,
      {{"FORWARD_WEBHOOK_URLS", "http://127.0.0.1:" + std::to_string(target.port()) + "/n8n/hook"},
       {"FORWARD_WEBHOOK_SECRET", kForwardSecret}}));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  WireWebhooks(sim, gateway, R"(["transcript"])");
  ASSERT_FALSE(PlaceCall(gateway).empty());
  ASSERT_TRUE(WaitFor(
      [&] {
        std::lock_guard lock(mutex);
        return !received.empty();
      },
      30s))
      << gateway.Output();
  std::this_thread::sleep_for(500ms);
  std::lock_guard lock(mutex);
  ASSERT_EQ(received.size(), 1u) << "delivered exactly once";
  EXPECT_EQ(attempts.load(), 3);
  // The signature verifies with the forward secret (callgate's own verifier, the one documented
  // for receivers; the scheme itself is checked against openssl in the unit tests).
  core::SystemClock clock;
  const auto verified =
      webhook::Verify(received[0].first, received[0].second, {.secrets = {kForwardSecret}}, clock);
  EXPECT_FALSE(verified.error) << verified.message;
  EXPECT_EQ(Json(received[0].second).at("type").as_string(), "post_call_transcription");
}

TEST(WebhookEndToEnd, EveryAcknowledgedEventSurvivesSigkill) {
  SimProcess sim;
  ASSERT_TRUE(sim.started()) << sim.Output();
  TempDir data;
  const Env env =
      GatewayEnv(sim, {{"DATABASE_URL", "sqlite:" + (data.path() / "callgate.db").string()},
                       {"WEBHOOK_BANNER", "off"}});
  std::mutex mutex;
  std::set<std::string> acknowledged;
  std::atomic<int> posted{0};
  {
    Gateway gateway(env);
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    std::atomic<bool> stop{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; !stop && i < 2000; ++i) {
          const std::string conversation =
              "conv_kill_" + std::to_string(t) + "_" + std::to_string(i);
          const std::string body =
              R"({"type":"post_call_transcription","event_timestamp":1795330000,"data":{"agent_id":"agent_sim_default","conversation_id":")" +
              conversation +
              R"(","status":"done","transcript":[{"role":"agent","message":"hello","time_in_call_secs":0}],"metadata":{"call_duration_secs":3},"analysis":{"call_successful":"success"}}})";
          const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
          auto response = Fetch(gateway.port(), "POST", "/api/webhooks/elevenlabs",
                                {{"Content-Type", "application/json"},
                                 {"ElevenLabs-Signature", webhook::Sign(kSecret, now, body)}},
                                body);
          ++posted;
          if (response && response->status == 200) {
            std::lock_guard lock(mutex);
            acknowledged.insert(conversation);
          }
        }
      });
    }
    ASSERT_TRUE(WaitFor(
        [&] {
          std::lock_guard lock(mutex);
          return acknowledged.size() >= 300;
        },
        60s));
    gateway.process().Signal(SIGKILL);  // mid-stream: requests are in flight
    EXPECT_TRUE(gateway.process().WaitExit(10s).has_value());
    stop = true;
    for (auto& thread : threads)
      thread.join();
  }
  Gateway restarted(env);
  ASSERT_TRUE(restarted.started()) << restarted.Output();
  std::set<std::string> stored;
  std::string cursor;
  for (int page = 0; page < 100; ++page) {
    auto response =
        Get(restarted.port(), "/api/webhooks/events?limit=1000" +
                                  (cursor.empty() ? std::string() : "&cursor=" + cursor));
    ASSERT_TRUE(response && response->status == 200);
    const auto json = Json(response->body);
    for (const auto& event : json.at("events").as_array()) {
      stored.insert(std::string(event.at("conversation_id").as_string()));
    }
    if (json.at("next_cursor").is_null()) break;
    cursor = std::string(json.at("next_cursor").as_string());
  }
  std::size_t missing = 0;
  for (const auto& id : acknowledged) {
    if (!stored.contains(id)) ++missing;
  }
  EXPECT_EQ(missing, 0u) << acknowledged.size() << " acknowledged, " << stored.size() << " stored, "
                         << posted.load() << " posted";
  EXPECT_GE(stored.size(), acknowledged.size());
}

}  // namespace
}  // namespace callgate::testing
