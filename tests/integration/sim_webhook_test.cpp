// The simulator's post-call webhooks, end to end over real sockets: the simulator (REST routes
// and webhook sender) and a receiver route are served by the real http::Server; the sender
// posts with the real upstream HTTP client. Signatures are checked with the openssl command-line
// tool, independently of the code under test.
#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/simulator.hpp"
#include "sim/webhooks.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"
#include "upstream/http_client.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <boost/json.hpp>

#include <cstdio>
#include <deque>
#include <fstream>
#include <mutex>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kKey[] = "sk_webhook_test_4c1d";
constexpr char kSecret[] = "wsec_4f9a1c0e7b2d4e5f";

// HMAC-SHA256 hex of `message` computed by the openssl CLI, not by callgate.
std::string OpensslHmacHex(const std::string& secret, const std::string& message) {
  TempDir dir;
  const auto file = dir.path() / "message";
  { std::ofstream(file, std::ios::binary) << message; }
  const std::string command =
      "openssl dgst -sha256 -hmac '" + secret + "' -r '" + file.string() + "'";
  FILE* pipe = ::popen(command.c_str(), "r");  // NOLINT(cert-env33-c)
  if (pipe == nullptr) return {};
  char buffer[256] = {};
  const std::size_t n = std::fread(buffer, 1, sizeof buffer - 1, pipe);
  ::pclose(pipe);
  std::string out(buffer, n);
  return out.substr(0, out.find(' '));  // "-r": "<hex> *<file>"
}

std::string Base64Decode(const std::string& text) {
  std::string out(text.size() / 4 * 3 + 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(text.data()),
                                static_cast<int>(text.size()));
  if (n < 0) return {};
  out.resize(static_cast<std::size_t>(n));
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++padding;
  out.resize(out.size() - padding);
  return out;
}

struct Received {
  std::string signature, transfer_encoding, content_type, body;
};

class SimWebhookTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(
        "POST", "/hook",
        [this](http::Request request, http::Responder responder) {
          int status = 200;
          {
            std::lock_guard lock(mutex_);
            received_.push_back(
                {std::string(request.headers.Get("ElevenLabs-Signature").value_or("")),
                 std::string(request.headers.Get("Transfer-Encoding").value_or("")),
                 std::string(request.headers.Get("Content-Type").value_or("")), request.body});
            if (!statuses_.empty()) {
              status = statuses_.front();
              statuses_.pop_front();
            }
          }
          responder.Send(http::Response::Json(status, {{"ok", status == 200}}));
        },
        {.body = http::BodyKind::kRaw, .max_body_bytes = 64 * 1024 * 1024});
  }

  void Start(sim::WebhookOptions webhook, double time_scale = 1.0) {
    sim::SimOptions options;
    options.api_key = kKey;
    options.time_scale = time_scale;
    options.callees["+15550000486"] = sim::CalleeBehaviour::kBusy;
    simulator_ = std::make_unique<sim::Simulator>(std::move(options), sim_clock_, scheduler_);
    simulator_->AddRoutes(router_);
    client_ = upstream::MakeHttpClient(runtime_, {});
    webhook.poll_interval = 20ms;
    sender_ = std::make_unique<sim::WebhookSender>(std::move(webhook), *simulator_, *client_,
                                                   scheduler_, wall_clock_, [] { return 0.5; });
    sender_->AddRoutes(router_);
    dispatcher_ = std::make_unique<http::Dispatcher>(
        router_, http::DispatchOptions{.render_error = simulator_->ErrorRenderer(),
                                       .observer = simulator_->Observer()});
    served_ = std::make_unique<ServedRouter>(runtime_, *dispatcher_);
    port_ = served_->port();
    sender_->Start();
  }

  void TearDown() override {
    if (sender_) sender_->Stop();
    served_.reset();
    sender_.reset();
    client_.reset();
  }

  std::string HookUrl() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }

  // Places an outbound call to `number` and returns its conversation id.
  std::string Call(const std::string& number) {
    const std::string body =
        R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio",)"
        R"("to_number":")" +
        number +
        R"(","conversation_initiation_client_data":{"dynamic_variables":{"purpose":"a test"}}})";
    auto response = Fetch(port_, "POST", "/v1/convai/twilio/outbound-call",
                          {{"xi-api-key", kKey}, {"Content-Type", "application/json"}}, body);
    EXPECT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
    if (!response) return {};
    return std::string(boost::json::parse(response->body).at("conversation_id").as_string());
  }

  std::vector<Received> WaitForReceived(std::size_t count) {
    EXPECT_TRUE(WaitFor(
        [&] {
          std::lock_guard lock(mutex_);
          return received_.size() >= count;
        },
        20s))
        << "expected " << count << " webhook requests";
    std::lock_guard lock(mutex_);
    return received_;
  }

  boost::json::object WebhookState() {
    auto response = Fetch(port_, "GET", "/_sim/webhooks");
    EXPECT_TRUE(response && response->status == 200);
    return boost::json::parse(response ? response->body : "{}").as_object();
  }

  core::ManualClock sim_clock_{core::SystemTime(std::chrono::seconds(1'760'000'000))};
  core::SystemClock wall_clock_;
  net::Runtime runtime_{2};
  net::AsioScheduler scheduler_{runtime_};
  http::Router router_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::unique_ptr<upstream::HttpClient> client_;
  std::unique_ptr<sim::WebhookSender> sender_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::uint16_t port_ = 0;
  std::mutex mutex_;
  std::vector<Received> received_;
  std::deque<int> statuses_;
};

// Checks `t=<unix>,v0=<hex>` against openssl's HMAC of "<t>.<body>"; returns t.
std::int64_t ExpectValidSignature(const Received& r, const std::string& secret) {
  const auto comma = r.signature.find(",v0=");
  EXPECT_EQ(r.signature.rfind("t=", 0), 0u) << r.signature;
  EXPECT_NE(comma, std::string::npos) << r.signature;
  if (comma == std::string::npos) return 0;
  const std::string t = r.signature.substr(2, comma - 2);
  const std::string v0 = r.signature.substr(comma + 4);
  EXPECT_EQ(v0.size(), 64u);
  EXPECT_EQ(v0, OpensslHmacHex(secret, t + "." + r.body)) << "signature over \"t.body\"";
  return std::stoll(t);
}

TEST(SimWebhookSignature, MatchesOpensslTestVector) {
  // openssl dgst -sha256 -hmac 'wsec_4f9a1c0e7b2d4e5f' over '1739537297.{"type":"x"}', computed
  // at run time by the openssl tool.
  const std::string body = R"({"type":"x"})";
  EXPECT_EQ(sim::SignWebhook(kSecret, 1739537297, body),
            "t=1739537297,v0=" + OpensslHmacHex(kSecret, "1739537297." + body));
}

TEST_F(SimWebhookTest, TranscriptionAndChunkedAudioWhenACallEnds) {
  Start({.secret = kSecret, .audio = true});
  // Configured at run time, as `callgate demo` does once the gateway's port is known.
  auto configured =
      Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  ASSERT_TRUE(configured && configured->status == 200);
  const std::string id = Call("+15551234567");
  sim_clock_.Advance(29s);  // ring 3 + talk 20 + processing 5
  const auto received = WaitForReceived(2);
  ASSERT_EQ(received.size(), 2u);

  const auto& transcription = received[0];
  const auto before = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const auto t = ExpectValidSignature(transcription, kSecret);
  EXPECT_LE(std::abs(before - t), 60) << "signed with wall-clock time";
  EXPECT_EQ(transcription.content_type, "application/json");
  EXPECT_NE(transcription.transfer_encoding, "chunked");
  const auto event = boost::json::parse(transcription.body).as_object();
  EXPECT_EQ(event.at("type").as_string(), "post_call_transcription");
  EXPECT_TRUE(event.at("event_timestamp").is_int64());
  const auto& data = event.at("data").as_object();
  EXPECT_EQ(data.at("conversation_id").as_string(), id);
  EXPECT_EQ(data.at("status").as_string(), "done");
  EXPECT_EQ(data.at("agent_id").as_string(), "agent_sim_default");
  EXPECT_FALSE(data.at("transcript").as_array().empty());
  EXPECT_TRUE(data.at("has_audio").as_bool());
  // The same shape as GET /v1/convai/conversations/{id}.
  auto fetched = Fetch(port_, "GET", "/v1/convai/conversations/" + id, {{"xi-api-key", kKey}});
  ASSERT_TRUE(fetched && fetched->status == 200);
  EXPECT_EQ(boost::json::parse(fetched->body), boost::json::value(data));

  const auto& audio = received[1];
  ExpectValidSignature(audio, kSecret);
  EXPECT_EQ(audio.transfer_encoding, "chunked");
  const auto audio_event = boost::json::parse(audio.body).as_object();
  EXPECT_EQ(audio_event.at("type").as_string(), "post_call_audio");
  const auto& audio_data = audio_event.at("data").as_object();
  EXPECT_EQ(audio_data.size(), 3u) << "only agent_id, conversation_id and full_audio";
  EXPECT_EQ(audio_data.at("conversation_id").as_string(), id);
  const std::string mp3 = Base64Decode(std::string(audio_data.at("full_audio").as_string()));
  auto recording =
      Fetch(port_, "GET", "/v1/convai/conversations/" + id + "/audio", {{"xi-api-key", kKey}});
  ASSERT_TRUE(recording && recording->status == 200);
  EXPECT_EQ(mp3, recording->body) << "full_audio is the recording the API serves";

  const auto state = WebhookState();
  const auto& deliveries = state.at("deliveries").as_array();
  ASSERT_EQ(deliveries.size(), 2u);
  for (const auto& d : deliveries)
    EXPECT_EQ(d.at("outcome").as_string(), "delivered");
  EXPECT_FALSE(state.contains("secret"));
}

TEST_F(SimWebhookTest, BusyCalleeSendsCallInitiationFailureOnly) {
  Start({.secret = kSecret, .audio = true});
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  const std::string id = Call("+15550000486");
  sim_clock_.Advance(5s);
  const auto received = WaitForReceived(1);
  ASSERT_EQ(received.size(), 1u);
  ExpectValidSignature(received[0], kSecret);
  const auto event = boost::json::parse(received[0].body).as_object();
  EXPECT_EQ(event.at("type").as_string(), "call_initiation_failure");
  const auto& data = event.at("data").as_object();
  EXPECT_EQ(data.at("conversation_id").as_string(), id);
  EXPECT_EQ(data.at("failure_reason").as_string(), "busy");
  EXPECT_EQ(data.at("metadata").at("type").as_string(), "twilio");
  EXPECT_EQ(data.at("metadata").at("body").at("CallStatus").as_string(), "busy");
  // Nothing else arrives for it.
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_.size(), 1u);
}

TEST_F(SimWebhookTest, FaultsBadSignatureStaleTimestampUnsignedAndWithheld) {
  Start({.secret = kSecret});
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  for (const char* mode : {"bad_signature", "stale_timestamp", "unsigned", "withhold"}) {
    auto added = Fetch(port_, "POST", "/_sim/webhook-faults", {},
                       std::string(R"({"mode":")") + mode + R"(","count":1})");
    ASSERT_TRUE(added && added->status == 201) << mode;
  }
  auto bad_mode = Fetch(port_, "POST", "/_sim/webhook-faults", {}, R"({"mode":"explode"})");
  ASSERT_TRUE(bad_mode);
  EXPECT_EQ(bad_mode->status, 400);

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(Call("+1555123456" + std::to_string(i)));
  sim_clock_.Advance(29s);
  // Four are sent (one withheld); faults apply in the order they were added, one event each.
  const auto received = WaitForReceived(4);
  ASSERT_EQ(received.size(), 4u);
  std::this_thread::sleep_for(200ms);
  {
    std::lock_guard lock(mutex_);
    EXPECT_EQ(received_.size(), 4u) << "the withheld event is never sent";
  }
  int bad = 0, stale = 0, unsigned_count = 0, valid = 0;
  for (const auto& r : received) {
    if (r.signature.empty()) {
      ++unsigned_count;
      continue;
    }
    const auto comma = r.signature.find(",v0=");
    const std::string t = r.signature.substr(2, comma - 2);
    const bool matches = r.signature.substr(comma + 4) == OpensslHmacHex(kSecret, t + "." + r.body);
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    if (!matches) {
      ++bad;
    } else if (now - std::stoll(t) > 30 * 60) {
      ++stale;
    } else {
      ++valid;
    }
  }
  EXPECT_EQ(bad, 1);
  EXPECT_EQ(stale, 1);
  EXPECT_EQ(unsigned_count, 1);
  EXPECT_EQ(valid, 1);
  int withheld = 0;
  const auto state = WebhookState();
  for (const auto& d : state.at("deliveries").as_array()) {
    if (d.at("outcome").as_string() == "withheld") ++withheld;
  }
  EXPECT_EQ(withheld, 1);
}

TEST_F(SimWebhookTest, ConfigurationThroughTheControlApi) {
  Start({.secret = kSecret});
  auto configured = Fetch(
      port_, "POST", "/_sim/webhooks/config", {},
      R"({"url":"http://127.0.0.1:9/x","events":["audio","call_initiation_failure"],"retries":true})");
  ASSERT_TRUE(configured);
  ASSERT_EQ(configured->status, 200) << configured->body;
  const auto state = WebhookState();
  EXPECT_EQ(state.at("url").as_string(), "http://127.0.0.1:9/x");
  EXPECT_EQ(state.at("events"), (boost::json::array{"audio", "call_initiation_failure"}));
  EXPECT_TRUE(state.at("retries").as_bool());
  auto bad = Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"events":["everything"]})");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  auto unknown = Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"uri":"x"})");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 400);
}

