// The read routes (phone numbers, conversations, signed URLs), the lifecycle as seen through
// the API, paging and filters, and the framework errors, with conformance checks of every
// success shape against elevenlabs-api.md.
#include "shape.hpp"
#include "sim_harness.hpp"

#include <set>

namespace callgate::sim::testing {
namespace {

using boost::json::parse;
using namespace std::chrono_literals;

const std::vector<FieldShape> kConversationShape = {
    {"agent_id", "string"},
    {"agent_name", "string|null", false},
    {"conversation_id", "regex:conv_[0-9a-z]{28}"},
    {"status", "enum:initiated,in-progress,processing,done,failed"},
    {"user_id", "string|null", false},
    {"transcript", "array"},
    {"metadata", "object"},
    {"analysis", "object|null", false},
    {"conversation_initiation_client_data", "object", false},
    {"has_audio", "bool"},
    {"has_user_audio", "bool"},
    {"has_response_audio", "bool"},
    {"has_auxiliary_audio", "bool"},
};
const std::vector<FieldShape> kMetadataShape = {
    {"start_time_unix_secs", "int"},
    {"call_duration_secs", "int"},
    {"accepted_time_unix_secs", "int|null", false},
    {"cost", "int", false},
    {"termination_reason", "string"},
    {"main_language", "string|null", false},
    {"phone_call", "object"},
};
const std::vector<FieldShape> kTwilioCallShape = {
    {"type", "enum:twilio"},
    {"direction", "enum:inbound,outbound"},
    {"phone_number_id", "string"},
    {"agent_number", "string"},
    {"external_number", "string"},
    {"stream_sid", "string|null"},
    {"call_sid", "regex:CA[0-9a-f]{32}"},
};
const std::vector<FieldShape> kSipCallShape = {
    {"type", "enum:sip_trunking"}, {"direction", "enum:inbound,outbound"},
    {"phone_number_id", "string"}, {"agent_number", "string"},
    {"external_number", "string"}, {"call_sid", "string"},
};
const std::vector<FieldShape> kTurnShape = {
    {"role", "enum:user,agent"},           {"time_in_call_secs", "int"},
    {"message", "string|null", false},     {"tool_calls", "array|null", false},
    {"tool_results", "array|null", false}, {"feedback", "object|null", false},
    {"interrupted", "bool", false},
};
const std::vector<FieldShape> kAnalysisShape = {
    {"call_successful", "enum:success,failure,unknown"},
    {"transcript_summary", "string"},
    {"evaluation_criteria_results", "object", false},
    {"data_collection_results", "object", false},
    {"call_summary_title", "string|null", false},
};
const std::vector<FieldShape> kSummaryShape = {
    {"agent_id", "string"},
    {"conversation_id", "regex:conv_[0-9a-z]{28}"},
    {"start_time_unix_secs", "int"},
    {"call_duration_secs", "int"},
    {"message_count", "int"},
    {"status", "enum:initiated,in-progress,processing,done,failed"},
    {"call_successful", "enum:success,failure,unknown"},
    {"agent_name", "string|null", false},
    {"transcript_summary", "string|null", false},
    {"call_summary_title", "string|null", false},
    {"direction", "enum:inbound,outbound|null", false},
    {"termination_reason", "string|null", false},
};

::testing::AssertionResult ConformsToConversation(const boost::json::value& body) {
  if (auto r = HasShape(body, kConversationShape); !r) return r;
  const auto& metadata = body.at("metadata");
  if (auto r = HasShape(metadata, kMetadataShape); !r) return r;
  const auto& phone_call = metadata.at("phone_call");
  const bool twilio = phone_call.at("type") == "twilio";
  if (auto r = HasShape(phone_call, twilio ? kTwilioCallShape : kSipCallShape); !r) return r;
  for (const auto& turn : body.at("transcript").as_array()) {
    if (auto r = HasShape(turn, kTurnShape); !r) return r;
  }
  if (!body.at("analysis").is_null()) {
    if (auto r = HasShape(body.at("analysis"), kAnalysisShape); !r) return r;
  }
  return ::testing::AssertionSuccess();
}

std::string NewConversation(SimHarness& sim, const std::string& to = "+15551234567",
                            const std::string& agent = "agent_sim_default") {
  const Reply reply = sim.Api(
      "POST", "/v1/convai/twilio/outbound-call",
      R"({"agent_id":")" + agent + R"(","agent_phone_number_id":"phnum_sim_twilio","to_number":")" +
          to +
          R"(","conversation_initiation_client_data":{"dynamic_variables":{"purpose":"your order"}}})");
  EXPECT_EQ(reply.status, 200) << reply.body;
  return Str(reply.Json().at("conversation_id"));
}

