// The conversation routes on the real HTTP server (in-process, 127.0.0.1, port 0), over the real
// ElevenLabs client talking to the simulator served on a second server of the same runtime.
// What reached the upstream is checked through the simulator's journal; failures come from its
// fault injection. The simulator's clock is manual: calls finish when the test moves it.
#include "conversations/routes.hpp"

#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/simulator.hpp"
#include "support/http_client.hpp"
#include "support/served_router.hpp"
#include "upstream/elevenlabs.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cctype>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <vector>

namespace callgate::conversations {
namespace {

namespace json = boost::json;
using callgate::testing::Fetch;
using callgate::testing::HttpResponse;
using callgate::testing::ServedRouter;
using callgate::testing::TcpConnection;
using namespace std::chrono_literals;

constexpr char kUpstreamKey[] = "sk_conversations_test_7f3a";
constexpr char kGatewayKey[] = "gateway-key-0123456789";
constexpr char kConversationRoute[] = "GET /v1/convai/conversations/{conversation_id}";

const json::object kCall{{"agent_id", "agent_sim_default"},
                         {"agent_phone_number_id", "phnum_sim_twilio"},
                         {"to_number", "+15551234567"},
                         {"conversation_initiation_client_data",
                          {{"dynamic_variables", {{"purpose", "Get parking ticket dismissed"}}}}}};

json::value Json(const HttpResponse& response) {
  try {
    return json::parse(response.body);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON (" << e.what() << "): " << response.body.substr(0, 200);
    return nullptr;
  }
}

// A JSON string as std::string ("<not a string>" otherwise), to compare with built strings.
std::string Str(const json::value& value) {
  return value.is_string() ? std::string(value.get_string()) : "<not a string>";
}

std::string ErrorCode(const HttpResponse& response) {
  const json::value body = Json(response);
  const json::value* code = body.is_object() ? body.as_object().if_contains("error") : nullptr;
  if (code == nullptr || !code->is_object() || !code->as_object().contains("code")) return "";
  return std::string(code->as_object().at("code").as_string());
}

class ConversationRoutesTest : public ::testing::Test {
 protected:
  // The simulator, the client and the gateway's routes, all on runtime_.
  void Serve(ConversationRoutesOptions options = {}, std::string upstream_key = kUpstreamKey) {
    sim::SimOptions sim_options;
    sim_options.api_key = kUpstreamKey;
    if (talk_secs_ > 0) sim_options.talk_secs = talk_secs_;
    simulator_ = std::make_unique<sim::Simulator>(std::move(sim_options), sim_clock_, scheduler_);
    simulator_->AddRoutes(sim_router_);
    sim_dispatcher_ = std::make_unique<http::Dispatcher>(
        sim_router_, http::DispatchOptions{.render_error = simulator_->ErrorRenderer(),
                                           .observer = simulator_->Observer()});
    http::ServerOptions sim_server{.host = "127.0.0.1", .port = 0};
    sim_server.server_name = "uvicorn";
    sim_served_ = std::make_unique<ServedRouter>(runtime_, *sim_dispatcher_, sim_server);
    StartGateway(std::move(options), std::move(upstream_key));
  }

  // The gateway over a stand-in upstream served from `upstream_router` instead of the simulator.
  void ServeOver(const http::Router& upstream_router) {
    sim_dispatcher_ = std::make_unique<http::Dispatcher>(upstream_router, http::DispatchOptions{});
    sim_served_ = std::make_unique<ServedRouter>(
        runtime_, *sim_dispatcher_, http::ServerOptions{.host = "127.0.0.1", .port = 0});
    StartGateway({}, kUpstreamKey);
  }

  void StartGateway(ConversationRoutesOptions options, std::string upstream_key) {
    upstream::ElevenLabsOptions client_options;
    client_options.base_url = "http://127.0.0.1:" + std::to_string(sim_served_->port());
    client_options.api_key = std::move(upstream_key);
    client_options.retry.base_delay = 10ms;
    http_ = upstream::MakeHttpClient(runtime_, {});
    client_ = std::make_unique<upstream::ElevenLabsClient>(
        *http_, scheduler_, wall_clock_, std::move(client_options), [] { return 0.5; });

    AddConversationRoutes(gateway_router_, *client_, std::move(options));
    gateway_dispatcher_ = std::make_unique<http::Dispatcher>(
        gateway_router_, http::DispatchOptions{.api_keys = {kGatewayKey}});
    gateway_ = std::make_unique<ServedRouter>(runtime_, *gateway_dispatcher_);
  }

