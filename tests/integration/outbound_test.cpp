// POST /api/calls/outbound and the call ledger, end to end: `callgate serve` and `callgate sim`
// as separate processes on loopback. The exact upstream requests are read back from the
// simulator's journal, so "no upstream request" and "exactly one upstream request" are facts,
// not assumptions.
#include "integration/gateway.hpp"
#include "integration/sim_process.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <csignal>
#include <thread>

namespace callgate::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kGatewayKey[] = "gw_key_outbound_test_7c2e91";
constexpr char kTwilio[] = "/v1/convai/twilio/outbound-call";
constexpr char kSip[] = "/v1/convai/sip-trunk/outbound-call";
constexpr char kSeedBody[] =
    R"({"to_number": "+15551234567", "prompt": "Get parking ticket dismissed. Reference #12345 due to unclear signage."})";

boost::json::value Json(const std::string& text) {
  return boost::json::parse(text);
}

Env GatewayEnv(const SimProcess& sim, Env extra = {}) {
  Env env{{"ELEVENLABS_BASE_URL", "http://127.0.0.1:" + std::to_string(sim.port())},
          {"ELEVENLABS_API_KEY", sim.api_key()},
          {"ELEVENLABS_AGENT_ID", "agent_sim_default"},
          {"ELEVENLABS_AGENT_PHONE_NUMBER_ID", "phnum_sim_twilio"},
          {"API_KEYS", kGatewayKey},
          {"UPSTREAM_TIMEOUT_MS", "3000"}};
  for (auto& [name, value] : extra)
    env[name] = value;
  return env;
}

std::optional<HttpResponse> Post(std::uint16_t port, const std::string& body,
                                 std::vector<std::pair<std::string, std::string>> headers = {}) {
  headers.emplace_back("X-API-Key", kGatewayKey);
  headers.emplace_back("Content-Type", "application/json");
  return Fetch(port, "POST", "/api/calls/outbound", headers, body);
}

std::optional<HttpResponse> Get(std::uint16_t port, const std::string& target) {
  return Fetch(port, "GET", target, {{"X-API-Key", kGatewayKey}});
}

// The simulator's journal for `path`; over TLS when `ca_file` is given. Fails the test when it
// cannot be read, so that "empty" always means "no request".
boost::json::array Journal(const SimProcess& sim, const std::string& path,
                           const std::string& ca_file = "") {
  std::optional<HttpResponse> response;
  if (ca_file.empty()) {
    response = Fetch(sim.port(), "GET", "/_sim/requests?path=" + path);
  } else {
    TcpConnection connection(sim.port(), TlsClientOptions{.ca_file = ca_file});
    if (connection.connected() &&
        connection.Send(BuildRequest("GET", "/_sim/requests?path=" + path))) {
      response = connection.Read();
    }
  }
  EXPECT_TRUE(response && response->status == 200) << "the journal could not be read";
  if (!response || response->status != 200) return {};
  return Json(response->body).at("requests").as_array();
}

void AddFault(const SimProcess& sim, const std::string& json) {
  auto response = Fetch(sim.port(), "POST", "/_sim/faults", {}, json);
  ASSERT_TRUE(response && response->status == 200) << (response ? response->body : "no answer");
}

std::string ErrorCode(const HttpResponse& response) {
  const auto body = Json(response.body);
  return std::string(body.at("error").at("code").as_string());
}

class OutboundTest : public ::testing::Test {
 protected:
  // Calls end quickly: 28 simulated seconds at x100.
  SimProcess sim_{{"--time-scale", "100"}};
};

