// The webhook routes on the real in-process HTTP server (http::Server over TCP on 127.0.0.1),
// with the inbox on a real SQLite file. Signatures are made with the openssl CLI.
#include "webhook/routes.hpp"

#include "fakes.hpp"
#include "http/dispatcher.hpp"
#include "net/runtime.hpp"
#include "openssl_cli.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <iterator>

namespace callgate::webhook {
namespace {

using namespace std::chrono_literals;
using callgate::testing::Fetch;
using callgate::testing::HttpResponse;
using callgate::testing::TcpConnection;
using callgate::testing::TempDir;

constexpr char kSecret[] = "whsec_routes_test_4b8c1d";
constexpr char kApiKey[] = "key-routes-test-123456";
constexpr std::int64_t kNow = 1'700'000'000;  // the ManualClock's default start

std::string Transcription(const std::string& conversation) {
  return R"({"type":"post_call_transcription","event_timestamp":1700000000,"data":{"agent_id":"a1",)"
         R"("conversation_id":")" +
         conversation +
         R"(","status":"done","transcript":[{"role":"agent","message":"Hello","time_in_call_secs":0}],)"
         R"("metadata":{"call_duration_secs":12}}})";
}

// The signature header, its MAC from the openssl CLI.
std::string SignedBy(const std::string& secret, std::int64_t t, const std::string& body) {
  const std::string mac = testing::OpensslHmacHex(secret, std::to_string(t) + "." + body);
  EXPECT_EQ(mac.size(), 64u) << "the openssl CLI did not answer";
  return "t=" + std::to_string(t) + ",v0=" + mac;
}

boost::json::value Json(const HttpResponse& response) {
  return boost::json::parse(response.body);
}
std::string Code(const HttpResponse& response) {
  return std::string(Json(response).at("error").at("code").as_string());
}

class RoutesTest : public ::testing::Test {
 protected:
  void Start(WebhookRouteOptions options = {}, InboxOptions inbox_options = {},
             std::vector<std::string> forward_to = {}) {
    database_ = store::Database::Open((dir_.path() / "callgate.db").string(), Migrations());
    inbox_options.data_dir = dir_.path();
    std::vector<EventSink*> sinks;
    if (!forward_to.empty()) {
      forwarder_ = std::make_unique<Forwarder>(
          *database_, transport_, clock_, scheduler_,
          ForwarderOptions{.targets = forward_to, .secret = "fwd", .stop_timeout = 5s});
      forwarder_->Start();
      sinks.push_back(forwarder_.get());
      options.forwarder = forwarder_.get();
    }
    inbox_ = std::make_unique<Inbox>(*database_, clock_, inbox_options, sinks);
    AddWebhookRoutes(router_, *inbox_, clock_, std::move(options));
    dispatcher_ = std::make_unique<http::Dispatcher>(
        router_, http::DispatchOptions{.default_max_body_bytes = 1024, .api_keys = {kApiKey}});
    served_ = std::make_unique<callgate::testing::ServedRouter>(*runtime_, *dispatcher_);
    port_ = served_->port();
  }
  static WebhookRouteOptions Signed() {
    WebhookRouteOptions options;
    options.verify.secrets = {kSecret};
    options.max_body_bytes = 4 * 1024 * 1024;
    return options;
  }
  void TearDown() override {
    served_.reset();
    if (inbox_) inbox_->Stop();
    if (forwarder_) forwarder_->Stop();
  }

  std::optional<HttpResponse> Post(const std::string& body, std::optional<std::string> signature) {
    std::vector<std::pair<std::string, std::string>> headers{{"Content-Type", "application/json"}};
    if (signature) headers.emplace_back("ElevenLabs-Signature", *signature);
    return Fetch(port_, "POST", "/api/webhooks/elevenlabs", headers, body);
  }
  std::optional<HttpResponse> Get(const std::string& target) {
    return Fetch(port_, "GET", target, {{"X-API-Key", kApiKey}});
  }
  std::int64_t StoredCount() {
    std::promise<std::int64_t> count;
    database_->Post([&](sqlite3* db) {
      sqlite3_stmt* stmt = nullptr;
      sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM webhook_events", -1, &stmt, nullptr);
      sqlite3_step(stmt);
      count.set_value(sqlite3_column_int64(stmt, 0));
      sqlite3_finalize(stmt);
    });
    return count.get_future().get();
  }