  void TearDown() override {
    // Both servers share runtime_, and ServedRouter::Stop() stops the runtime: shut the gateway
    // down first without stopping it, then stop the simulator (and with it the runtime).
    if (gateway_) {
      auto stopped = std::make_shared<std::promise<void>>();
      gateway_->server().Shutdown(2s, [stopped] { stopped->set_value(); });
      stopped->get_future().wait_for(10s);
    }
    if (sim_served_) sim_served_->Stop();
    if (gateway_) gateway_->Join();
    gateway_.reset();
    sim_served_.reset();
    client_.reset();
    http_.reset();
  }

  std::string PlaceCall() {
    std::promise<upstream::ApiResult<json::object>> promise;
    auto future = promise.get_future();
    client_->OutboundCall(false, kCall, [&promise](upstream::ApiResult<json::object> result) {
      promise.set_value(std::move(result));
    });
    const auto result = future.get();
    if (const auto* error = std::get_if<upstream::ApiError>(&result)) {
      ADD_FAILURE() << "placing a call failed: " << error->message;
      return "";
    }
    return std::string(std::get<json::object>(result).at("conversation_id").as_string());
  }

  HttpResponse Get(const std::string& target, bool with_key = true,
                   std::string_view method = "GET") {
    std::vector<std::pair<std::string, std::string>> headers;
    if (with_key) headers.emplace_back("X-API-Key", kGatewayKey);
    auto response = Fetch(gateway_->port(), method, target, headers);
    EXPECT_TRUE(response.has_value()) << target;
    return response.value_or(HttpResponse{});
  }

  // A request with exactly these header lines (the test client always sends Host: 127.0.0.1).
  HttpResponse Raw(const std::string& target, const std::string& header_lines) {
    TcpConnection connection(gateway_->port());
    EXPECT_TRUE(connection.connected());
    EXPECT_TRUE(connection.Send("GET " + target + " HTTP/1.1\r\n" + header_lines +
                                "X-API-Key: " + kGatewayKey + "\r\nConnection: close\r\n\r\n"));
    auto response = connection.Read();
    EXPECT_TRUE(response.has_value()) << target;
    return response.value_or(HttpResponse{});
  }

  HttpResponse Upstream(const std::string& target) {
    auto response = Fetch(sim_served_->port(), "GET", target, {{"xi-api-key", kUpstreamKey}});
    EXPECT_TRUE(response.has_value()) << target;
    return response.value_or(HttpResponse{});
  }

  // The simulator's journal (only /v1 requests are journaled), optionally for one exact path.
  json::array Journal(const std::string& path = "") {
    auto response =
        Fetch(sim_served_->port(), "GET", "/_sim/requests" + (path.empty() ? "" : "?path=" + path));
    EXPECT_TRUE(response && response->status == 200);
    if (!response) return {};
    json::value body = json::parse(response->body);
    return body.at("requests").as_array();
  }

  void Fault(const std::string& spec) {
    auto response = Fetch(sim_served_->port(), "POST", "/_sim/faults", {}, spec);
    ASSERT_TRUE(response && response->status == 200) << (response ? response->body : "");
  }