TEST_F(OutboundTest, PlacesTheSeedsCallAndTheLedgerReachesDoneWithoutAWebhook) {
  ASSERT_TRUE(sim_.started()) << sim_.Output();
  Gateway gateway(GatewayEnv(sim_));
  ASSERT_TRUE(gateway.started()) << gateway.Output();

  auto response = Post(gateway.port(), kSeedBody);
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const auto answer = Json(response->body);
  EXPECT_TRUE(answer.at("success").as_bool());
  EXPECT_FALSE(answer.at("message").as_string().empty());
  const std::string conversation_id(answer.at("conversation_id").as_string());
  EXPECT_TRUE(answer.at("callSid").as_string().starts_with("CA"));
  const std::string call_id(answer.at("call_id").as_string());
  EXPECT_EQ(answer.at("status").as_string(), "initiated");

  // Exactly the upstream request the original service sent, with the key.
  const auto journal = Journal(sim_, kTwilio);
  ASSERT_EQ(journal.size(), 1u);
  const auto sent = Json(std::string(journal[0].at("body").as_string()));
  EXPECT_EQ(sent.at("agent_id").as_string(), "agent_sim_default");
  EXPECT_EQ(sent.at("agent_phone_number_id").as_string(), "phnum_sim_twilio");
  EXPECT_EQ(sent.at("to_number").as_string(), "+15551234567");
  EXPECT_EQ(sent.at("conversation_initiation_client_data")
                .at("dynamic_variables")
                .at("purpose")
                .as_string(),
            "Get parking ticket dismissed. Reference #12345 due to unclear signage.");
  EXPECT_TRUE(journal[0].at("headers").as_object().contains("xi-api-key"));
  EXPECT_EQ(journal[0].at("status").as_int64(), 200);

  // The ledger has it, and the background refresher takes it to done with its transcript.
  auto call = Get(gateway.port(), "/api/calls/" + call_id);
  ASSERT_TRUE(call && call->status == 200) << (call ? call->body : "");
  EXPECT_EQ(Json(call->body).at("conversation_id").as_string(), conversation_id);
  ASSERT_TRUE(WaitFor(
      [&] {
        auto c = Get(gateway.port(), "/api/calls/" + call_id);
        return c && c->status == 200 && Json(c->body).at("status").as_string() == "done";
      },
      30s))
      << gateway.Output();
  call = Get(gateway.port(), "/api/calls/" + call_id);
  const auto record = Json(call->body);
  EXPECT_FALSE(record.at("transcript").as_array().empty());
  EXPECT_TRUE(record.at("analysis").is_object());
  EXPECT_GT(record.at("duration_secs").as_int64(), 0);

  auto listing = Get(gateway.port(), "/api/calls?status=done");
  ASSERT_TRUE(listing && listing->status == 200);
  EXPECT_EQ(Json(listing->body).at("calls").as_array().size(), 1u);
}