  TempDir dir_;
  core::ManualClock clock_;
  testing::FakeTransport transport_;
  testing::ManualScheduler scheduler_;
  std::unique_ptr<store::Database> database_;
  std::unique_ptr<Forwarder> forwarder_;
  std::unique_ptr<Inbox> inbox_;
  std::unique_ptr<net::Runtime> runtime_ = std::make_unique<net::Runtime>(2);
  http::Router router_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<callgate::testing::ServedRouter> served_;
  std::uint16_t port_ = 0;
};

TEST_F(RoutesTest, SignedEventIsStoredThenReadableWithItsRawPayload) {
  Start(Signed());
  const std::string body = Transcription("conv_1");
  auto response = Post(body, SignedBy(kSecret, kNow, body));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(Json(*response).at("status").as_string(), "stored");
  const std::string event_id(Json(*response).at("event_id").as_string());

  response = Get("/api/webhooks/events/" + event_id);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const auto event = Json(*response);
  EXPECT_EQ(event.at("payload").as_string(), body);
  EXPECT_EQ(event.at("verification").as_string(), "verified");
  EXPECT_EQ(event.at("source").as_string(), "webhook");
  EXPECT_EQ(event.at("conversation_id").as_string(), "conv_1");
  EXPECT_EQ(event.at("type").as_string(), "post_call_transcription");

  response = Get("/api/webhooks/events/evt_missing");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(Code(*response), "event_not_found");
}

TEST_F(RoutesTest, ReplayAndRedeliveryAreAcknowledgedOnce) {
  Start(Signed());
  const std::string body = Transcription("conv_1");
  const std::string signature = SignedBy(kSecret, kNow, body);
  auto first = Post(body, signature);
  ASSERT_TRUE(first);
  ASSERT_EQ(first->status, 200);
  auto replay = Post(body, signature);
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 200);
  EXPECT_EQ(Json(*replay).at("status").as_string(), "duplicate");
  EXPECT_EQ(Json(*replay).at("event_id"), Json(*first).at("event_id"));
  // The same event re-sent later with a fresh signature.
  clock_.Advance(60s);
  auto redelivery = Post(body, SignedBy(kSecret, kNow + 60, body));
  ASSERT_TRUE(redelivery);
  EXPECT_EQ(Json(*redelivery).at("status").as_string(), "duplicate");
  EXPECT_EQ(StoredCount(), 1);
}

TEST_F(RoutesTest, BadSignaturesAre401WithPreciseCodes) {
  Start(Signed());
  const std::string body = Transcription("conv_1");
  const std::string good = SignedBy(kSecret, kNow, body);
  struct Case {
    std::optional<std::string> header;
    std::string body;
    const char* code;
  };
  std::string tampered = body;
  tampered[tampered.find("Hello")] = 'J';
  const std::vector<Case> cases = {
      {std::nullopt, body, "signature_missing"},
      {"", body, "signature_missing"},
      {"v0=abc", body, "signature_malformed"},
      {"t=" + std::to_string(kNow) + ",v0=" + std::string(63, 'a'), body, "signature_malformed"},
      {good, tampered, "signature_mismatch"},
      {SignedBy("some-other-secret", kNow, body), body, "signature_mismatch"},
      {SignedBy(kSecret, kNow - 31 * 60, body), body, "timestamp_out_of_tolerance"},
      {SignedBy(kSecret, kNow + 6 * 60, body), body, "timestamp_out_of_tolerance"},
  };
  for (const Case& c : cases) {
    auto response = Post(c.body, c.header);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 401) << c.code;
    EXPECT_EQ(Code(*response), c.code);
    EXPECT_FALSE(Json(*response).at("error").at("request_id").as_string().empty());
  }
  EXPECT_EQ(StoredCount(), 0);
}