boost::json::value GetConversation(SimHarness& sim, const std::string& id) {
  const Reply reply = sim.Api("GET", "/v1/convai/conversations/" + id);
  EXPECT_EQ(reply.status, 200) << reply.body;
  EXPECT_FALSE(reply.Header("x-trace-id").empty());
  return reply.Json();
}

TEST(PhoneNumbersTest, ListIsABareArrayOfBothProviders) {
  SimHarness sim;
  const Reply reply = sim.Api("GET", "/v1/convai/phone-numbers");
  ASSERT_EQ(reply.status, 200);
  const auto body = reply.Json();
  ASSERT_TRUE(body.is_array());
  ASSERT_EQ(body.as_array().size(), 2u);
  const auto& twilio = body.at(0);
  EXPECT_TRUE(HasShape(twilio, {{"provider", "enum:twilio"},
                                {"phone_number", "regex:\\+[1-9][0-9]{6,14}"},
                                {"label", "string"},
                                {"phone_number_id", "string"},
                                {"supports_inbound", "bool"},
                                {"supports_outbound", "bool"},
                                {"assigned_agent", "object|null"}}));
  EXPECT_EQ(twilio.at("phone_number_id"), "phnum_sim_twilio");
  EXPECT_EQ(twilio.at("phone_number"), "+15550100000");
  EXPECT_EQ(twilio.at("label"), "Simulator Twilio line");
  EXPECT_TRUE(HasShape(twilio.at("assigned_agent"),
                       {{"agent_id", "enum:agent_sim_default"}, {"agent_name", "string"}}));
  const auto& sip = body.at(1);
  EXPECT_TRUE(HasShape(sip, {{"provider", "enum:sip_trunk"},
                             {"phone_number", "string"},
                             {"label", "string"},
                             {"phone_number_id", "enum:phnum_sim_sip"},
                             {"livekit_stack", "enum:standard,static"},
                             {"outbound_trunk", "object|null", false},
                             {"inbound_trunk", "object|null", false},
                             {"assigned_agent", "null"}}));
  EXPECT_EQ(sip.at("phone_number"), "+15550100001");
}

TEST(PhoneNumbersTest, FiltersAndLookup) {
  SimHarness sim;
  auto body = sim.Api("GET", "/v1/convai/phone-numbers?provider=sip_trunk").Json();
  ASSERT_EQ(body.as_array().size(), 1u);
  EXPECT_EQ(body.at(0).at("phone_number_id"), "phnum_sim_sip");
  body = sim.Api("GET", "/v1/convai/phone-numbers?agent_id=agent_sim_default").Json();
  ASSERT_EQ(body.as_array().size(), 1u);
  EXPECT_EQ(body.at(0).at("phone_number_id"), "phnum_sim_twilio");
  EXPECT_TRUE(sim.Api("GET", "/v1/convai/phone-numbers?provider=exotel").Json().as_array().empty());

  const Reply bad = sim.Api("GET", "/v1/convai/phone-numbers?provider=vonage");
  EXPECT_EQ(bad.status, 422);
  EXPECT_EQ(bad.Json(), parse(R"({"detail":[{"type":"enum","loc":["query","provider"],
    "msg":"Input should be 'twilio', 'sip_trunk' or 'exotel'","input":"vonage",
    "ctx":{"expected":"'twilio', 'sip_trunk' or 'exotel'"}}]})"));

  Reply one = sim.Api("GET", "/v1/convai/phone-numbers/phnum_sim_sip");
  ASSERT_EQ(one.status, 200);
  EXPECT_EQ(one.Json().at("provider"), "sip_trunk");
  one = sim.Api("GET", "/v1/convai/phone-numbers/phnum_missing");
  ASSERT_EQ(one.status, 404);
  EXPECT_EQ(one.Json().at("detail").at("code"), "phone_number_not_found");
  EXPECT_EQ(Str(one.Json().at("detail").at("request_id")), one.Header("x-trace-id"));

  EXPECT_EQ(sim.Must("GET", "/v1/convai/phone-numbers").status, 401);
  EXPECT_EQ(sim.Must("GET", "/v1/convai/phone-numbers/phnum_sim_sip").status, 401);
}

