// POST /v1/convai/{twilio,sip-trunk}/outbound-call through Router + Dispatcher: success shapes,
// the FastAPI 422 shapes, auth and lookup errors, callee behaviours.
#include "shape.hpp"
#include "sim_harness.hpp"

namespace callgate::sim::testing {
namespace {

using boost::json::parse;
using namespace std::chrono_literals;

constexpr char kTwilio[] = "/v1/convai/twilio/outbound-call";
constexpr char kSip[] = "/v1/convai/sip-trunk/outbound-call";

// The pydantic error list of a 422 reply, checking the envelope on the way.
boost::json::array Detail(const Reply& reply) {
  EXPECT_EQ(reply.status, 422) << reply.body;
  const auto body = reply.Json();
  EXPECT_TRUE(body.at("detail").is_array()) << reply.body;
  return body.at("detail").as_array();
}

TEST(OutboundCallTest, TwilioSuccessShape) {
  SimHarness sim;
  const Reply reply = sim.Call();
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(reply.Header("Content-Type"), "application/json");
  EXPECT_TRUE(MatchesType(boost::json::string(reply.Header("x-trace-id")), "regex:[0-9a-f]{32}"));
  const auto body = reply.Json();
  EXPECT_TRUE(HasShape(body, {{"success", "bool"},
                              {"message", "string"},
                              {"conversation_id", "regex:conv_[0-9a-z]{28}"},
                              {"callSid", "regex:CA[0-9a-f]{32}"}}));
  EXPECT_EQ(body.at("success"), true);
  EXPECT_EQ(body.at("message"), "Call initiated successfully");
  EXPECT_EQ(body.as_object().size(), 4u);
}

TEST(OutboundCallTest, SipSuccessShapeHasSipCallIdAndIgnoresRecordingFlag) {
  SimHarness sim;
  const Reply reply = sim.Call("+15551234567",
                               R"("call_recording_enabled":"not a bool",)"
                               R"("conversation_initiation_client_data":)"
                               R"({"dynamic_variables":{"purpose":"x"}})",
                               kSip, "phnum_sim_sip");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const auto body = reply.Json();
  EXPECT_TRUE(HasShape(body, {{"success", "bool"},
                              {"message", "string"},
                              {"conversation_id", "regex:conv_[0-9a-z]{28}"},
                              {"sip_call_id", "string"}}));
  EXPECT_FALSE(body.as_object().contains("callSid"));
}

TEST(OutboundCallTest, MissingFieldsAreAllListed) {
  SimHarness sim;
  const auto detail = Detail(sim.Api("POST", kTwilio, "{}"));
  EXPECT_EQ(detail, parse(R"([
    {"type":"missing","loc":["body","agent_id"],"msg":"Field required","input":null},
    {"type":"missing","loc":["body","agent_phone_number_id"],"msg":"Field required","input":null},
    {"type":"missing","loc":["body","to_number"],"msg":"Field required","input":null}])"));
}

TEST(OutboundCallTest, WrongTypesGivePydanticErrors) {
  SimHarness sim;
  const auto detail = Detail(sim.Api("POST", kTwilio, R"({
    "agent_id": 5, "agent_phone_number_id": "phnum_sim_twilio", "to_number": "+15551234567",
    "call_recording_enabled": "maybe",
    "conversation_initiation_client_data": {"dynamic_variables": {"ok": 1, "bad": {"x": 1}}},
    "telephony_call_config": {"ringing_timeout_secs": "soon"}})"));
  EXPECT_EQ(detail, parse(R"([
    {"type":"string_type","loc":["body","agent_id"],"msg":"Input should be a valid string",
     "input":5},
    {"type":"string_type","loc":["body","conversation_initiation_client_data",
     "dynamic_variables","bad","str"],"msg":"Input should be a valid string","input":{"x":1}},
    {"type":"float_type","loc":["body","conversation_initiation_client_data",
     "dynamic_variables","bad","float"],"msg":"Input should be a valid number","input":{"x":1}},
    {"type":"int_type","loc":["body","conversation_initiation_client_data",
     "dynamic_variables","bad","int"],"msg":"Input should be a valid integer","input":{"x":1}},
    {"type":"bool_type","loc":["body","conversation_initiation_client_data",
     "dynamic_variables","bad","bool"],"msg":"Input should be a valid boolean","input":{"x":1}},
    {"type":"bool_parsing","loc":["body","call_recording_enabled"],
     "msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"},
    {"type":"int_parsing","loc":["body","telephony_call_config","ringing_timeout_secs"],
     "msg":"Input should be a valid integer, unable to parse string as an integer",
     "input":"soon"}])"));
}

TEST(OutboundCallTest, NestedModelsAndDictsMustBeObjects) {
  SimHarness sim;
  auto detail = Detail(sim.Call("+15551234567", R"("conversation_initiation_client_data": 7)"));
  ASSERT_EQ(detail.size(), 1u);
  EXPECT_EQ(detail[0], parse(R"({"type":"model_type",
    "loc":["body","conversation_initiation_client_data"],
    "msg":"Input should be a valid dictionary or instance of ConversationInitiationClientDataRequestInput",
    "input":7,"ctx":{"class_name":"ConversationInitiationClientDataRequestInput"}})"));

  detail = Detail(sim.Call("+15551234567",
                           R"("conversation_initiation_client_data":{"dynamic_variables":[]})"));
  ASSERT_EQ(detail.size(), 1u);
  EXPECT_EQ(detail[0], parse(R"({"type":"dict_type",
    "loc":["body","conversation_initiation_client_data","dynamic_variables"],
    "msg":"Input should be a valid dictionary","input":[]})"));

  // Nulls are accepted for the optional objects.
  EXPECT_EQ(sim.Call("+15551234567", R"("conversation_initiation_client_data":null,)"
                                     R"("telephony_call_config":null)")
                .status,
            200);
}

TEST(OutboundCallTest, MalformedBodies) {
  SimHarness sim;
  auto detail = Detail(sim.Api("POST", kTwilio, R"({"agent_id": })"));
  EXPECT_EQ(detail, parse(R"([{"type":"json_invalid","loc":["body",13],"msg":"JSON decode error",
                               "input":{},"ctx":{"error":"Expecting value"}}])"));