TEST_F(RoutesTest, VerifiedButInvalidBodiesAre400) {
  Start(Signed());
  for (const auto& [body, code] : std::vector<std::pair<std::string, std::string>>{
           {"{\"type\": oops}", "invalid_json"},
           {R"({"data":{}})", "missing_field"},
           {R"({"type":"x"})", "missing_field"},
           {R"({"type":"x","data":"no"})", "invalid_field"},
           {R"({"type":"post_call_audio","data":{"conversation_id":"c","full_audio":"%%%"}})",
            "invalid_audio"},
       }) {
    auto response = Post(body, SignedBy(kSecret, kNow, body));
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << body;
    EXPECT_EQ(Code(*response), code) << body;
  }
  const std::string body = R"({"type":"x"})";
  auto response = Post(body, SignedBy(kSecret, kNow, body));
  EXPECT_EQ(Json(*response).at("error").at("details").at("field").as_string(), "data");
  EXPECT_EQ(StoredCount(), 0);
}

TEST_F(RoutesTest, UnknownTypesAreStoredAndAcknowledged) {
  Start(Signed());
  const std::string body = R"({"type":"agent_feedback","data":{"score":5}})";
  auto response = Post(body, SignedBy(kSecret, kNow, body));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(Json(*response).at("status").as_string(), "stored");
}

TEST_F(RoutesTest, WithoutASecretEventsAreStoredUnverified) {
  Start();  // no secret
  const std::string body = Transcription("conv_u");
  auto response = Post(body, std::nullopt);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200);
  const std::string id(Json(*response).at("event_id").as_string());
  response = Get("/api/webhooks/events/" + id);
  EXPECT_EQ(Json(*response).at("verification").as_string(), "unverified");
}

// A post_call_audio event for `conversation` carrying `mp3_bytes` of MP3-like bytes, encoded by
// the coreutils base64 tool (outside the code under test); sets `mp3` to the bytes.
std::string AudioEvent(const std::filesystem::path& dir, const std::string& conversation,
                       std::size_t mp3_bytes, std::string& mp3) {
  mp3 = std::string("ID3\x04\x00\x00", 6);
  for (int i = 0; mp3.size() < mp3_bytes; ++i)
    mp3 += static_cast<char>(i * 7 % 251);
  const auto raw = dir / (conversation + ".bin");
  { std::ofstream(raw, std::ios::binary) << mp3; }
  const auto encoded_file = dir / (conversation + ".b64");
  EXPECT_EQ(
      std::system(("base64 -w0 '" + raw.string() + "' > '" + encoded_file.string() + "'").c_str()),
      0);
  std::ifstream in(encoded_file);
  const std::string encoded{std::istreambuf_iterator<char>(in), {}};
  return R"({"type":"post_call_audio","event_timestamp":1700000000,"data":{"agent_id":"a1",)"
         R"("conversation_id":")" +
         conversation + R"(","full_audio":")" + encoded + R"("}})";
}

TEST_F(RoutesTest, ChunkedAudioIsStoredAsAnMp3) {
  Start(Signed());
  // Large enough to be verified and parsed off the I/O threads (offload_bytes: 256 KiB).
  std::string mp3;
  const std::string body = AudioEvent(dir_.path(), "conv_audio", 600'000, mp3);
  ASSERT_GT(body.size(), 256u * 1024);

  TcpConnection connection(port_);
  std::string request =
      "POST /api/webhooks/elevenlabs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "ElevenLabs-Signature: " +
      SignedBy(kSecret, kNow, body) + "\r\nTransfer-Encoding: chunked\r\n\r\n";
  constexpr std::size_t kChunk = 64 * 1024;
  for (std::size_t offset = 0; offset < body.size(); offset += kChunk) {
    const std::string chunk = body.substr(offset, kChunk);
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", chunk.size());
    request += size + chunk + "\r\n";
  }
  request += "0\r\n\r\n";
  ASSERT_TRUE(connection.Send(request));
  auto response = connection.Read(30s);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(Json(*response).at("status").as_string(), "stored");

  const auto path = inbox_->RecordingPath("conv_audio");
  ASSERT_TRUE(path);
  std::ifstream file(*path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(file), {}), mp3);
}