TEST_F(SimWebhookTest, NoRetriesByDefault) {
  Start({.url = "", .secret = kSecret});
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  {
    std::lock_guard lock(mutex_);
    statuses_ = {500, 500, 200};
  }
  Call("+15551234567");
  sim_clock_.Advance(29s);
  WaitForReceived(1);
  std::this_thread::sleep_for(300ms);
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_.size(), 1u) << "each event is dispatched only once";
}

TEST_F(SimWebhookTest, RetriesOnTheDocumentedScheduleWhenEnabled) {
  // Time scale 1000: the 30 s and 2 min delays become 33 ms and 132 ms (with the 10% jitter).
  Start({.secret = kSecret, .retries = true}, 1000.0);
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  {
    std::lock_guard lock(mutex_);
    statuses_ = {503, 429, 200};
  }
  const std::string id = Call("+15551234567");
  sim_clock_.Advance(29s);
  const auto received = WaitForReceived(3);
  ASSERT_EQ(received.size(), 3u);
  for (const auto& r : received)
    ExpectValidSignature(r, kSecret);
  EXPECT_EQ(received[0].body, received[2].body) << "the same event, re-signed";
  const auto state = WebhookState();
  const auto& deliveries = state.at("deliveries").as_array();
  ASSERT_EQ(deliveries.size(), 3u);
  EXPECT_EQ(deliveries[0].at("outcome").as_string(), "retry_scheduled");
  EXPECT_EQ(deliveries[1].at("attempt").as_int64(), 2);
  EXPECT_EQ(deliveries[2].at("outcome").as_string(), "delivered");
  EXPECT_EQ(sim::WebhookRetrySchedule().size(), 4u);
  EXPECT_EQ(sim::WebhookRetrySchedule()[0], 30s);
}