TEST_F(OutboundTest, InvalidRequestsNeverReachTheUpstream) {
  ASSERT_TRUE(sim_.started());
  Gateway gateway(GatewayEnv(sim_));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"({"prompt":"hi"})", "to_number"},
      {R"({"to_number":"5551234567","prompt":"hi"})", "to_number"},
      {R"({"to_number":"+0123","prompt":"hi"})", "to_number"},
      {R"({"to_number":"+1555123456789012","prompt":"hi"})", "to_number"},
      {R"({"to_number":15551234567,"prompt":"hi"})", "to_number"},
      {R"({"to_number":"+15551234567"})", "prompt"},
      {R"({"to_number":"+15551234567","prompt":"   "})", "prompt"},
      {R"({"to_number":"+15551234567","prompt":")" + std::string(5000, 'x') + R"("})", "prompt"},
      {R"({"to_number":"+15551234567","prompt":"hi","dynamic_variables":[1]})",
       "dynamic_variables"},
      {R"({"to_number":"+15551234567","prompt":"hi","dynamic_variables":{"a":{"b":1}}})",
       "dynamic_variables"},
      {R"({"to_number":"+15551234567","prompt":"hi","dynamic_variables":{"system__x":"1"}})",
       "dynamic_variables"},
      {R"({"to_number":"+15551234567","prompt":"hi","ringing_timeout_secs":0})",
       "ringing_timeout_secs"},
      {R"({"to_number":"+15551234567","prompt":"hi","language":"x"})", "language"},
      {R"({"to_number":"+15551234567","prompt":"hi","metadata":"x"})", "metadata"},
      {R"({"to_number":"+15551234567","prompt":"hi","promt":"typo"})", "promt"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.body.substr(0, 120));
    auto response = Post(gateway.port(), c.body);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 400) << response->body;
    EXPECT_EQ(ErrorCode(*response), "invalid_request");
    EXPECT_EQ(Json(response->body).at("error").at("details").at("field").as_string(), c.field);
  }
  // Malformed JSON: the position is reported (the foundation's 400, now on a real route).
  auto malformed = Post(gateway.port(), R"({"to_number": "+15551234567", "prompt": )");
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->status, 400);
  EXPECT_EQ(ErrorCode(*malformed), "invalid_json");
  EXPECT_TRUE(Json(malformed->body).at("error").at("details").as_object().contains("line"));
  // Wrong content type: 415.
  auto form =
      Fetch(gateway.port(), "POST", "/api/calls/outbound",
            {{"X-API-Key", kGatewayKey}, {"Content-Type", "application/x-www-form-urlencoded"}},
            "to_number=%2B15551234567&prompt=hi");
  ASSERT_TRUE(form);
  EXPECT_EQ(form->status, 415);
  // No key, a wrong key: 401, nothing dialed.
  auto anonymous = Fetch(gateway.port(), "POST", "/api/calls/outbound",
                         {{"Content-Type", "application/json"}}, kSeedBody);
  ASSERT_TRUE(anonymous);
  EXPECT_EQ(anonymous->status, 401);
  auto wrong =
      Fetch(gateway.port(), "POST", "/api/calls/outbound",
            {{"X-API-Key", "not-the-key"}, {"Content-Type", "application/json"}}, kSeedBody);
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 401);
  // Oversized: 413.
  auto huge = Post(gateway.port(), R"({"to_number":"+15551234567","prompt":")" +
                                       std::string(200'000, 'y') + R"("})");
  ASSERT_TRUE(huge);
  EXPECT_EQ(huge->status, 413);

  EXPECT_TRUE(Journal(sim_, kTwilio).empty()) << "no upstream request for invalid input";
  auto calls = Get(gateway.port(), "/api/calls");
  ASSERT_TRUE(calls && calls->status == 200);
  EXPECT_TRUE(Json(calls->body).at("calls").as_array().empty());
}

TEST_F(OutboundTest, OptionalFieldsReachTheUpstreamAndMetadataStaysHome) {
  ASSERT_TRUE(sim_.started());
  Gateway gateway(GatewayEnv(sim_));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  auto response =
      Post(gateway.port(),
           R"({"to_number":"+15551234567","prompt":"Book a table",)"
           R"("dynamic_variables":{"customer_name":"Ada","purpose":"overridden","vip":true},)"
           R"("first_message":"Hello {{customer_name}}","language":"en",)"
           R"("ringing_timeout_secs":45,"call_recording_enabled":true,)"
           R"("metadata":{"crm_id":"42"}})");
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const auto journal = Journal(sim_, kTwilio);
  ASSERT_EQ(journal.size(), 1u);
  const auto sent = Json(std::string(journal[0].at("body").as_string())).as_object();
  const auto& data = sent.at("conversation_initiation_client_data");
  EXPECT_EQ(data.at("dynamic_variables").at("purpose").as_string(), "Book a table")
      << "prompt wins over a purpose variable";
  EXPECT_EQ(data.at("dynamic_variables").at("customer_name").as_string(), "Ada");
  EXPECT_TRUE(data.at("dynamic_variables").at("vip").as_bool());
  EXPECT_EQ(data.at("conversation_config_override").at("agent").at("first_message").as_string(),
            "Hello {{customer_name}}");
  EXPECT_EQ(sent.at("telephony_call_config").at("ringing_timeout_secs").as_int64(), 45);
  EXPECT_TRUE(sent.at("call_recording_enabled").as_bool());
  EXPECT_FALSE(sent.contains("metadata"));
  const std::string call_id(Json(response->body).at("call_id").as_string());
  auto call = Get(gateway.port(), "/api/calls/" + call_id);
  ASSERT_TRUE(call && call->status == 200);
  EXPECT_EQ(Json(call->body).at("options").at("metadata").at("crm_id").as_string(), "42");
}