// Over the HTTP parser's own default limit (1 MiB), with a Content-Length as most senders use.
TEST_F(RoutesTest, AudioOverOneMebibyteWithAContentLengthIsStored) {
  Start(Signed());  // the route's limit: 4 MiB
  std::string mp3;
  const std::string body = AudioEvent(dir_.path(), "conv_long", 1'500'000, mp3);
  ASSERT_GT(body.size(), 1024u * 1024);
  auto response = Post(body, SignedBy(kSecret, kNow, body));
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(Json(*response).at("status").as_string(), "stored");
  const auto path = inbox_->RecordingPath("conv_long");
  ASSERT_TRUE(path);
  std::ifstream file(*path, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(file), {}), mp3);
}

TEST_F(RoutesTest, OversizedBodiesAre413) {
  WebhookRouteOptions options = Signed();
  options.max_body_bytes = 64 * 1024;
  Start(options);
  const std::string body = R"({"type":"x","data":{"pad":")" + std::string(70 * 1024, 'p') + "\"}}";
  auto response = Post(body, SignedBy(kSecret, kNow, body));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  EXPECT_EQ(Code(*response), "payload_too_large");
  // Chunked, with no Content-Length to refuse it up front.
  TcpConnection connection(port_);
  std::string request =
      "POST /api/webhooks/elevenlabs HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 20; ++i)
    request += "1000\r\n" + std::string(4096, 'q') + "\r\n";
  request += "0\r\n\r\n";
  ASSERT_TRUE(connection.Send(request));
  response = connection.Read();
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 413);
  // Under the route's limit (and above the server default of 1 KiB) is accepted.
  const std::string fits = R"({"type":"x","data":{"pad":")" + std::string(10 * 1024, 'p') + "\"}}";
  response = Post(fits, SignedBy(kSecret, kNow, fits));
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);
}

TEST_F(RoutesTest, BusyStoreIs503AndTheServerStaysUp) {
  Start(Signed(), {.max_pending_events = 1});
  // Hold the database thread so the first event stays pending.
  auto gate = std::make_shared<std::promise<void>>();
  std::shared_future<void> open = gate->get_future().share();
  std::promise<void> entered;
  database_->Post([open, &entered](sqlite3*) {
    entered.set_value();
    open.wait();
  });
  entered.get_future().wait();

  // The only slot is taken by an event waiting for the database.
  std::promise<SubmitResult> first;
  {
    Submission submission;
    submission.event = ParseEvent(Transcription("conv_1")).value();
    submission.verification = "unverified";
    inbox_->Submit(std::move(submission), [&](SubmitResult r) { first.set_value(std::move(r)); });
  }
  const std::string second = Transcription("conv_2");
  auto busy = Post(second, SignedBy(kSecret, kNow, second));
  ASSERT_TRUE(busy);
  EXPECT_EQ(busy->status, 503);
  EXPECT_EQ(Code(*busy), "inbox_busy");
  EXPECT_EQ(busy->Header("retry-after"), "1");

  gate->set_value();
  EXPECT_EQ(first.get_future().get().status, SubmitStatus::kStored);
  EXPECT_EQ(StoredCount(), 1);
  auto retried = Post(second, SignedBy(kSecret, kNow, second));
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200);
}