TEST_F(SimWebhookTest, ClientErrorsAreNotRetried) {
  Start({.secret = kSecret, .retries = true}, 1000.0);
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  {
    std::lock_guard lock(mutex_);
    statuses_ = {401};
  }
  Call("+15551234567");
  sim_clock_.Advance(29s);
  WaitForReceived(1);
  std::this_thread::sleep_for(300ms);
  std::lock_guard lock(mutex_);
  EXPECT_EQ(received_.size(), 1u);
}

TEST_F(SimWebhookTest, TriggerRouteSendsAgainAndValidates) {
  Start({.secret = kSecret});
  auto no_url = Fetch(port_, "POST", "/_sim/conversations/conv_x/webhook", {}, "{}");
  ASSERT_TRUE(no_url);
  EXPECT_EQ(no_url->status, 409);
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":")" + HookUrl() + R"("})");
  const std::string id = Call("+15551234567");
  auto early = Fetch(port_, "POST", "/_sim/conversations/" + id + "/webhook", {}, "");
  ASSERT_TRUE(early);
  EXPECT_EQ(early->status, 409) << "not ended yet";
  auto unknown = Fetch(port_, "POST", "/_sim/conversations/conv_nope/webhook", {}, "");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  auto bad_type = Fetch(port_, "POST", "/_sim/conversations/" + id + "/webhook", {},
                        R"({"type":"post_call_everything"})");
  ASSERT_TRUE(bad_type);
  EXPECT_EQ(bad_type->status, 400);

  sim_clock_.Advance(29s);
  WaitForReceived(1);
  auto again = Fetch(port_, "POST", "/_sim/conversations/" + id + "/webhook", {},
                     R"({"type":"post_call_transcription"})");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 202);
  const auto received = WaitForReceived(2);
  ASSERT_EQ(received.size(), 2u);
  const auto first = boost::json::parse(received[0].body);
  const auto second = boost::json::parse(received[1].body);
  EXPECT_EQ(first.at("data"), second.at("data")) << "a redelivery of the same event";
}