TEST_F(OutboundTest, ConcurrentDuplicatesWithOneIdempotencyKeyDialOnce) {
  ASSERT_TRUE(sim_.started());
  Gateway gateway(GatewayEnv(sim_));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  // Slow the upstream down so that the duplicates really overlap the first request.
  AddFault(sim_, R"({"route":"POST /v1/convai/twilio/outbound-call","count":1,"latency_ms":300})");
  constexpr int kDuplicates = 8;
  std::vector<std::optional<HttpResponse>> responses(kDuplicates);
  std::vector<std::thread> threads;
  for (int i = 0; i < kDuplicates; ++i) {
    threads.emplace_back([&, i] {
      responses[static_cast<std::size_t>(i)] =
          Post(gateway.port(), kSeedBody, {{"Idempotency-Key", "order-7781"}});
    });
  }
  for (auto& thread : threads)
    thread.join();
  std::string conversation_id;
  int replayed = 0;
  for (const auto& response : responses) {
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    const std::string id(Json(response->body).at("conversation_id").as_string());
    if (conversation_id.empty()) conversation_id = id;
    EXPECT_EQ(id, conversation_id) << "every duplicate gets the first answer";
    if (response->Header("idempotent-replayed") == "true") ++replayed;
  }
  EXPECT_EQ(replayed, kDuplicates - 1);
  EXPECT_EQ(Journal(sim_, kTwilio).size(), 1u) << "exactly one upstream call";

  // The same key with another body: 409, still one call.
  auto other = Post(gateway.port(), R"({"to_number":"+15559876543","prompt":"other"})",
                    {{"Idempotency-Key", "order-7781"}});
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 409);
  EXPECT_EQ(ErrorCode(*other), "idempotency_key_reused");
  EXPECT_EQ(Journal(sim_, kTwilio).size(), 1u);
}

