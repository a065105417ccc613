// The ElevenLabs client against the simulator served by the real server over loopback: the
// exact requests (through the simulator's journal), every documented error shape, and the retry
// policy under the simulator's fault injection (exactly how many requests reached it).
#include "upstream/elevenlabs.hpp"

#include "core/clock.hpp"
#include "http/dispatcher.hpp"
#include "net/asio_scheduler.hpp"
#include "net/runtime.hpp"
#include "sim/simulator.hpp"
#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/served_router.hpp"

#include "support/pruned_conversation.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <future>

namespace callgate::upstream {
namespace {

using callgate::testing::Fetch;
using callgate::testing::ServedRouter;
using callgate::testing::TempDir;
using namespace std::chrono_literals;

constexpr char kKey[] = "sk_client_test_52e1";

template <class T>
ApiResult<T> Wait(std::function<void(std::function<void(ApiResult<T>)>)> start) {
  std::promise<ApiResult<T>> promise;
  auto future = promise.get_future();
  start([&promise](ApiResult<T> result) { promise.set_value(std::move(result)); });
  return future.get();
}

template <class T>
const T& Value(const ApiResult<T>& result) {
  if (const auto* error = std::get_if<ApiError>(&result)) {
    ADD_FAILURE() << "error: " << error->upstream_status << " " << error->code << " "
                  << error->message;
    static const T kEmpty{};
    return kEmpty;
  }
  return std::get<T>(result);
}

template <class T>
ApiError Error(const ApiResult<T>& result) {
  if (!std::holds_alternative<ApiError>(result)) {
    ADD_FAILURE() << "expected an error";
    return {};
  }
  return std::get<ApiError>(result);
}

const boost::json::object kCall{
    {"agent_id", "agent_sim_default"},
    {"agent_phone_number_id", "phnum_sim_twilio"},
    {"to_number", "+15551234567"},
    {"conversation_initiation_client_data",
     {{"dynamic_variables", {{"purpose", "Get parking ticket dismissed"}}}}}};

class ElevenLabsClientTest : public ::testing::Test {
 protected:
  void Serve(http::ServerOptions server = {.host = "127.0.0.1", .port = 0}) {
    sim::SimOptions options;
    options.api_key = kKey;
    simulator_ = std::make_unique<sim::Simulator>(std::move(options), sim_clock_, scheduler_);
    simulator_->AddRoutes(router_);
    dispatcher_ = std::make_unique<http::Dispatcher>(
        router_, http::DispatchOptions{.render_error = simulator_->ErrorRenderer(),
                                       .observer = simulator_->Observer()});
    server.server_name = "uvicorn";
    served_ = std::make_unique<ServedRouter>(runtime_, *dispatcher_, server);
  }

  ElevenLabsClient& Client(ElevenLabsOptions options = {}, HttpClientOptions http = {}) {
    if (options.base_url == ElevenLabsOptions{}.base_url) {
      options.base_url = "http://127.0.0.1:" + std::to_string(served_->port());
    }
    if (options.api_key.empty()) options.api_key = kKey;
    options.retry.base_delay = 10ms;
    http_ = MakeHttpClient(runtime_, std::move(http));
    client_ = std::make_unique<ElevenLabsClient>(*http_, scheduler_, wall_clock_,
                                                 std::move(options), [] { return 0.5; });
    return *client_;
  }

  void TearDown() override {
    served_.reset();
    client_.reset();
    http_.reset();
  }

  void Fault(const std::string& json) {
    auto response = Fetch(served_->port(), "POST", "/_sim/faults", {}, json);
    ASSERT_TRUE(response && response->status == 200) << (response ? response->body : "");
  }

  boost::json::array Journal(const std::string& path) {
    auto response = Fetch(served_->port(), "GET", "/_sim/requests?path=" + path);
    EXPECT_TRUE(response && response->status == 200);
    return boost::json::parse(response->body).at("requests").as_array();
  }