TEST_F(RoutesTest, EventListingNeedsAKeyFiltersAndPages) {
  Start(Signed());
  for (int i = 0; i < 3; ++i) {
    const std::string body = Transcription("conv_" + std::to_string(i));
    ASSERT_EQ(Post(body, SignedBy(kSecret, kNow, body))->status, 200);
  }
  const std::string failure =
      R"({"type":"call_initiation_failure","data":{"conversation_id":"conv_1","failure_reason":"busy"}})";
  ASSERT_EQ(Post(failure, SignedBy(kSecret, kNow, failure))->status, 200);

  auto response = Fetch(port_, "GET", "/api/webhooks/events");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 401);
  EXPECT_EQ(Code(*response), "missing_api_key");
  response = Fetch(port_, "GET", "/api/webhooks/events/evt_x");
  EXPECT_EQ(response->status, 401);

  response = Get("/api/webhooks/events?limit=3");
  ASSERT_EQ(response->status, 200) << response->body;
  auto page = Json(*response);
  ASSERT_EQ(page.at("events").as_array().size(), 3u);
  EXPECT_EQ(page.at("events").at(0).at("type").as_string(), "call_initiation_failure");
  EXPECT_FALSE(page.at("events").at(0).as_object().contains("payload"));
  const std::string cursor(page.at("next_cursor").as_string());
  response = Get("/api/webhooks/events?limit=3&cursor=" + cursor);
  page = Json(*response);
  ASSERT_EQ(page.at("events").as_array().size(), 1u);
  EXPECT_EQ(page.at("events").at(0).at("conversation_id").as_string(), "conv_0");
  EXPECT_TRUE(page.at("next_cursor").is_null());

  response = Get("/api/webhooks/events?type=call_initiation_failure");
  EXPECT_EQ(Json(*response).at("events").as_array().size(), 1u);
  response = Get("/api/webhooks/events?conversation_id=conv_1");
  EXPECT_EQ(Json(*response).at("events").as_array().size(), 2u);
  response = Get("/api/webhooks/events?since=" + std::to_string(kNow + 1));
  EXPECT_EQ(Json(*response).at("events").as_array().size(), 0u);
  response = Get("/api/webhooks/events?since=" + std::to_string(kNow) +
                 "&until=" + std::to_string(kNow + 1));
  EXPECT_EQ(Json(*response).at("events").as_array().size(), 4u);

  for (const char* bad : {"limit=0", "limit=1001", "limit=x", "since=soon", "cursor=abc"}) {
    response = Get(std::string("/api/webhooks/events?") + bad);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << bad;
    EXPECT_EQ(Code(*response), "invalid_parameter") << bad;
  }
}

TEST_F(RoutesTest, ReplayForwardsAgainAndTheEventShowsItsDeliveries) {
  Start(Signed(), {}, {"https://n8n.example/hook"});
  const std::string body = Transcription("conv_1");
  auto response = Post(body, SignedBy(kSecret, kNow, body));
  ASSERT_EQ(response->status, 200);
  const std::string id(Json(*response).at("event_id").as_string());
  ASSERT_TRUE(callgate::testing::WaitFor([&] { return transport_.count() == 1; }, 10s));
  transport_.Answer(0, 200);

  response = Get("/api/webhooks/events/" + id);
  ASSERT_EQ(response->status, 200);
  auto deliveries = Json(*response).at("deliveries").as_array();
  ASSERT_EQ(deliveries.size(), 1u);
  EXPECT_EQ(deliveries[0].at("state").as_string(), "delivered");
  EXPECT_EQ(deliveries[0].at("target").as_string(), "https://n8n.example/hook");

  response = Fetch(port_, "POST", "/api/webhooks/events/" + id + "/replay");
  EXPECT_EQ(response->status, 401) << "replay needs an API key";
  response =
      Fetch(port_, "POST", "/api/webhooks/events/" + id + "/replay", {{"X-API-Key", kApiKey}});
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 202) << response->body;
  EXPECT_EQ(Json(*response).at("deliveries").as_int64(), 1);
  ASSERT_TRUE(callgate::testing::WaitFor([&] { return transport_.count() == 2; }, 10s));
  EXPECT_EQ(transport_.call(1).Header("Callgate-Event-Id"), id);
  transport_.Answer(1, 200);

  response =
      Fetch(port_, "POST", "/api/webhooks/events/evt_unknown/replay", {{"X-API-Key", kApiKey}});
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(Code(*response), "event_not_found");
}

TEST_F(RoutesTest, ReplayWithoutForwardingIs409) {
  Start(Signed());
  auto response =
      Fetch(port_, "POST", "/api/webhooks/events/evt_x/replay", {{"X-API-Key", kApiKey}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 409);
  EXPECT_EQ(Code(*response), "forwarding_not_configured");
  response = Get("/api/webhooks/events/evt_x");
  EXPECT_EQ(response->status, 404);
}

}  // namespace
}  // namespace callgate::webhook