TEST(ConversationTest, LifecycleThroughTheApiConformsAtEveryStage) {
  SimHarness sim;
  const auto start = sim.clock.NowUnixSeconds();
  const std::string id = NewConversation(sim);

  auto body = GetConversation(sim, id);
  EXPECT_TRUE(ConformsToConversation(body));
  EXPECT_EQ(body.at("status"), "initiated");
  EXPECT_TRUE(body.at("transcript").as_array().empty());
  EXPECT_TRUE(body.at("analysis").is_null());
  EXPECT_EQ(body.at("has_audio"), false);
  EXPECT_EQ(body.at("metadata").at("start_time_unix_secs"), start);
  EXPECT_EQ(body.at("metadata").at("phone_call").at("external_number"), "+15551234567");
  EXPECT_EQ(body.at("metadata").at("phone_call").at("agent_number"), "+15550100000");
  EXPECT_EQ(body.at("metadata").at("phone_call").at("phone_number_id"), "phnum_sim_twilio");
  EXPECT_EQ(body.at("metadata").at("phone_call").at("direction"), "outbound");

  sim.clock.Advance(3s);
  body = GetConversation(sim, id);
  EXPECT_TRUE(ConformsToConversation(body));
  EXPECT_EQ(body.at("status"), "in-progress");
  ASSERT_EQ(body.at("transcript").as_array().size(), 1u);
  EXPECT_EQ(body.at("transcript").at(0).at("message"), "Hello! I'm calling about your order.");

  sim.clock.Advance(20s);
  body = GetConversation(sim, id);
  EXPECT_TRUE(ConformsToConversation(body));
  EXPECT_EQ(body.at("status"), "processing");
  EXPECT_EQ(body.at("transcript").as_array().size(), 5u);
  EXPECT_EQ(body.at("metadata").at("call_duration_secs"), 20);

  sim.clock.Advance(5s);
  body = GetConversation(sim, id);
  EXPECT_TRUE(ConformsToConversation(body));
  EXPECT_EQ(body.at("status"), "done");
  EXPECT_EQ(body.at("analysis").at("call_successful"), "success");
  EXPECT_EQ(body.at("has_audio"), true);
  EXPECT_EQ(body.at("has_user_audio"), false);
  EXPECT_EQ(body.at("has_response_audio"), false);
  EXPECT_EQ(body.at("has_auxiliary_audio"), false);
}

TEST(ConversationTest, SipConversationsReportSipTrunking) {
  SimHarness sim;
  const Reply reply = sim.Call("+15551234567",
                               R"("conversation_initiation_client_data":)"
                               R"({"dynamic_variables":{"purpose":"x"}})",
                               "/v1/convai/sip-trunk/outbound-call", "phnum_sim_sip");
  const auto body = GetConversation(sim, Str(reply.Json().at("conversation_id")));
  EXPECT_TRUE(ConformsToConversation(body));
  EXPECT_EQ(body.at("metadata").at("phone_call").at("type"), "sip_trunking");
  EXPECT_EQ(Str(body.at("metadata").at("phone_call").at("call_sid")),
            Str(reply.Json().at("sip_call_id")));
  EXPECT_FALSE(body.at("conversation_initiation_client_data")
                   .at("dynamic_variables")
                   .as_object()
                   .contains("system__call_sid"))
      << "system__call_sid is Twilio only";
}