  core::ManualClock sim_clock_{core::SystemTime(std::chrono::seconds(1'790'000'000))};
  core::SystemClock wall_clock_;
  net::Runtime runtime_{2};
  net::AsioScheduler scheduler_{runtime_};
  http::Router router_;
  std::unique_ptr<sim::Simulator> simulator_;
  std::unique_ptr<http::Dispatcher> dispatcher_;
  std::unique_ptr<ServedRouter> served_;
  std::unique_ptr<HttpClient> http_;
  std::unique_ptr<ElevenLabsClient> client_;
};

constexpr char kTwilioPath[] = "/v1/convai/twilio/outbound-call";

TEST_F(ElevenLabsClientTest, OutboundCallSendsTheExactRequest) {
  Serve();
  auto& client = Client();
  const auto result =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  const auto& answer = Value(result);
  EXPECT_TRUE(answer.at("success").as_bool());
  EXPECT_TRUE(answer.at("conversation_id").as_string().starts_with("conv_"));
  EXPECT_TRUE(answer.at("callSid").as_string().starts_with("CA"));

  const auto journal = Journal(kTwilioPath);
  ASSERT_EQ(journal.size(), 1u);
  const auto& request = journal[0].as_object();
  EXPECT_EQ(request.at("method").as_string(), "POST");
  EXPECT_EQ(boost::json::parse(request.at("body").as_string()), boost::json::value(kCall));
  bool has_key = false;
  for (const auto& [name, value] : request.at("headers").as_object()) {
    if (name == "xi-api-key") has_key = true;
  }
  EXPECT_TRUE(has_key);
}

TEST_F(ElevenLabsClientTest, SipTrunkPath) {
  Serve();
  auto& client = Client();
  boost::json::object call = kCall;
  call["agent_phone_number_id"] = "phnum_sim_sip";
  const auto result =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(true, call, done); });
  EXPECT_TRUE(Value(result).contains("sip_call_id"));
  EXPECT_EQ(Journal("/v1/convai/sip-trunk/outbound-call").size(), 1u);
}

TEST_F(ElevenLabsClientTest, ValidationErrorIsNotRetriedAndKeepsFieldErrors) {
  Serve();
  auto& client = Client();
  boost::json::object call = kCall;
  call.erase("to_number");
  const auto error =
      Error(Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, call, done); }));
  EXPECT_EQ(error.upstream_status, 422);
  ASSERT_FALSE(error.field_errors.empty());
  EXPECT_NE(error.message.find("to_number"), std::string::npos) << error.message;
  EXPECT_EQ(Journal(kTwilioPath).size(), 1u);
}

TEST_F(ElevenLabsClientTest, WrongKeyIsAnAuthError) {
  Serve();
  auto& client = Client({.api_key = "sk_wrong"});
  const auto error =
      Error(Wait<std::vector<PhoneNumber>>([&](auto done) { client.ListPhoneNumbers(done); }));
  EXPECT_EQ(error.upstream_status, 401);
  EXPECT_FALSE(error.message.empty());
  EXPECT_FALSE(error.request_id.empty());
  EXPECT_EQ(ToGatewayResponse(error, "r").status, 502);
}

TEST_F(ElevenLabsClientTest, PhoneNumbersConversationsAudioAndSignedUrl) {
  Serve();
  auto& client = Client();
  const auto numbers =
      Wait<std::vector<PhoneNumber>>([&](auto done) { client.ListPhoneNumbers(done); });
  ASSERT_EQ(Value(numbers).size(), 2u);
  EXPECT_EQ(Value(numbers)[0].phone_number_id, "phnum_sim_twilio");
  EXPECT_EQ(Value(numbers)[1].provider, "sip_trunk");

  const auto placed =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  const std::string id(Value(placed).at("conversation_id").as_string());
  sim_clock_.Advance(40s);
  const auto conversation =
      Wait<boost::json::object>([&](auto done) { client.GetConversation(id, done); });
  EXPECT_EQ(Value(conversation).at("status").as_string(), "done");

  const auto listing =
      Wait<boost::json::object>([&](auto done) { client.ListConversations("page_size=1", done); });
  EXPECT_EQ(Value(listing).at("conversations").as_array().size(), 1u);

  const auto audio = Wait<Audio>([&](auto done) { client.GetConversationAudio(id, done); });
  EXPECT_EQ(Value(audio).content_type, "audio/mpeg");
  auto direct = Fetch(served_->port(), "GET", "/v1/convai/conversations/" + id + "/audio",
                      {{"xi-api-key", kKey}});
  ASSERT_TRUE(direct);
  EXPECT_EQ(Value(audio).bytes, direct->body);

  const auto missing = Error(
      Wait<boost::json::object>([&](auto done) { client.GetConversation("conv_nope", done); }));
  EXPECT_EQ(missing.upstream_status, 404);
  EXPECT_EQ(ToGatewayResponse(missing, "r").status, 404);

  const auto url =
      Wait<std::string>([&](auto done) { client.GetSignedUrl("agent_sim_default", done); });
  EXPECT_TRUE(Value(url).starts_with("ws://")) << Value(url);
  EXPECT_NE(Value(url).find("conversation_signature="), std::string::npos);
}