  int talk_secs_ = 0;  // 0 = the simulator's default
  core::ManualClock sim_clock_{core::SystemTime(std::chrono::seconds(1'790'000'000))};
  core::SystemClock wall_clock_;
  net::Runtime runtime_{2};
  net::AsioScheduler scheduler_{runtime_};
  http::Router sim_router_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::unique_ptr<http::Dispatcher> sim_dispatcher_;
  std::unique_ptr<ServedRouter> sim_served_;
  std::unique_ptr<upstream::HttpClient> http_;
  std::unique_ptr<upstream::ElevenLabsClient> client_;
  http::Router gateway_router_;
  std::unique_ptr<http::Dispatcher> gateway_dispatcher_;
  std::unique_ptr<ServedRouter> gateway_;
};

TEST_F(ConversationRoutesTest, EveryRouteNeedsAnApiKey) {
  Serve();
  for (const std::string target :
       {"/api/conversations", "/api/conversations/conv_x", "/api/conversations/conv_x/audio"}) {
    const HttpResponse response = Get(target, false);
    EXPECT_EQ(response.status, 401) << target;
  }
  EXPECT_TRUE(Journal().empty());
}

TEST_F(ConversationRoutesTest, ADoneConversationIsRendered) {
  Serve();
  const std::string id = PlaceCall();
  sim_clock_.Advance(40s);

  const HttpResponse response = Get("/api/conversations/" + id);
  ASSERT_EQ(response.status, 200) << response.body;
  EXPECT_NE(response.Header("content-type").find("application/json"), std::string::npos);
  const json::value body = Json(response);
  const json::value upstream = Json(Upstream("/v1/convai/conversations/" + id));
  const json::object& answer = body.as_object();

  EXPECT_EQ(Str(answer.at("conversation_id")), id);
  EXPECT_EQ(answer.at("status"), "done");
  EXPECT_EQ(answer.at("agent_id"), "agent_sim_default");
  EXPECT_EQ(answer.at("upstream"), upstream);
  EXPECT_EQ(answer.at("duration_secs"), upstream.at("metadata").at("call_duration_secs"));
  EXPECT_EQ(answer.at("start_time_unix_secs"), upstream.at("metadata").at("start_time_unix_secs"));
  EXPECT_EQ(answer.at("analysis"), upstream.at("analysis"));
  EXPECT_TRUE(answer.at("analysis").is_object());
  EXPECT_EQ(Str(answer.at("recording_url")), "http://127.0.0.1/api/conversations/" + id + "/audio");

  // The transcript is the upstream's, turn by turn, and its text one line per turn.
  const json::array& turns = answer.at("transcript").as_array();
  const json::array& upstream_turns = upstream.at("transcript").as_array();
  ASSERT_GE(turns.size(), 2u);
  ASSERT_EQ(turns.size(), upstream_turns.size());
  std::string expected_text;
  for (std::size_t i = 0; i < turns.size(); ++i) {
    const json::object& turn = turns[i].as_object();
    const json::object& upstream_turn = upstream_turns[i].as_object();
    EXPECT_EQ(turn.size(), 3u);
    EXPECT_EQ(turn.at("role"), upstream_turn.at("role"));
    EXPECT_EQ(turn.at("message"), upstream_turn.at("message"));
    EXPECT_EQ(turn.at("time_in_call_secs"), upstream_turn.at("time_in_call_secs"));
    if (!expected_text.empty()) expected_text += '\n';
    expected_text += turn.at("role") == "agent" ? "Agent: " : "User: ";
    expected_text += std::string(turn.at("message").as_string());
  }
  EXPECT_EQ(turns[0].at("role"), "agent");
  EXPECT_NE(std::string(turns[0].at("message").as_string()).find("parking ticket"),
            std::string::npos);
  EXPECT_EQ(Str(answer.at("transcript_text")), expected_text);

  // Exactly one upstream request for the gateway's answer (plus the test's own direct read).
  EXPECT_EQ(Journal("/v1/convai/conversations/" + id).size(), 2u);
}

TEST_F(ConversationRoutesTest, RecordingUrlFollowsTheHostHeaderOrIsRelative) {
  Serve();
  const std::string id = PlaceCall();
  sim_clock_.Advance(40s);
  const std::string target = "/api/conversations/" + id;
  const std::string path = "/api/conversations/" + id + "/audio";

  const HttpResponse named = Raw(target, "Host: gw.example.com:8443\r\n");
  ASSERT_EQ(named.status, 200) << named.body;
  const json::value named_body = Json(named);
  EXPECT_EQ(Str(named_body.at("recording_url")), "http://gw.example.com:8443" + path);

  const HttpResponse garbage = Raw(target, "Host: evil.example/\"><script>\r\n");
  ASSERT_EQ(garbage.status, 200) << garbage.body;
  const json::value garbage_body = Json(garbage);
  EXPECT_EQ(Str(garbage_body.at("recording_url")), path);

  const HttpResponse missing = Raw(target, "");
  ASSERT_EQ(missing.status, 200) << missing.body;
  const json::value missing_body = Json(missing);
  EXPECT_EQ(Str(missing_body.at("recording_url")), path);
}

TEST_F(ConversationRoutesTest, RecordingUrlUsesThePublicBaseUrl) {
  Serve({.public_base_url = "https://calls.example.com/callgate"});
  const std::string id = PlaceCall();
  sim_clock_.Advance(40s);
  const HttpResponse response = Raw("/api/conversations/" + id, "Host: ignored.example\r\n");
  ASSERT_EQ(response.status, 200) << response.body;
  const json::value body = Json(response);
  EXPECT_EQ(Str(body.at("recording_url")),
            "https://calls.example.com/callgate/api/conversations/" + id + "/audio");
}

TEST_F(ConversationRoutesTest, TheRecordingIsTheSimulatorsBytes) {
  Serve();
  const std::string id = PlaceCall();
  sim_clock_.Advance(40s);

  const HttpResponse audio = Get("/api/conversations/" + id + "/audio");
  ASSERT_EQ(audio.status, 200) << audio.body.substr(0, 200);
  EXPECT_EQ(audio.Header("content-type"), "audio/mpeg");
  EXPECT_EQ(audio.Header("content-length"), std::to_string(audio.body.size()));
  const HttpResponse direct = Upstream("/v1/convai/conversations/" + id + "/audio");
  ASSERT_EQ(direct.status, 200);
  EXPECT_FALSE(direct.body.empty());
  EXPECT_EQ(audio.body, direct.body);

  // HEAD is served by the GET route: the same headers, no body.
  const HttpResponse head = Get("/api/conversations/" + id + "/audio", true, "HEAD");
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.Header("content-type"), "audio/mpeg");
  EXPECT_EQ(head.Header("content-length"), std::to_string(direct.body.size()));
  EXPECT_TRUE(head.body.empty());
}

TEST_F(ConversationRoutesTest, AConversationInProgressHasNoRecordingYet) {
  Serve();
  const std::string id = PlaceCall();
  sim_clock_.Advance(5s);  // answered, talking

  const HttpResponse conversation = Get("/api/conversations/" + id);
  ASSERT_EQ(conversation.status, 200) << conversation.body;
  const json::value body = Json(conversation);
  EXPECT_EQ(body.at("status"), "in-progress");
  EXPECT_TRUE(body.at("recording_url").is_null());

  const HttpResponse audio = Get("/api/conversations/" + id + "/audio");
  EXPECT_EQ(audio.status, 404);
  EXPECT_EQ(ErrorCode(audio), "recording_not_found");
  const json::value error = Json(audio);
  const std::string message(error.at("error").at("message").as_string());
  EXPECT_NE(message.find("has no recording (yet)"), std::string::npos) << message;
  EXPECT_NE(message.find("has no audio"), std::string::npos) << message;  // the upstream's words
  EXPECT_EQ(error.at("error").at("details").at("upstream_status"), 404);
}

TEST_F(ConversationRoutesTest, ALocalRecordingTakesPrecedence) {
  const std::string local_bytes = "ID3\x04local-mp3-bytes";
  std::mutex mutex;
  std::vector<std::string> asked;
  std::string stored_id;
  Serve({.local_recording = [&](std::string conversation_id, auto done) {
    std::optional<std::string> mp3;
    {
      std::lock_guard lock(mutex);
      asked.push_back(conversation_id);
      if (conversation_id == stored_id) mp3 = local_bytes;
    }
    done(std::move(mp3));
  }});
  const std::string stored = PlaceCall();
  const std::string other = PlaceCall();
  {
    std::lock_guard lock(mutex);
    stored_id = stored;
  }
  sim_clock_.Advance(40s);

  const HttpResponse local = Get("/api/conversations/" + stored + "/audio");
  ASSERT_EQ(local.status, 200);
  EXPECT_EQ(local.Header("content-type"), "audio/mpeg");
  EXPECT_EQ(local.body, local_bytes);
  EXPECT_TRUE(Journal("/v1/convai/conversations/" + stored + "/audio").empty());

  // Not stored locally: fetched upstream.
  const HttpResponse fetched = Get("/api/conversations/" + other + "/audio");
  ASSERT_EQ(fetched.status, 200);
  EXPECT_NE(fetched.body, local_bytes);
  EXPECT_EQ(Journal("/v1/convai/conversations/" + other + "/audio").size(), 1u);

  std::lock_guard lock(mutex);
  EXPECT_EQ(asked, (std::vector<std::string>{stored, other}));
}

TEST_F(ConversationRoutesTest, AnUnknownIdIs404) {
  Serve();
  const HttpResponse response = Get("/api/conversations/conv_does_not_exist");
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(ErrorCode(response), "not_found");
  const json::value body = Json(response);
  EXPECT_EQ(body.at("error").at("details").at("upstream_status"), 404);

  const HttpResponse audio = Get("/api/conversations/conv_does_not_exist/audio");
  EXPECT_EQ(audio.status, 404);
  EXPECT_EQ(ErrorCode(audio), "recording_not_found");
}

TEST_F(ConversationRoutesTest, AnInvalidIdIs400WithNoUpstreamRequest) {
  Serve();
  const std::string too_long(129, 'a');
  for (const std::string& id : {std::string("conv.x"), std::string("conv%20x"),
                                std::string("conv%2F..%2Fx"), std::string("conv%00"), too_long}) {
    for (const std::string& suffix : {std::string(), std::string("/audio")}) {
      const HttpResponse response = Get("/api/conversations/" + id + suffix);
      EXPECT_EQ(response.status, 400) << id << suffix;
      EXPECT_EQ(ErrorCode(response), "invalid_conversation_id") << id << suffix;
    }
  }
  EXPECT_TRUE(Journal().empty());
}

TEST_F(ConversationRoutesTest, TheListingPagesWithPageSizeAndCursor) {
  Serve();
  std::set<std::string> placed;
  for (int i = 0; i < 3; ++i)
    placed.insert(PlaceCall());

  const HttpResponse first = Get("/api/conversations?page_size=2");
  ASSERT_EQ(first.status, 200) << first.body;
  const json::value page1 = Json(first);
  ASSERT_EQ(page1.at("conversations").as_array().size(), 2u);
  EXPECT_TRUE(page1.at("has_more").as_bool());
  ASSERT_TRUE(page1.at("next_cursor").is_string());
  const std::string cursor(page1.at("next_cursor").as_string());

  const HttpResponse second =
      Get("/api/conversations?page_size=2&cursor=" + upstream::EncodeComponent(cursor));
  ASSERT_EQ(second.status, 200) << second.body;
  const json::value page2 = Json(second);
  ASSERT_EQ(page2.at("conversations").as_array().size(), 1u);
  EXPECT_FALSE(page2.at("has_more").as_bool());
  EXPECT_TRUE(page2.at("next_cursor").is_null());

  std::set<std::string> listed;
  for (const json::value* page : {&page1, &page2}) {
    for (const json::value& item : page->at("conversations").as_array()) {
      listed.insert(std::string(item.at("conversation_id").as_string()));
    }
  }
  EXPECT_EQ(listed, placed);

  // The parameters reached the upstream as given.
  const json::array journal = Journal("/v1/convai/conversations");
  ASSERT_EQ(journal.size(), 2u);
  EXPECT_EQ(journal[0].at("query"), "page_size=2");
  EXPECT_EQ(Str(journal[1].at("query")), "page_size=2&cursor=" + upstream::EncodeComponent(cursor));
}

TEST_F(ConversationRoutesTest, ListingFiltersArePassedOn) {
  Serve();
  PlaceCall();
  const HttpResponse response =
      Get("/api/conversations?agent_id=agent_sim_public&call_successful=success");
  ASSERT_EQ(response.status, 200) << response.body;
  const json::value body = Json(response);
  EXPECT_TRUE(body.at("conversations").as_array().empty());
  const json::array journal = Journal("/v1/convai/conversations");
  ASSERT_EQ(journal.size(), 1u);
  EXPECT_EQ(journal[0].at("query"), "agent_id=agent_sim_public&call_successful=success");
}

TEST_F(ConversationRoutesTest, ABadQueryIs400WithNoUpstreamRequest) {
  Serve();
  const std::pair<const char*, const char*> cases[] = {
      {"/api/conversations?foo=1", "foo"},
      {"/api/conversations?page_size=0", "page_size"},
      {"/api/conversations?page_size=101", "page_size"},
      {"/api/conversations?page_size=5&page_size=6", "page_size"},
      {"/api/conversations?call_successful=maybe", "call_successful"},
      {"/api/conversations?call_start_after_unix=soon", "call_start_after_unix"},
  };
  for (const auto& [target, parameter] : cases) {
    const HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 400) << target;
    EXPECT_EQ(ErrorCode(response), "invalid_query") << target;
    const json::value body = Json(response);
    EXPECT_EQ(body.at("error").at("details").at("parameter"), parameter) << target;
  }
  EXPECT_TRUE(Journal().empty());
}

TEST_F(ConversationRoutesTest, Upstream5xxIs502) {
  Serve();
  const std::string id = PlaceCall();
  Fault(std::string(R"({"route":")") + kConversationRoute + R"(","count":5,"status":503})");
  const HttpResponse response = Get("/api/conversations/" + id);
  EXPECT_EQ(response.status, 502) << response.body;
  EXPECT_EQ(ErrorCode(response), "upstream_error");
  const json::value body = Json(response);
  EXPECT_EQ(body.at("error").at("details").at("upstream_status"), 503);
  EXPECT_EQ(Journal("/v1/convai/conversations/" + id).size(), 3u);  // the GET retry policy
}

TEST_F(ConversationRoutesTest, AnHtmlPageIs502BadResponse) {
  Serve();
  const std::string id = PlaceCall();
  Fault(std::string(R"({"route":")") + kConversationRoute + R"(","count":5,"html":true})");
  const HttpResponse response = Get("/api/conversations/" + id);
  EXPECT_EQ(response.status, 502) << response.body;
  EXPECT_EQ(ErrorCode(response), "upstream_bad_response");

  Fault(R"({"route":"GET /v1/convai/conversations","count":5,"html":true})");
  const HttpResponse listing = Get("/api/conversations");
  EXPECT_EQ(listing.status, 502) << listing.body;
  EXPECT_EQ(ErrorCode(listing), "upstream_bad_response");
}

TEST_F(ConversationRoutesTest, AudioUpstreamFailureIsNotARecordingNotFound) {
  Serve();
  const std::string id = PlaceCall();
  sim_clock_.Advance(40s);
  Fault(
      R"({"route":"GET /v1/convai/conversations/{conversation_id}/audio","count":5,"status":503})");
  const HttpResponse response = Get("/api/conversations/" + id + "/audio");
  EXPECT_EQ(response.status, 502) << response.body;
  EXPECT_EQ(ErrorCode(response), "upstream_error");
}

TEST_F(ConversationRoutesTest, AWrongUpstreamKeyIs502AuthFailed) {
  Serve({}, "sk_wrong_key");
  for (const std::string target :
       {"/api/conversations/conv_abc", "/api/conversations", "/api/conversations/conv_abc/audio"}) {
    const HttpResponse response = Get(target);
    EXPECT_EQ(response.status, 502) << target << ": " << response.body;
    EXPECT_EQ(ErrorCode(response), "upstream_auth_failed") << target;
  }
}

TEST_F(ConversationRoutesTest, ALongRecordingIsStreamedWithTheUpstreamsLength) {
  talk_secs_ = 90;  // a recording of several 64 KiB chunks
  Serve();
  const std::string id = PlaceCall();
  sim_clock_.Advance(120s);

  const HttpResponse direct = Upstream("/v1/convai/conversations/" + id + "/audio");
  ASSERT_EQ(direct.status, 200);
  ASSERT_GT(direct.body.size(), 4u * 64 * 1024);
  EXPECT_EQ(direct.Header("content-length"), std::to_string(direct.body.size()));

  for (int i = 0; i < 2; ++i) {  // the second over the pooled upstream connection
    const HttpResponse audio = Get("/api/conversations/" + id + "/audio");
    ASSERT_EQ(audio.status, 200) << audio.body.substr(0, 200);
    EXPECT_EQ(audio.Header("content-type"), "audio/mpeg");
    EXPECT_EQ(audio.Header("content-length"), std::to_string(direct.body.size()));
    EXPECT_EQ(audio.Header("transfer-encoding"), "");
    EXPECT_EQ(audio.Header("content-disposition"), "inline; filename=\"" + id + ".mp3\"");
    EXPECT_TRUE(audio.body == direct.body) << "the recording's bytes, unchanged";
  }
  EXPECT_EQ(Journal("/v1/convai/conversations/" + id + "/audio").size(), 3u);
}

// Opens once the test says so: what the stand-in upstream waits on between chunks.
class Gate {
 public:
  void Run(std::function<void(bool fail)> task) {
    std::unique_lock lock(mutex_);
    if (!open_) {
      waiting_.push_back(std::move(task));
      return;
    }
    const bool fail = fail_;
    lock.unlock();
    task(fail);
  }
  void Open(bool fail) {
    std::vector<std::function<void(bool)>> waiting;
    {
      std::lock_guard lock(mutex_);
      open_ = true;
      fail_ = fail;
      waiting.swap(waiting_);
    }
    for (auto& task : waiting)
      task(fail);
  }

 private:
  std::mutex mutex_;
  bool open_ = false;
  bool fail_ = false;
  std::vector<std::function<void(bool)>> waiting_;
};

// A recording of unknown length (sent chunked): the first 16 KiB at once, the rest only once the
// gate opens (or an error then, when it opens failing).
class GatedRecording final : public http::BodyStream,
                             public std::enable_shared_from_this<GatedRecording> {
 public:
  GatedRecording(std::shared_ptr<const std::string> bytes, std::shared_ptr<Gate> gate)
      : bytes_(std::move(bytes)), gate_(std::move(gate)) {}
  std::optional<std::uint64_t> Length() const override { return std::nullopt; }
  void Next(NextCallback done) override {
    if (offset_ == 0) return Serve(std::move(done));
    gate_->Run([self = shared_from_this(), done = std::move(done)](bool fail) mutable {
      if (fail) return done(http::BodyChunk::Error("the upstream broke down"));
      self->Serve(std::move(done));
    });
  }

 private:
  void Serve(NextCallback done) {
    if (offset_ >= bytes_->size()) return done(http::BodyChunk::End());
    const std::size_t n = std::min<std::size_t>(16 * 1024, bytes_->size() - offset_);
    std::string piece = bytes_->substr(offset_, n);
    offset_ += n;
    done(http::BodyChunk::Data(std::move(piece)));
  }

  std::shared_ptr<const std::string> bytes_;
  std::shared_ptr<Gate> gate_;
  std::size_t offset_ = 0;
};

// What a chunked body carries so far (a chunk still arriving counts with its bytes so far);
// `complete` says whether the last chunk was seen.
std::string DecodeChunked(std::string_view wire, bool& complete) {
  std::string body;
  complete = false;
  while (true) {
    const auto line_end = wire.find("\r\n");
    if (line_end == std::string_view::npos) return body;
    const std::size_t size = std::stoul(std::string(wire.substr(0, line_end)), nullptr, 16);
    wire.remove_prefix(line_end + 2);
    if (size == 0) {
      complete = true;
      return body;
    }
    body += wire.substr(0, std::min(size, wire.size()));
    if (wire.size() < size + 2) return body;
    wire.remove_prefix(size + 2);
  }
}

// The response head (lower-cased) and the raw bytes after it.
struct Wire {
  std::string head;
  std::string rest;
};
Wire SplitHead(const std::string& raw) {
  const auto end = raw.find("\r\n\r\n");
  if (end == std::string::npos) return {};
  Wire wire{raw.substr(0, end + 2), raw.substr(end + 4)};
  for (char& c : wire.head)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return wire;
}

class StreamingRoutesTest : public ConversationRoutesTest {
 protected:
  void SetUp() override {
    std::string bytes(300'000, '\0');
    for (std::size_t i = 0; i < bytes.size(); ++i)
      bytes[i] = static_cast<char>(i * 31 % 251);
    recording_ = std::make_shared<const std::string>(std::move(bytes));
    upstream_router_.Add(
        "GET", "/v1/convai/conversations/{conversation_id}/audio",
        [this](http::Request, http::Responder responder) {
          responder.Send(http::Response::Stream(
              200, "audio/mpeg", std::make_shared<GatedRecording>(recording_, gate_)));
        });
    ServeOver(upstream_router_);
  }

  // Sends the request and reads until the head and the first 16 KiB of the recording (what the
  // upstream sends before waiting on the gate) have arrived; returns the raw bytes so far.
  std::string StartDownload(TcpConnection& connection) {
    EXPECT_TRUE(
        connection.Send("GET /api/conversations/conv_streamed/audio HTTP/1.1\r\nHost: x\r\n"
                        "X-API-Key: " +
                        std::string(kGatewayKey) + "\r\nConnection: close\r\n\r\n"));
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    std::string raw;
    std::string byte;
    while (true) {
      bool complete = false;
      const Wire wire = SplitHead(raw);
      if (!wire.head.empty() && DecodeChunked(wire.rest, complete).size() >= 16 * 1024) break;
      if (!connection.ReadExact(1, byte, deadline)) {
        ADD_FAILURE() << "the first chunk did not reach the client while the upstream waits";
        break;
      }
      raw += byte;
    }
    return raw;
  }

  http::Router upstream_router_;
  std::shared_ptr<const std::string> recording_;
  std::shared_ptr<Gate> gate_ = std::make_shared<Gate>();
};

TEST_F(StreamingRoutesTest, TheFirstBytesArriveBeforeTheUpstreamHasFinished) {
  TcpConnection connection(gateway_->port());
  std::string raw = StartDownload(connection);
  Wire wire = SplitHead(raw);
  EXPECT_NE(wire.head.find("transfer-encoding: chunked"), std::string::npos)
      << "the upstream sent no length, so neither does the gateway: " << wire.head;
  EXPECT_NE(wire.head.find("content-type: audio/mpeg"), std::string::npos) << wire.head;
  bool complete = false;
  EXPECT_EQ(DecodeChunked(wire.rest, complete).substr(0, 16 * 1024),
            recording_->substr(0, 16 * 1024));
  EXPECT_FALSE(complete);

  gate_->Open(false);
  bool closed = false;
  raw += connection.ReadUntilClosed(10s, &closed);
  EXPECT_TRUE(closed);
  wire = SplitHead(raw);
  const std::string body = DecodeChunked(wire.rest, complete);
  EXPECT_TRUE(complete) << "a complete chunked body";
  EXPECT_TRUE(body == *recording_);
}

TEST_F(StreamingRoutesTest, AnUpstreamFailureMidBodyCutsTheDownload) {
  TcpConnection connection(gateway_->port());
  std::string raw = StartDownload(connection);
  gate_->Open(true);
  bool closed = false;
  raw += connection.ReadUntilClosed(10s, &closed);
  EXPECT_TRUE(closed) << "the gateway ends the connection";
  bool complete = true;
  const std::string body = DecodeChunked(SplitHead(raw).rest, complete);
  EXPECT_FALSE(complete) << "no last chunk: the client can tell the recording is incomplete";
  EXPECT_EQ(body, recording_->substr(0, body.size()));
  // The gateway keeps serving.
  const HttpResponse missing = Get("/api/conversations/conv_x");
  EXPECT_EQ(missing.status, 404);
}

}  // namespace
}  // namespace callgate::conversations