TEST(ConversationTest, BusyCalleeSetAtRunTime) {
  SimHarness sim;
  const Reply set =
      sim.Must("POST", "/_sim/callees", {}, R"({"number":"+15557770000","behaviour":"busy"})");
  ASSERT_EQ(set.status, 200) << set.body;
  const std::string id = NewConversation(sim, "+15557770000");
  sim.clock.Advance(2s - 1ms);
  EXPECT_EQ(GetConversation(sim, id).at("status"), "initiated");
  sim.clock.Advance(1ms);
  const auto body = GetConversation(sim, id);
  EXPECT_TRUE(ConformsToConversation(body));
  EXPECT_EQ(body.at("status"), "failed");
  EXPECT_EQ(body.at("metadata").at("termination_reason"), "busy");
  EXPECT_EQ(body.at("analysis").at("call_successful"), "failure");
  EXPECT_TRUE(body.at("transcript").as_array().empty());

  EXPECT_EQ(sim.Must("POST", "/_sim/callees", {}, R"({"number":"+1","behaviour":"sleepy"})").status,
            400);
  EXPECT_EQ(sim.Must("GET", "/_sim/callees").Json(),
            parse(R"({"callees":{"+15557770000":"busy"}})"));
}

TEST(ConversationTest, GetAndDeleteUnknownAre404) {
  SimHarness sim;
  Reply reply = sim.Api("GET", "/v1/convai/conversations/conv_nope");
  ASSERT_EQ(reply.status, 404);
  EXPECT_TRUE(HasShape(reply.Json().at("detail"), {{"type", "enum:not_found"},
                                                   {"code", "enum:conversation_not_found"},
                                                   {"message", "string"},
                                                   {"status", "string"},
                                                   {"request_id", "regex:[0-9a-f]{32}"}}));
  EXPECT_EQ(Str(reply.Json().at("detail").at("request_id")), reply.Header("x-trace-id"));

  const std::string id = NewConversation(sim);
  reply = sim.Api("DELETE", "/v1/convai/conversations/" + id);
  ASSERT_EQ(reply.status, 200);
  EXPECT_EQ(reply.Json(), boost::json::object{});
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/" + id).status, 404);
  EXPECT_EQ(sim.Api("DELETE", "/v1/convai/conversations/" + id).status, 404);
  EXPECT_TRUE(
      sim.Api("GET", "/v1/convai/conversations").Json().at("conversations").as_array().empty());
  EXPECT_EQ(sim.Must("DELETE", "/v1/convai/conversations/" + id).status, 401);
}

TEST(ConversationListTest, CursorWalkOverSeventyFive) {
  SimHarness sim;
  std::vector<std::string> created;
  for (int i = 0; i < 75; ++i) {
    created.push_back(NewConversation(sim));
    sim.clock.Advance(1s);
  }
  std::vector<std::string> seen;
  std::vector<std::size_t> sizes;
  std::string target = "/v1/convai/conversations?page_size=30";
  for (int page = 0; page < 5; ++page) {
    const Reply reply = sim.Api("GET", target);
    ASSERT_EQ(reply.status, 200) << reply.body;
    const auto body = reply.Json();
    ASSERT_TRUE(HasShape(
        body, {{"conversations", "array"}, {"next_cursor", "string|null"}, {"has_more", "bool"}}));
    sizes.push_back(body.at("conversations").as_array().size());
    for (const auto& item : body.at("conversations").as_array()) {
      ASSERT_TRUE(HasShape(item, kSummaryShape));
      seen.push_back(Str(item.at("conversation_id")));
    }
    if (!body.at("has_more").as_bool()) {
      EXPECT_TRUE(body.at("next_cursor").is_null());
      break;
    }
    target = "/v1/convai/conversations?page_size=30&cursor=" + Str(body.at("next_cursor"));
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{30, 30, 15}));
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 75u) << "no duplicates";
  EXPECT_EQ(seen, std::vector<std::string>(created.rbegin(), created.rend())) << "newest first";

  // The default page size is 30.
  const auto body = sim.Api("GET", "/v1/convai/conversations").Json();
  EXPECT_EQ(body.at("conversations").as_array().size(), 30u);
  EXPECT_EQ(body.at("has_more"), true);
}