TEST_F(ElevenLabsClientTest, ConversationDocumentKeepsTheBodyAndParsesIntoAnArena) {
  Serve();
  auto& client = Client();
  const auto placed =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  const std::string id(Value(placed).at("conversation_id").as_string());
  sim_clock_.Advance(40s);

  const auto result =
      Wait<ConversationDocument>([&](auto done) { client.GetConversationDocument(id, done); });
  const ConversationDocument& document = Value(result);
  auto direct =
      Fetch(served_->port(), "GET", "/v1/convai/conversations/" + id, {{"xi-api-key", kKey}});
  ASSERT_TRUE(direct);
  // The body is the upstream's, byte for byte, and the object holds the members the gateway
  // renders, as a full parse gives them.
  EXPECT_EQ(document.body, direct->body);
  const boost::json::value full = boost::json::parse(direct->body);
  EXPECT_EQ(boost::json::value(document.object), callgate::testing::PrunedConversation(full));
  EXPECT_EQ(document.object.at("status").as_string(), "done");
  EXPECT_FALSE(document.object.contains("conversation_initiation_client_data"));
  ASSERT_FALSE(document.object.at("transcript").as_array().empty());
  EXPECT_EQ(document.object.at("analysis"), full.at("analysis")) << "the analysis is whole";
  // Its own arena (a monotonic resource), not the default heap, and not reference-counted: the
  // tree goes without visiting its nodes.
  EXPECT_TRUE(document.object.storage().is_deallocate_trivial());
  ASSERT_NE(document.arena, nullptr);
  EXPECT_EQ(document.object.storage().get(), document.arena.get());
  EXPECT_TRUE(document.object.storage().is_not_shared_and_deallocate_is_trivial());

  // The same conversation as GetConversation.
  const auto plain =
      Wait<boost::json::object>([&](auto done) { client.GetConversation(id, done); });
  EXPECT_EQ(Value(plain), full.as_object());
}

TEST_F(ElevenLabsClientTest, ConversationDocumentErrorsAreThoseOfGetConversation) {
  Serve();
  auto& client = Client();
  const auto missing = Error(Wait<ConversationDocument>(
      [&](auto done) { client.GetConversationDocument("conv_nope", done); }));
  EXPECT_EQ(missing.upstream_status, 404);
  EXPECT_EQ(ToGatewayResponse(missing, "r").status, 404);

  Fault(R"({"route":"GET /v1/convai/conversations/{conversation_id}","count":5,"html":true})");
  const auto html = Error(Wait<ConversationDocument>(
      [&](auto done) { client.GetConversationDocument("conv_html", done); }));
  EXPECT_EQ(ToGatewayResponse(html, "r").status, 502);
}

// What the default ElevenLabsApi::GetConversationDocument (used by fakes) makes of
// GetConversation's answer.
class ObjectOnlyApi final : public ElevenLabsApi {
 public:
  explicit ObjectOnlyApi(ApiResult<boost::json::object> answer) : answer_(std::move(answer)) {}
  void OutboundCall(bool, boost::json::object,
                    std::function<void(ApiResult<boost::json::object>)>) override {}
  void ListPhoneNumbers(std::function<void(ApiResult<std::vector<PhoneNumber>>)>) override {}
  void GetConversation(std::string,
                       std::function<void(ApiResult<boost::json::object>)> done) override {
    done(answer_);
  }
  void ListConversations(std::string,
                         std::function<void(ApiResult<boost::json::object>)>) override {}
  void GetConversationAudio(std::string, std::function<void(ApiResult<Audio>)>) override {}
  void GetSignedUrl(std::string, std::function<void(ApiResult<std::string>)>) override {}

 private:
  ApiResult<boost::json::object> answer_;
};

TEST(ElevenLabsApiDefaults, ConversationDocumentFromGetConversation) {
  const boost::json::object conversation{
      {"conversation_id", "conv_1"}, {"status", "done"}, {"cost", 1.5}, {"transcript", {1, 2}}};
  ObjectOnlyApi api(conversation);
  const auto result =
      Wait<ConversationDocument>([&](auto done) { api.GetConversationDocument("conv_1", done); });
  const ConversationDocument& document = Value(result);
  // Parsed as the client parses: only what the gateway renders (no cost; no turn that is not
  // an object).
  EXPECT_EQ(document.object, (boost::json::object{{"conversation_id", "conv_1"},
                                                  {"status", "done"},
                                                  {"transcript", boost::json::array()}}));
  EXPECT_EQ(document.body, boost::json::serialize(conversation));
  EXPECT_TRUE(document.object.storage().is_deallocate_trivial());

  ApiError error;
  error.kind = ApiError::Kind::kStatus;
  error.upstream_status = 404;
  ObjectOnlyApi failing(error);
  const auto failed = Error(Wait<ConversationDocument>(
      [&](auto done) { failing.GetConversationDocument("conv_1", done); }));
  EXPECT_EQ(failed.upstream_status, 404);
}