TEST_F(SimWebhookTest, UnreachableReceiverIsLoggedAndTheWebhookDisabledAfterTenFailures) {
  Start({.secret = kSecret});
  // A port nothing listens on.
  Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"url":"http://127.0.0.1:1/hook"})");
  for (int i = 0; i < 10; ++i)
    Call("+1555100000" + std::to_string(i));
  sim_clock_.Advance(29s);
  auto outcomes = [&](const std::string& outcome) {
    int n = 0;
    const auto state = WebhookState();
    for (const auto& d : state.at("deliveries").as_array()) {
      if (d.at("outcome").as_string() == outcome) ++n;
    }
    return n;
  };
  ASSERT_TRUE(WaitFor([&] { return outcomes("failed") == 10; }, 20s));
  const auto state = WebhookState();
  for (const auto& d : state.at("deliveries").as_array()) {
    EXPECT_NE(std::string(d.at("error").as_string()).find("connect_failed"), std::string::npos);
  }
  EXPECT_FALSE(WebhookState().at("enabled").as_bool());
  // The next event is not sent at all.
  Call("+15551000010");
  sim_clock_.Advance(29s);
  ASSERT_TRUE(WaitFor([&] { return outcomes("not_sent") == 1; }, 20s));
  EXPECT_EQ(outcomes("failed"), 10);
  auto enable = Fetch(port_, "POST", "/_sim/webhooks/config", {}, R"({"enabled":true})");
  ASSERT_TRUE(enable && enable->status == 200);
  EXPECT_TRUE(WebhookState().at("enabled").as_bool());
}

}  // namespace
}  // namespace callgate::testing