TEST(ConversationListTest, QueryValidation) {
  SimHarness sim;
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations?page_size=0").Json(),
            parse(R"({"detail":[{"type":"greater_than_equal","loc":["query","page_size"],
              "msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]})"));
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations?page_size=101").Json(),
            parse(R"({"detail":[{"type":"less_than_equal","loc":["query","page_size"],
              "msg":"Input should be less than or equal to 100","input":"101","ctx":{"le":100}}]})"));
  const Reply many = sim.Must(
      "GET",
      "/v1/convai/conversations?page_size=ten&call_successful=maybe&call_start_after_unix=x");
  EXPECT_EQ(many.status, 422) << "validation before auth";
  EXPECT_EQ(many.Json(), parse(R"({"detail":[
    {"type":"int_parsing","loc":["query","page_size"],
     "msg":"Input should be a valid integer, unable to parse string as an integer","input":"ten"},
    {"type":"enum","loc":["query","call_successful"],
     "msg":"Input should be 'success', 'failure' or 'unknown'","input":"maybe",
     "ctx":{"expected":"'success', 'failure' or 'unknown'"}},
    {"type":"int_parsing","loc":["query","call_start_after_unix"],
     "msg":"Input should be a valid integer, unable to parse string as an integer","input":"x"}]})"));
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations?page_size=100").status, 200);

  const Reply bad_cursor = sim.Api("GET", "/v1/convai/conversations?cursor=garbage!");
  EXPECT_EQ(bad_cursor.status, 400);
  EXPECT_EQ(bad_cursor.Json().at("detail").at("code"), "invalid_cursor");
  EXPECT_EQ(sim.Must("GET", "/v1/convai/conversations").status, 401);
}

TEST(ConversationListTest, Filters) {
  SimOptions options;
  options.callees["+15550002222"] = CalleeBehaviour::kBusy;
  SimHarness sim(options);
  const auto t0 = sim.clock.NowUnixSeconds();
  const std::string done = NewConversation(sim);
  sim.clock.Advance(10s);
  const std::string busy = NewConversation(sim, "+15550002222");
  sim.clock.Advance(10s);
  const std::string public_agent = NewConversation(sim, "+15551234567", "agent_sim_public");
  sim.clock.Advance(10s);  // done: 30 s old (answered and analysed); busy: failed; last: live

  const auto ids = [&](const std::string& query) {
    const Reply reply = sim.Api("GET", "/v1/convai/conversations?" + query);
    EXPECT_EQ(reply.status, 200) << reply.body;
    std::vector<std::string> out;
    const auto body = reply.Json();
    for (const auto& item : body.at("conversations").as_array()) {
      out.push_back(Str(item.at("conversation_id")));
    }
    return out;
  };
  using Ids = std::vector<std::string>;
  EXPECT_EQ(ids("agent_id=agent_sim_public"), Ids{public_agent});
  EXPECT_EQ(ids("agent_id=agent_sim_default"), (Ids{busy, done}));
  EXPECT_EQ(ids("call_successful=success"), Ids{done});
  EXPECT_EQ(ids("call_successful=failure"), Ids{busy});
  EXPECT_EQ(ids("call_successful=unknown"), Ids{public_agent});
  const auto at = [&](int offset) { return std::to_string(t0 + offset); };
  EXPECT_EQ(ids("call_start_after_unix=" + at(0)), (Ids{public_agent, busy}));
  EXPECT_EQ(ids("call_start_before_unix=" + at(20)), (Ids{busy, done}));
  EXPECT_EQ(ids("call_start_after_unix=" + at(0) + "&call_start_before_unix=" + at(20)), Ids{busy});
  EXPECT_TRUE(ids("agent_id=agent_nope").empty());
}