TEST_F(ElevenLabsClientTest, GetsAreRetriedOn5xxUntilTheySucceed) {
  Serve();
  auto& client = Client();
  Fault(R"({"route":"GET /v1/convai/phone-numbers","count":2,"status":503})");
  const auto numbers =
      Wait<std::vector<PhoneNumber>>([&](auto done) { client.ListPhoneNumbers(done); });
  EXPECT_EQ(Value(numbers).size(), 2u);
  EXPECT_EQ(Journal("/v1/convai/phone-numbers").size(), 3u);
}

TEST_F(ElevenLabsClientTest, GetsGiveUpAfterThreeAttempts) {
  Serve();
  auto& client = Client();
  Fault(R"({"route":"GET /v1/convai/phone-numbers","count":5,"html":true})");
  const auto error =
      Error(Wait<std::vector<PhoneNumber>>([&](auto done) { client.ListPhoneNumbers(done); }));
  EXPECT_EQ(error.kind, ApiError::Kind::kBadResponse);
  EXPECT_EQ(ToGatewayResponse(error, "r").status, 502);
  EXPECT_EQ(Journal("/v1/convai/phone-numbers").size(), 3u);
}

TEST_F(ElevenLabsClientTest, AnOutboundCallIsNeverRetriedOn5xxOrAfterAReset) {
  Serve();
  auto& client = Client();
  Fault(R"({"route":"POST /v1/convai/twilio/outbound-call","count":1,"status":503})");
  auto error =
      Error(Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); }));
  EXPECT_EQ(error.upstream_status, 503);
  EXPECT_EQ(Journal(kTwilioPath).size(), 1u);

  // The reset comes after the call was placed: retrying would ring the person twice.
  Fault(
      R"({"route":"POST /v1/convai/twilio/outbound-call","count":1,"reset":true,"process_request":true})");
  error =
      Error(Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); }));
  EXPECT_EQ(error.kind, ApiError::Kind::kUnavailable);
  EXPECT_TRUE(error.request_sent);
  EXPECT_EQ(Journal(kTwilioPath).size(), 2u);

  Fault(R"({"route":"POST /v1/convai/twilio/outbound-call","count":1,"truncate":true})");
  error =
      Error(Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); }));
  EXPECT_EQ(error.kind, ApiError::Kind::kBadResponse);
  EXPECT_EQ(Journal(kTwilioPath).size(), 3u);
}

TEST_F(ElevenLabsClientTest, AnOutboundCallIsRetriedAfterA429) {
  Serve();
  auto& client = Client();
  Fault(
      R"({"route":"POST /v1/convai/twilio/outbound-call","count":1,"status":429,"retry_after":0})");
  const auto result =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  EXPECT_TRUE(Value(result).at("success").as_bool());
  const auto journal = Journal(kTwilioPath);
  ASSERT_EQ(journal.size(), 2u);
  EXPECT_EQ(journal[0].at("status").as_int64(), 429);
  EXPECT_EQ(journal[1].at("status").as_int64(), 200);
}

TEST_F(ElevenLabsClientTest, TimeoutIsTheTotalBudget) {
  Serve();
  auto& client = Client({.timeout = 300ms});
  Fault(R"({"route":"GET /v1/convai/phone-numbers","count":1,"latency_ms":3000})");
  const auto error =
      Error(Wait<std::vector<PhoneNumber>>([&](auto done) { client.ListPhoneNumbers(done); }));
  EXPECT_EQ(error.kind, ApiError::Kind::kTimeout);
  EXPECT_EQ(ToGatewayResponse(error, "r").status, 504);
  // (Had the deadline not fired, the delayed answer would have been a success.)
}

TEST_F(ElevenLabsClientTest, UnreachableUpstreamIsRetriedThenReported) {
  Serve();
  auto& client = Client({.base_url = "http://127.0.0.1:1"});
  const auto error =
      Error(Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); }));
  EXPECT_EQ(error.kind, ApiError::Kind::kUnavailable);
  EXPECT_FALSE(error.request_sent);
  EXPECT_EQ(ToGatewayResponse(error, "r").status, 502);
}