  detail = Detail(sim.Api("POST", kTwilio, R"(["agent_sim_default"])"));
  EXPECT_EQ(detail, parse(R"([{"type":"model_attributes_type","loc":["body"],
    "msg":"Input should be a valid dictionary or object to extract fields from",
    "input":["agent_sim_default"]}])"));

  detail = Detail(sim.Must("POST", kTwilio, {{"xi-api-key", kApiKey}}));
  EXPECT_EQ(detail, parse(R"([{"type":"missing","loc":["body"],"msg":"Field required",
                               "input":null}])"));

  // A form body is handed to the model as text.
  detail = Detail(
      sim.Must("POST", kTwilio,
               {{"xi-api-key", kApiKey}, {"Content-Type", "application/x-www-form-urlencoded"}},
               "agent_id=x"));
  EXPECT_EQ(detail[0].at("type"), "model_attributes_type");
  EXPECT_EQ(detail[0].at("input"), "agent_id=x");

  const Reply unreadable = sim.Api("POST", kTwilio, "{\"agent_id\": \"\xFF\"}");
  EXPECT_EQ(unreadable.status, 400);
  EXPECT_EQ(unreadable.Json(), parse(R"({"detail":"There was an error parsing the body"})"));
}

TEST(OutboundCallTest, ToNumberMustBeE164) {
  SimHarness sim;
  for (const std::string bad :
       {"5551234567", "+0551234567", "+12345", "+1555123456789012", "+1 555 123 4567", ""}) {
    const auto detail = Detail(sim.Call(bad));
    ASSERT_EQ(detail.size(), 1u) << bad;
    EXPECT_EQ(detail[0], (boost::json::value{{"type", "value_error"},
                                             {"loc", {"body", "to_number"}},
                                             {"msg", "Value error, Invalid phone number"},
                                             {"input", bad},
                                             {"ctx", {{"error", boost::json::object{}}}}}))
        << bad;
  }
  EXPECT_EQ(sim.Call("+1234567").status, 200);
  EXPECT_EQ(sim.Call("+123456789012345").status, 200);
}