TEST_F(OutboundTest, UpstreamFailuresBecomeClearAnswersAndAreNeverRetriedUnsafely) {
  ASSERT_TRUE(sim_.started());
  Gateway gateway(GatewayEnv(sim_, {{"UPSTREAM_TIMEOUT_MS", "800"}}));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  std::size_t expected_upstream = 0;
  auto expect = [&](const std::string& fault, int status, const std::string& code,
                    std::size_t upstream_requests) {
    SCOPED_TRACE(fault);
    if (!fault.empty()) AddFault(sim_, fault);
    auto response = Post(gateway.port(), kSeedBody);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, status) << response->body;
    EXPECT_EQ(ErrorCode(*response), code);
    const auto body = Json(response->body);
    EXPECT_TRUE(body.at("error").at("details").as_object().contains("call_id"))
        << "the failed call is in the ledger";
    expected_upstream += upstream_requests;
    EXPECT_EQ(Journal(sim_, kTwilio).size(), expected_upstream);
  };
  const std::string route = R"("route":"POST /v1/convai/twilio/outbound-call","count":1)";
  expect("{" + route + R"(,"status":503})", 502, "upstream_error", 1);
  expect("{" + route + R"(,"status":500,"process_request":true})", 502, "upstream_error", 1);
  expect("{" + route + R"(,"html":true})", 502, "upstream_bad_response", 1);
  expect("{" + route + R"(,"truncate":true})", 502, "upstream_bad_response", 1);
  expect("{" + route + R"(,"reset":true,"process_request":true})", 502, "upstream_unavailable", 1);

  // A 429 is the one status worth retrying: the API refused before acting.
  AddFault(sim_, "{" + route + R"(,"status":429,"retry_after":0})");
  auto retried = Post(gateway.port(), kSeedBody);
  ASSERT_TRUE(retried);
  EXPECT_EQ(retried->status, 200) << retried->body;
  expected_upstream += 2;
  EXPECT_EQ(Journal(sim_, kTwilio).size(), expected_upstream);

  // Still 429 after the retries: the client sees 429 with Retry-After.
  AddFault(
      sim_,
      R"({"route":"POST /v1/convai/twilio/outbound-call","count":3,"status":429,"retry_after":0})");
  auto limited = Post(gateway.port(), kSeedBody);
  ASSERT_TRUE(limited);
  EXPECT_EQ(limited->status, 429);
  EXPECT_EQ(ErrorCode(*limited), "upstream_rate_limited");
  EXPECT_FALSE(limited->Header("retry-after").empty());

  expected_upstream += 3;
  ASSERT_EQ(Journal(sim_, kTwilio).size(), expected_upstream);

  // An upstream slower than UPSTREAM_TIMEOUT_MS: 504. The simulator journals the request when it
  // finally answers, 3 s later.
  AddFault(sim_, "{" + route + R"(,"latency_ms":3000})");
  auto slow = Post(gateway.port(), kSeedBody);
  ASSERT_TRUE(slow);
  EXPECT_EQ(slow->status, 504) << slow->body;
  EXPECT_EQ(ErrorCode(*slow), "upstream_timeout");
  EXPECT_TRUE(WaitFor([&] { return Journal(sim_, kTwilio).size() == expected_upstream + 1; }, 10s));

  // The failed calls are in the ledger, marked failed with the reason.
  auto failed = Get(gateway.port(), "/api/calls?status=failed&limit=100");
  ASSERT_TRUE(failed && failed->status == 200);
  const auto failed_json = Json(failed->body);
  EXPECT_EQ(failed_json.at("calls").as_array().size(), 7u);
}

TEST_F(OutboundTest, WrongUpstreamKeyAndUnreachableUpstream) {
  ASSERT_TRUE(sim_.started());
  {
    Gateway gateway(GatewayEnv(sim_, {{"ELEVENLABS_API_KEY", "sk_wrong"}}));
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    auto response = Post(gateway.port(), kSeedBody);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 502);
    EXPECT_EQ(ErrorCode(*response), "upstream_auth_failed");
    EXPECT_NE(response->body.find("ELEVENLABS_API_KEY"), std::string::npos) << response->body;
    EXPECT_EQ(gateway.Output().find("sk_wrong"), std::string::npos) << "never log a secret";
  }
  Gateway gateway(GatewayEnv(sim_, {{"ELEVENLABS_BASE_URL", "http://127.0.0.1:1"}}));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  auto response = Post(gateway.port(), kSeedBody, {{"Idempotency-Key", "k-unreachable"}});
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_EQ(ErrorCode(*response), "upstream_unavailable");
  // Never sent, so the key was released: the same request may be tried again (and fails again
  // the same way, rather than replaying).
  auto again = Post(gateway.port(), kSeedBody, {{"Idempotency-Key", "k-unreachable"}});
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 502);
  EXPECT_TRUE(again->Header("idempotent-replayed").empty());
}