TEST(SignedUrlTest, ShapeSingleUseAndExpiry) {
  SimHarness sim;
  const Reply reply =
      sim.Api("GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_default");
  ASSERT_EQ(reply.status, 200) << reply.body;
  ASSERT_TRUE(HasShape(reply.Json(), {{"signed_url", "string"}}));
  const std::string url = Str(reply.Json().at("signed_url"));
  const std::string prefix =
      "ws://sim.test:8080/v1/convai/conversation?agent_id=agent_sim_default"
      "&conversation_signature=";
  ASSERT_TRUE(url.starts_with(prefix)) << url;
  const std::string signature = url.substr(prefix.size());
  EXPECT_TRUE(MatchesType(boost::json::string(signature), "regex:[A-Za-z0-9_-]{43}"));

  EXPECT_EQ(sim.simulator->ConsumeSignature("agent_sim_public", signature),
            Simulator::SignatureCheck::kAgentMismatch);
  EXPECT_EQ(sim.simulator->ConsumeSignature("agent_sim_default", "nope"),
            Simulator::SignatureCheck::kUnknown);
  EXPECT_EQ(sim.simulator->ConsumeSignature("agent_sim_default", signature),
            Simulator::SignatureCheck::kOk);
  EXPECT_EQ(sim.simulator->ConsumeSignature("agent_sim_default", signature),
            Simulator::SignatureCheck::kUsed);

  // Valid for 15 minutes inclusive, expired one second later.
  const auto fresh = [&] {
    const std::string u =
        Str(sim.Api("GET", "/v1/convai/conversation/get_signed_url?agent_id=agent_sim_default")
                .Json()
                .at("signed_url"));
    return u.substr(u.find("conversation_signature=") + 23);
  };
  const std::string at_limit = fresh();
  const std::string too_late = fresh();
  sim.clock.Advance(15min);
  EXPECT_EQ(sim.simulator->ConsumeSignature("agent_sim_default", at_limit),
            Simulator::SignatureCheck::kOk);
  sim.clock.Advance(1s);
  EXPECT_EQ(sim.simulator->ConsumeSignature("agent_sim_default", too_late),
            Simulator::SignatureCheck::kExpired);
}

TEST(SignedUrlTest, TlsErrorsAndAlias) {
  SimHarness sim;
  auto reply = sim.Send("GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_public",
                        {{"xi-api-key", kApiKey}}, {}, /*tls=*/true);
  ASSERT_TRUE(reply);
  EXPECT_TRUE(Str(reply->Json().at("signed_url")).starts_with("wss://sim.test:8080/v1/convai/"));

  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversation/get-signed-url").Json(),
            parse(R"({"detail":[{"type":"missing","loc":["query","agent_id"],
                                 "msg":"Field required","input":null}]})"));
  const Reply unknown = sim.Api("GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_x");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(unknown.Json().at("detail").at("code"), "agent_not_found");
  EXPECT_EQ(
      sim.Must("GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_public").status,
      401);
  EXPECT_EQ(
      sim.Api("GET", "/v1/convai/conversation/get_signed_url?agent_id=agent_sim_public").status,
      200);
}

TEST(FrameworkErrorsTest, StarletteShapes) {
  SimHarness sim;
  Reply reply = sim.Api("GET", "/v1/convai/nothing-here");
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(reply.Json(), parse(R"({"detail":"Not Found"})"));
  EXPECT_FALSE(reply.Header("x-trace-id").empty());

  reply = sim.Api("PUT", "/v1/convai/conversations");
  EXPECT_EQ(reply.status, 405);
  EXPECT_EQ(reply.Json(), parse(R"({"detail":"Method Not Allowed"})"));
  EXPECT_EQ(reply.Header("Allow"), "GET, HEAD");

  reply = sim.Must("POST", "/v1/convai/twilio/outbound-call",
                   {{"xi-api-key", kApiKey}, {"Content-Length", "10000000"}});
  EXPECT_EQ(reply.status, 413);
  EXPECT_TRUE(reply.Json().at("detail").is_string());

  EXPECT_EQ(sim.Must("GET", "/_sim/health").Json(), parse(R"({"status":"ok"})"));
}