TEST(OutboundCallTest, ValidationComesBeforeAuth) {
  SimHarness sim;
  const Reply reply = sim.Must("POST", kTwilio, {{"xi-api-key", "wrong"}}, "{}");
  EXPECT_EQ(reply.status, 422);
}

TEST(OutboundCallTest, AuthErrors) {
  SimHarness sim;
  const std::string body =
      R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio",)"
      R"("to_number":"+15551234567"})";
  Reply reply = sim.Must("POST", kTwilio, {{"Content-Type", "application/json"}}, body);
  ASSERT_EQ(reply.status, 401);
  auto detail = reply.Json().at("detail");
  EXPECT_EQ(Str(detail.at("request_id")), reply.Header("x-trace-id"));
  EXPECT_TRUE(MatchesType(detail.at("request_id"), "regex:[0-9a-f]{32}"));
  EXPECT_EQ(reply.Json(),
            (boost::json::value{
                {"detail",
                 {{"type", "authentication_error"},
                  {"code", "unauthorized"},
                  {"message",
                   "Neither authorization header nor xi-api-key received, please provide one."},
                  {"status", "needs_authorization"},
                  {"request_id", reply.Header("x-trace-id")}}}}));

  reply = sim.Must("POST", kTwilio, {{"xi-api-key", "sk_wrong"}}, body);
  ASSERT_EQ(reply.status, 401);
  EXPECT_EQ(reply.Json(), (boost::json::value{{"detail",
                                               {{"type", "authentication_error"},
                                                {"code", "invalid_api_key"},
                                                {"message", "Invalid API key"},
                                                {"status", "invalid_api_key"},
                                                {"request_id", reply.Header("x-trace-id")}}}}));
  // Nothing was created by refused calls.
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations").Json().at("conversations").as_array().size(),
            0u);
}

TEST(OutboundCallTest, UnknownAgentAndPhoneNumberAre404) {
  SimHarness sim;
  Reply reply = sim.Api("POST", kTwilio,
                        R"({"agent_id":"agent_nope","agent_phone_number_id":"phnum_sim_twilio",)"
                        R"("to_number":"+15551234567"})");
  ASSERT_EQ(reply.status, 404);
  auto detail = reply.Json().at("detail");
  EXPECT_TRUE(HasShape(detail, {{"type", "enum:not_found"},
                                {"code", "enum:agent_not_found"},
                                {"message", "string"},
                                {"status", "string"},
                                {"request_id", "regex:[0-9a-f]{32}"}}));
  EXPECT_EQ(Str(detail.at("request_id")), reply.Header("x-trace-id"));

  reply = sim.Call("+15551234567", "", kTwilio, "phnum_nope");
  ASSERT_EQ(reply.status, 404);
  EXPECT_EQ(reply.Json().at("detail").at("code"), "phone_number_not_found");
  EXPECT_EQ(reply.Json().at("detail").at("type"), "not_found");
}

TEST(OutboundCallTest, ProviderMismatchIs400NamingTheRightEndpoint) {
  SimHarness sim;
  Reply reply = sim.Call("+15551234567", "", kTwilio, "phnum_sim_sip");
  ASSERT_EQ(reply.status, 400);
  auto detail = reply.Json().at("detail");
  EXPECT_EQ(detail.at("type"), "validation_error");
  EXPECT_EQ(detail.at("code"), "invalid_phone_number_provider");
  EXPECT_NE(std::string(detail.at("message").as_string()).find("sip-trunk/outbound-call"),
            std::string::npos);

  reply = sim.Call("+15551234567", "", kSip, "phnum_sim_twilio");
  ASSERT_EQ(reply.status, 400);
  EXPECT_NE(
      std::string(reply.Json().at("detail").at("message").as_string()).find("twilio/outbound-call"),
      std::string::npos);
}