TEST_F(OutboundTest, FromNumberIsResolvedAndSipNumbersUseTheSipEndpoint) {
  ASSERT_TRUE(sim_.started());
  {
    Gateway gateway(GatewayEnv(sim_, {{"ELEVENLABS_AGENT_PHONE_NUMBER_ID", ""},
                                      {"ELEVENLABS_FROM_NUMBER", "+15550100001"}}));
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    auto response = Post(gateway.port(), kSeedBody);
    ASSERT_TRUE(response);
    ASSERT_EQ(response->status, 200) << response->body;
    EXPECT_TRUE(Json(response->body).as_object().contains("sip_call_id"));
    const auto journal = Journal(sim_, kSip);
    ASSERT_EQ(journal.size(), 1u);
    EXPECT_EQ(Json(std::string(journal[0].at("body").as_string()))
                  .at("agent_phone_number_id")
                  .as_string(),
              "phnum_sim_sip");
    // Cached: a second call lists the numbers no more.
    ASSERT_EQ(Post(gateway.port(), kSeedBody)->status, 200);
    EXPECT_EQ(Journal(sim_, "/v1/convai/phone-numbers").size(), 1u);
  }
  Gateway gateway(GatewayEnv(sim_, {{"ELEVENLABS_AGENT_PHONE_NUMBER_ID", ""},
                                    {"ELEVENLABS_FROM_NUMBER", "+15559990000"}}));
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  auto response = Post(gateway.port(), kSeedBody);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 503);
  EXPECT_EQ(ErrorCode(*response), "from_number_not_on_account");
  EXPECT_NE(response->body.find("+15550100000"), std::string::npos)
      << "lists the account's numbers";
  EXPECT_EQ(Journal(sim_, kTwilio).size(), 0u);
}

TEST_F(OutboundTest, TheLedgerAndIdempotencyKeysSurviveARestart) {
  ASSERT_TRUE(sim_.started());
  TempDir data;
  const Env env =
      GatewayEnv(sim_, {{"DATABASE_URL", "sqlite:" + (data.path() / "callgate.db").string()}});
  std::string call_id, first_body;
  {
    Gateway gateway(env);
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    auto response = Post(gateway.port(), kSeedBody, {{"Idempotency-Key", "restart-1"}});
    ASSERT_TRUE(response && response->status == 200);
    call_id = std::string(Json(response->body).at("call_id").as_string());
    first_body = response->body;
    gateway.process().Signal(SIGTERM);
    EXPECT_EQ(gateway.process().WaitExit(20s), 0);
  }
  Gateway gateway(env);
  ASSERT_TRUE(gateway.started()) << gateway.Output();
  auto call = Get(gateway.port(), "/api/calls/" + call_id);
  ASSERT_TRUE(call);
  EXPECT_EQ(call->status, 200);
  auto replay = Post(gateway.port(), kSeedBody, {{"Idempotency-Key", "restart-1"}});
  ASSERT_TRUE(replay);
  EXPECT_EQ(replay->status, 200);
  EXPECT_EQ(replay->body, first_body);
  EXPECT_EQ(replay->Header("idempotent-replayed"), "true");
  EXPECT_EQ(Journal(sim_, kTwilio).size(), 1u);
}

TEST(OutboundHttps, TheUpstreamOverVerifiedTls) {
  TempDir dir;
  const auto cert = MakeTestCertificate(dir.path().string());
  ASSERT_FALSE(cert.cert_file.empty());
  SimProcess sim({"--tls-cert", cert.cert_file, "--tls-key", cert.key_file});
  ASSERT_TRUE(sim.started()) << sim.Output();
  {
    Gateway gateway(
        GatewayEnv(sim, {{"ELEVENLABS_BASE_URL", "https://localhost:" + std::to_string(sim.port())},
                         {"ELEVENLABS_CA_FILE", cert.cert_file}}));
    ASSERT_TRUE(gateway.started()) << gateway.Output();
    auto response = Post(gateway.port(), kSeedBody);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->status, 200) << response->body;
  }
  // Without the CA bundle the certificate is refused and nothing is sent.
  Gateway untrusting(GatewayEnv(
      sim, {{"ELEVENLABS_BASE_URL", "https://localhost:" + std::to_string(sim.port())}}));
  ASSERT_TRUE(untrusting.started()) << untrusting.Output();
  auto response = Post(untrusting.port(), kSeedBody);
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 502);
  EXPECT_EQ(ErrorCode(*response), "upstream_unavailable");
  EXPECT_NE(response->body.find("certificate"), std::string::npos) << response->body;
  EXPECT_EQ(Journal(sim, kTwilio, cert.cert_file).size(), 1u) << "only the trusted gateway's call";
}

}  // namespace
}  // namespace callgate::testing