TEST(ClockControlTest, AdvanceAndRead) {
  SimOptions options;
  options.time_scale = 60;
  SimHarness sim(options);
  const auto before = sim.clock.NowUnixSeconds();
  Reply reply = sim.Must("GET", "/_sim/clock");
  EXPECT_EQ(reply.Json().at("now_unix_secs"), before);
  EXPECT_EQ(reply.Json().at("time_scale"), 60.0);
  reply = sim.Must("POST", "/_sim/clock/advance", {}, R"({"seconds":90})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(sim.clock.NowUnixSeconds(), before + 90);
  EXPECT_EQ(reply.Json().at("now_unix_secs"), before + 90);
  EXPECT_EQ(sim.Must("POST", "/_sim/clock/advance", {}, R"({"seconds":-1})").status, 400);
  EXPECT_EQ(sim.Must("POST", "/_sim/clock/advance", {}, "nope").status, 400);
}

TEST(ClockControlTest, WithoutAnAdvanceFunctionIs409) {
  core::ManualClock clock;
  FakeScheduler scheduler;
  Simulator simulator(SimOptions{.api_key = kApiKey}, clock, scheduler);
  http::Router router;
  simulator.AddRoutes(router);
  http::Dispatcher dispatcher(router, {.render_error = simulator.ErrorRenderer()});
  http::Request request;
  request.method = "POST";
  request.path = request.target = "/_sim/clock/advance";
  request.body = R"({"seconds":5})";
  std::optional<http::Response> out;
  dispatcher.Run(dispatcher.Prepare(request), request,
                 http::Responder([&](http::Response r) { out = std::move(r); }));
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 409);
}

TEST(AuthTest, EveryApiRouteNeedsTheKey) {
  SimHarness sim;
  const std::string id = Str(sim.Call().Json().at("conversation_id"));
  const std::vector<std::pair<std::string, std::string>> routes = {
      {"POST", "/v1/convai/twilio/outbound-call"},
      {"POST", "/v1/convai/sip-trunk/outbound-call"},
      {"GET", "/v1/convai/phone-numbers"},
      {"GET", "/v1/convai/phone-numbers/phnum_sim_twilio"},
      {"GET", "/v1/convai/conversations"},
      {"GET", "/v1/convai/conversations/" + id},
      {"DELETE", "/v1/convai/conversations/" + id},
      {"GET", "/v1/convai/conversation/get-signed-url?agent_id=agent_sim_default"},
      {"GET", "/v1/convai/conversation/get_signed_url?agent_id=agent_sim_default"},
  };
  const std::string body =
      R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_sip",)"
      R"("to_number":"+15551234567"})";
  for (const auto& [method, target] : routes) {
    const std::string with_body = method == "POST" ? body : "";
    for (const auto& [headers, code] : std::vector<std::pair<HeaderList, std::string>>{
             {{}, "unauthorized"},
             {{{"xi-api-key", "sk_wrong"}}, "invalid_api_key"},
             {{{"xi-api-key", std::string(kApiKey) + "x"}}, "invalid_api_key"},
             {{{"Authorization", std::string("Bearer ") + kApiKey}}, "invalid_api_key"}}) {
      const Reply reply = sim.Must(method, target, headers, with_body);
      ASSERT_EQ(reply.status, 401) << method << " " << target << " " << reply.body;
      const auto detail = reply.Json().at("detail");
      EXPECT_TRUE(HasShape(detail, {{"type", "enum:authentication_error"},
                                    {"code", "enum:" + code},
                                    {"message", "string"},
                                    {"status", "enum:needs_authorization,invalid_api_key"},
                                    {"request_id", "regex:[0-9a-f]{32}"}}))
          << method << " " << target;
      EXPECT_EQ(Str(detail.at("request_id")), reply.Header("x-trace-id"));
    }
  }
  // Nothing was deleted by the refused DELETEs.
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/" + id).status, 200);
}

TEST(FrameworkErrorsTest, RendererShapesForServerErrors) {
  SimHarness sim;
  const auto render = sim.simulator->ErrorRenderer();
  for (const int status : {400, 408, 413, 431}) {
    const http::Response response = render(status, "code", "what happened", "req_1", {});
    EXPECT_EQ(response.status, status);
    EXPECT_EQ(parse(response.body), parse(R"({"detail":"what happened"})"));
    EXPECT_EQ(response.headers.Get("x-trace-id")->size(), 32u);
  }
  const http::Response internal = render(500, "internal_error", "details", "req_1", {});
  EXPECT_EQ(internal.status, 500);
  EXPECT_EQ(internal.body, "Internal Server Error");
}