TEST(OutboundCallTest, FailingCalleeGivesSuccessFalseAndNoConversation) {
  SimOptions options;
  options.callees["+15550009999"] = CalleeBehaviour::kFail;
  SimHarness sim(options);
  Reply reply = sim.Call("+15550009999");
  ASSERT_EQ(reply.status, 200);
  const auto body = reply.Json();
  EXPECT_EQ(body.at("success"), false);
  EXPECT_TRUE(body.at("message").as_string().starts_with("Failed to initiate call: "));
  EXPECT_TRUE(body.at("conversation_id").is_null());
  EXPECT_TRUE(body.at("callSid").is_null());
  EXPECT_TRUE(
      sim.Api("GET", "/v1/convai/conversations").Json().at("conversations").as_array().empty());

  reply = sim.Call("+15550009999", "", kSip, "phnum_sim_sip");
  EXPECT_EQ(reply.Json().at("success"), false);
  EXPECT_TRUE(reply.Json().at("sip_call_id").is_null());
}

TEST(OutboundCallTest, ClientDataAndRingingTimeoutAreStored) {
  SimOptions options;
  options.callees["+15550001111"] = CalleeBehaviour::kNoAnswer;
  SimHarness sim(options);
  const Reply reply = sim.Call(
      "+15550001111",
      R"("conversation_initiation_client_data":{"user_id":"u-42",)"
      R"("dynamic_variables":{"purpose":"the invoice","amount":12.5,"system__agent_id":"spoof"}},)"
      R"("telephony_call_config":{"ringing_timeout_secs":45})");
  ASSERT_EQ(reply.status, 200) << reply.body;
  const std::string id(reply.Json().at("conversation_id").as_string());
  const std::string call_sid(reply.Json().at("callSid").as_string());

  const auto conversation = sim.Api("GET", "/v1/convai/conversations/" + id).Json();
  EXPECT_EQ(conversation.at("user_id"), "u-42");
  const auto& data = conversation.at("conversation_initiation_client_data");
  EXPECT_EQ(data.at("user_id"), "u-42");
  const auto& variables = data.at("dynamic_variables");
  EXPECT_EQ(variables.at("purpose"), "the invoice");
  EXPECT_EQ(variables.at("amount"), 12.5);
  EXPECT_EQ(variables.at("system__agent_id"), "agent_sim_default") << "system vars win";
  EXPECT_EQ(Str(variables.at("system__conversation_id")), id);
  EXPECT_EQ(Str(variables.at("system__call_sid")), call_sid);
  EXPECT_EQ(variables.at("system__called_number"), "+15550001111");
  EXPECT_EQ(variables.at("system__caller_id"), "+15550100000");

  sim.clock.Advance(45s - 1ms);
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/" + id).Json().at("status"), "initiated");
  sim.clock.Advance(1ms);
  const auto failed = sim.Api("GET", "/v1/convai/conversations/" + id).Json();
  EXPECT_EQ(failed.at("status"), "failed");
  EXPECT_EQ(failed.at("metadata").at("termination_reason"), "no-answer");
}

TEST(OutboundCallTest, OverridesApplyOnlyWhenTheAgentAllowsThem) {
  SimOptions options;
  options.agents = {{.agent_id = "agent_open", .name = "Open", .first_message = "Default."},
                    {.agent_id = "agent_locked",
                     .name = "Locked",
                     .first_message = "Default.",
                     .allow_overrides = false}};
  SimHarness sim(options);
  const auto first_message = [&](const std::string& agent) {
    const Reply reply =
        sim.Api("POST", kTwilio,
                R"({"agent_id":")" + agent +
                    R"(","agent_phone_number_id":"phnum_sim_twilio","to_number":"+15551234567",)"
                    R"("conversation_initiation_client_data":{"conversation_config_override":)"
                    R"({"agent":{"first_message":"Hi {{name}}!","language":"de"}},)"
                    R"("dynamic_variables":{"name":"Ann"}}})");
    EXPECT_EQ(reply.status, 200) << reply.body;
    sim.clock.Advance(3s);
    const auto conversation =
        sim.Api("GET", "/v1/convai/conversations/" +
                           std::string(reply.Json().at("conversation_id").as_string()))
            .Json();
    return std::string(conversation.at("transcript").at(0).at("message").as_string());
  };
  EXPECT_EQ(first_message("agent_open"), "Hi Ann!");
  EXPECT_EQ(first_message("agent_locked"), "Default.");
}

}  // namespace
}  // namespace callgate::sim::testing