TEST_F(ElevenLabsClientTest, OverHttpsWithAConfiguredCaBundle) {
  TempDir dir;
  const auto cert = callgate::testing::MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty());
  Serve({.host = "127.0.0.1",
         .port = 0,
         .tls_cert_file = cert.cert_file,
         .tls_key_file = cert.key_file});
  auto& client = Client({.base_url = "https://localhost:" + std::to_string(served_->port())},
                        {.ca_file = cert.cert_file});
  const auto result =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  EXPECT_TRUE(Value(result).at("success").as_bool());
  const auto url =
      Wait<std::string>([&](auto done) { client.GetSignedUrl("agent_sim_default", done); });
  EXPECT_TRUE(Value(url).starts_with("wss://")) << Value(url);
}

// Pulls a stream to its end on the test thread; nullopt (and a test failure) on an error chunk.
std::optional<std::string> ReadAll(http::BodyStream& body, std::size_t* largest_chunk = nullptr) {
  std::string bytes;
  while (true) {
    std::promise<http::BodyChunk> promise;
    auto future = promise.get_future();
    body.Next([&promise](http::BodyChunk chunk) { promise.set_value(std::move(chunk)); });
    http::BodyChunk chunk = future.get();
    if (chunk.kind == http::BodyChunk::Kind::kEnd) return bytes;
    if (chunk.kind == http::BodyChunk::Kind::kError) {
      ADD_FAILURE() << "stream error: " << chunk.error;
      return std::nullopt;
    }
    if (largest_chunk != nullptr) *largest_chunk = std::max(*largest_chunk, chunk.data.size());
    bytes += chunk.data;
  }
}

TEST_F(ElevenLabsClientTest, AudioCanBeStreamed) {
  Serve();
  auto& client = Client({}, {.stream_chunk_bytes = 8192});
  const auto placed =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  const std::string id(Value(placed).at("conversation_id").as_string());
  sim_clock_.Advance(40s);
  auto direct = Fetch(served_->port(), "GET", "/v1/convai/conversations/" + id + "/audio",
                      {{"xi-api-key", kKey}});
  ASSERT_TRUE(direct && direct->status == 200);

  auto opened = Wait<AudioStream>([&](auto done) { client.OpenConversationAudio(id, done); });
  ASSERT_TRUE(std::holds_alternative<AudioStream>(opened));
  AudioStream& audio = std::get<AudioStream>(opened);
  EXPECT_EQ(audio.content_type, "audio/mpeg");
  ASSERT_TRUE(audio.body);
  EXPECT_EQ(audio.body->Length(), std::optional<std::uint64_t>(direct->body.size()));
  std::size_t largest = 0;
  EXPECT_EQ(ReadAll(*audio.body, &largest), direct->body);
  EXPECT_LE(largest, 8192u);
  EXPECT_GT(direct->body.size(), 8192u);
  const auto journal = Journal("/v1/convai/conversations/" + id + "/audio");
  ASSERT_EQ(journal.size(), 2u);
  EXPECT_EQ(journal[1].at("headers").at("xi-api-key"), "***");
}

TEST_F(ElevenLabsClientTest, StreamedAudioErrorsAreParsedAndRetriedBeforeTheStream) {
  Serve();
  auto& client = Client();
  const auto missing =
      Error(Wait<AudioStream>([&](auto done) { client.OpenConversationAudio("conv_nope", done); }));
  EXPECT_EQ(missing.kind, ApiError::Kind::kStatus);
  EXPECT_EQ(missing.upstream_status, 404);
  EXPECT_EQ(missing.code, "conversation_not_found") << missing.message;
  EXPECT_FALSE(missing.request_id.empty());

  const auto placed =
      Wait<boost::json::object>([&](auto done) { client.OutboundCall(false, kCall, done); });
  const std::string id(Value(placed).at("conversation_id").as_string());
  sim_clock_.Advance(40s);
  const std::string path = "/v1/convai/conversations/" + id + "/audio";
  Fault(R"({"route":"GET /v1/convai/conversations/{conversation_id}/audio","count":2,)"
        R"("status":503})");
  auto opened = Wait<AudioStream>([&](auto done) { client.OpenConversationAudio(id, done); });
  ASSERT_TRUE(std::holds_alternative<AudioStream>(opened)) << Error(opened).message;
  EXPECT_TRUE(ReadAll(*std::get<AudioStream>(opened).body));
  EXPECT_EQ(Journal(path).size(), 3u) << "two 503s retried, then the stream";

  Fault(R"({"route":"GET /v1/convai/conversations/{conversation_id}/audio","count":5,)"
        R"("html":true})");
  const auto html =
      Error(Wait<AudioStream>([&](auto done) { client.OpenConversationAudio(id, done); }));
  EXPECT_EQ(html.kind, ApiError::Kind::kBadResponse);
  EXPECT_EQ(Journal(path).size(), 6u);
}

}  // namespace
}  // namespace callgate::upstream