TEST(WebSocketConversationTest, HooksFeedTheRestRoutes) {
  SimHarness sim;
  EXPECT_FALSE(sim.simulator->BeginWebSocketConversation("agent_nope", {}));
  const auto missing = sim.simulator->BeginWebSocketConversation("agent_sim_default", {});
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->missing_variables, std::vector<std::string>{"purpose"});

  const auto start = sim.simulator->BeginWebSocketConversation(
      "agent_sim_default", parse(R"({"type":"conversation_initiation_client_data",
                "dynamic_variables":{"purpose":"the demo"},
                "source_info":{"source":"python_sdk","version":"2.59.0"}})")
                               .as_object());
  ASSERT_TRUE(start);
  EXPECT_EQ(start->first_message, "Hello! I'm calling about the demo.");
  EXPECT_EQ(start->language, "en");
  EXPECT_TRUE(start->missing_variables.empty());
  const std::string& id = start->conversation_id;

  EXPECT_TRUE(sim.simulator->AppendTranscript(id, "agent", start->first_message));
  sim.clock.Advance(4s);
  EXPECT_TRUE(sim.simulator->AppendTranscript(id, "user", "Tell me more."));
  auto body = GetConversation(sim, id);
  EXPECT_TRUE(HasShape(body, kConversationShape));
  EXPECT_EQ(body.at("status"), "in-progress");
  EXPECT_FALSE(body.at("metadata").as_object().contains("phone_call"));
  EXPECT_EQ(body.at("metadata").at("conversation_initiation_source"), "python_sdk");
  EXPECT_FALSE(body.at("conversation_initiation_client_data").as_object().contains("type"));
  ASSERT_EQ(body.at("transcript").as_array().size(), 2u);
  EXPECT_EQ(body.at("transcript").at(1).at("time_in_call_secs"), 4);
  EXPECT_EQ(body.at("transcript").at(1).at("role"), "user");

  sim.clock.Advance(2s);
  EXPECT_TRUE(sim.simulator->EndWebSocketConversation(id, "Client disconnected: 1000"));
  EXPECT_FALSE(sim.simulator->AppendTranscript(id, "agent", "too late"));
  EXPECT_FALSE(sim.simulator->EndWebSocketConversation(id, "again"));
  body = GetConversation(sim, id);
  EXPECT_EQ(body.at("status"), "processing");
  EXPECT_EQ(body.at("metadata").at("call_duration_secs"), 6);
  EXPECT_EQ(body.at("metadata").at("termination_reason"), "Client disconnected: 1000");
  sim.clock.Advance(5s);
  body = GetConversation(sim, id);
  EXPECT_EQ(body.at("status"), "done");
  EXPECT_TRUE(HasShape(body.at("analysis"), kAnalysisShape));

  const auto list = sim.Api("GET", "/v1/convai/conversations").Json();
  const auto& summary = list.at("conversations").at(0);
  EXPECT_TRUE(HasShape(summary, kSummaryShape));
  EXPECT_EQ(Str(summary.at("conversation_id")), id);
  EXPECT_TRUE(summary.at("direction").is_null());
  EXPECT_EQ(summary.at("message_count"), 2);
}

TEST(ParseCalleeTest, NamesAndErrors) {
  EXPECT_EQ(Simulator::ParseCallee("answer"), CalleeBehaviour::kAnswer);
  EXPECT_EQ(Simulator::ParseCallee("busy"), CalleeBehaviour::kBusy);
  EXPECT_EQ(Simulator::ParseCallee("no-answer"), CalleeBehaviour::kNoAnswer);
  EXPECT_EQ(Simulator::ParseCallee("fail"), CalleeBehaviour::kFail);
  EXPECT_THROW(Simulator::ParseCallee("no_answer"), std::invalid_argument);
  EXPECT_THROW(Simulator::ParseCallee(""), std::invalid_argument);
}

}  // namespace
}  // namespace callgate::sim::testing
