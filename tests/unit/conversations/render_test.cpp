// The pure parts of the conversation routes: rendering an upstream conversation, the listing's
// query validation, and the URL the gateway hands out for a recording.
#include "conversations/render.hpp"
#include "conversations/list_query.hpp"
#include "conversations/routes.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>

namespace callgate::conversations {
namespace {

namespace json = boost::json;

// elevenlabs-api.md §3.1's example, plus a tool-call turn with a null message.
const char kUpstream[] = R"({
  "agent_id":"agent_123","conversation_id":"conv_abc","status":"done","user_id":null,
  "transcript":[
    {"role":"agent","message":"Hey there angelo. How are you?","tool_calls":null,
     "tool_results":null,"feedback":null,"time_in_call_secs":0,"conversation_turn_metrics":null},
    {"role":"agent","message":null,"tool_calls":[{"tool_name":"lookup","request_id":"t1",
     "params_as_json":"{}","tool_has_been_called":true}],"time_in_call_secs":1},
    {"role":"user","message":"Fine, thanks.","time_in_call_secs":2}],
  "metadata":{"start_time_unix_secs":1739537297,"call_duration_secs":22,"cost":296,
              "termination_reason":"Call ended by remote party",
              "phone_call":{"type":"twilio","direction":"outbound"}},
  "analysis":{"evaluation_criteria_results":{},"data_collection_results":{},
              "call_successful":"success","transcript_summary":"A short call."},
  "has_audio":true,"has_user_audio":true,"has_response_audio":true,"has_auxiliary_audio":false
})";

constexpr char kUrl[] = "http://gw.example/api/conversations/conv_abc/audio";

json::object Parse(std::string_view text) {
  return json::parse(text).as_object();
}

TEST(RenderConversation, TheDocumentedExample) {
  const json::object upstream = Parse(kUpstream);
  const json::object answer = RenderConversation(upstream, kUrl);

  EXPECT_EQ(answer.at("conversation_id"), "conv_abc");
  EXPECT_EQ(answer.at("status"), "done");
  EXPECT_EQ(answer.at("agent_id"), "agent_123");
  EXPECT_EQ(answer.at("recording_url"), kUrl);
  EXPECT_EQ(answer.at("duration_secs"), 22);
  EXPECT_EQ(answer.at("start_time_unix_secs"), 1739537297);
  EXPECT_EQ(answer.at("termination_reason"), "Call ended by remote party");
  EXPECT_EQ(answer.at("analysis"), upstream.at("analysis"));
  EXPECT_EQ(answer.at("upstream"), upstream);

  const json::value expected_transcript = json::parse(R"([
    {"role":"agent","message":"Hey there angelo. How are you?","time_in_call_secs":0},
    {"role":"agent","message":"","time_in_call_secs":1},
    {"role":"user","message":"Fine, thanks.","time_in_call_secs":2}])");
  EXPECT_EQ(answer.at("transcript"), expected_transcript);
  // The tool-call turn is kept in `transcript` but has no line in the text.
  EXPECT_EQ(answer.at("transcript_text"),
            "Agent: Hey there angelo. How are you?\nUser: Fine, thanks.");
}

TEST(RenderConversation, TheRoutesTextIsTheSameAnswerWithTheUpstreamTextSpliced) {
  // The route's case: the upstream parsed into an arena, its own text spliced in as `upstream`.
  for (const char* text : {kUpstream, R"({"conversation_id":"c","status":"done","cost":1.5,
       "transcript":[{"role":"","message":7},"x",{"role":"operator","message":"hi"}],
       "metadata":[],"analysis":"none","has_audio":false})",
                           "  {\"status\":\"done\", \"note\": \"a \\\"quoted\\\" }\"}\n",
                           // Escapes, control characters and non-ASCII in what is re-written;
                           // numbers of every kind; a mistyped has_audio keeps the URL.
                           R"({"conversation_id":"c\"1\\","agent_id":7,"status":null,
       "transcript":[{"role":"user","message":"line\nbreak\ttab \u0001 \u00e9 \ud83d\ude00",
                      "time_in_call_secs":-1.25e-3},
                     {"role":"agent","message":"big","time_in_call_secs":18446744073709551615},
                     {"role":null,"message":"who?","time_in_call_secs":"3"}],
       "metadata":{"call_duration_secs":12.5,"start_time_unix_secs":-9223372036854775807,
                   "termination_reason":""},
       "analysis":{"nested":{"list":[1,2.5,"x",null,true]}},"has_audio":"no"})",
                           R"({"transcript":"not a list","metadata":{"termination_reason":7},
       "analysis":[]})",
                           "{}"}) {
    const json::object upstream = Parse(text);
    const json::value expected = RenderConversation(upstream, kUrl);

    json::monotonic_resource arena;
    const json::object in_arena = json::parse(text, &arena).as_object();
    const std::string answer = RenderConversationText(in_arena, text, kUrl);
    json::error_code ec;
    const json::value parsed = json::parse(answer, ec);
    ASSERT_FALSE(ec) << answer;
    EXPECT_EQ(parsed, expected) << answer;
    // The upstream's bytes as they came, not re-serialized.
    EXPECT_NE(answer.find(text), std::string::npos);
  }
}

TEST(RenderConversation, EveryTurnHasExactlyRoleMessageAndTime) {
  const json::object answer = RenderConversation(Parse(kUpstream), kUrl);
  for (const json::value& turn : answer.at("transcript").as_array()) {
    const json::object& object = turn.as_object();
    EXPECT_EQ(object.size(), 3u);
    EXPECT_TRUE(object.contains("role"));
    EXPECT_TRUE(object.contains("message"));
    EXPECT_TRUE(object.contains("time_in_call_secs"));
  }
}

TEST(RenderConversation, NoAudioMeansNoRecordingUrl) {
  json::object upstream = Parse(kUpstream);
  upstream["has_audio"] = false;
  EXPECT_TRUE(RenderConversation(upstream, kUrl).at("recording_url").is_null());

  // Only an explicit false removes it: a missing or mistyped has_audio keeps the URL (whose
  // route explains a missing recording).
  upstream.erase("has_audio");
  EXPECT_EQ(RenderConversation(upstream, kUrl).at("recording_url"), kUrl);
  upstream["has_audio"] = "no";
  EXPECT_EQ(RenderConversation(upstream, kUrl).at("recording_url"), kUrl);
}

TEST(RenderConversation, AnEmptyObjectGivesNullsNotACrash) {
  const json::object answer = RenderConversation(json::object{}, kUrl);
  EXPECT_TRUE(answer.at("conversation_id").is_null());
  EXPECT_TRUE(answer.at("status").is_null());
  EXPECT_TRUE(answer.at("agent_id").is_null());
  EXPECT_TRUE(answer.at("transcript").as_array().empty());
  EXPECT_EQ(answer.at("transcript_text"), "");
  EXPECT_EQ(answer.at("recording_url"), kUrl);
  EXPECT_TRUE(answer.at("duration_secs").is_null());
  EXPECT_TRUE(answer.at("start_time_unix_secs").is_null());
  EXPECT_TRUE(answer.at("analysis").is_null());
  EXPECT_FALSE(answer.contains("termination_reason"));
  EXPECT_EQ(answer.at("upstream"), json::object{});
}

TEST(RenderConversation, MistypedFieldsAreToleratedAndNulled) {
  const json::object upstream = Parse(R"({
    "conversation_id": 7, "status": ["done"], "agent_id": null,
    "transcript": [1, "x", null,
                   {"role": 5, "message": 6, "time_in_call_secs": "3"},
                   {"message": "no role", "time_in_call_secs": 1.5},
                   {"role": "", "message": "empty role"},
                   {"role": "system", "message": "note"}],
    "metadata": {"call_duration_secs": "22", "start_time_unix_secs": null,
                 "termination_reason": ""},
    "analysis": "none", "has_audio": null})");
  const json::object answer = RenderConversation(upstream, "");
  EXPECT_TRUE(answer.at("conversation_id").is_null());
  EXPECT_TRUE(answer.at("status").is_null());
  EXPECT_TRUE(answer.at("agent_id").is_null());
  const json::value expected = json::parse(R"([
    {"role":"unknown","message":"","time_in_call_secs":null},
    {"role":"unknown","message":"no role","time_in_call_secs":1.5},
    {"role":"unknown","message":"empty role","time_in_call_secs":null},
    {"role":"system","message":"note","time_in_call_secs":null}])");
  EXPECT_EQ(answer.at("transcript"), expected);
  EXPECT_EQ(answer.at("transcript_text"), "Unknown: no role\nUnknown: empty role\nSystem: note");
  EXPECT_TRUE(answer.at("duration_secs").is_null());
  EXPECT_TRUE(answer.at("start_time_unix_secs").is_null());
  EXPECT_FALSE(answer.contains("termination_reason"));  // empty: not present
  EXPECT_TRUE(answer.at("analysis").is_null());
  EXPECT_EQ(answer.at("recording_url"), "");

  // metadata and transcript of the wrong type.
  const json::object odd =
      RenderConversation(Parse(R"({"metadata": [1], "transcript": {"role": "agent"}})"), kUrl);
  EXPECT_TRUE(odd.at("duration_secs").is_null());
  EXPECT_TRUE(odd.at("transcript").as_array().empty());
}

TEST(TranscriptText, OneLinePerSpokenTurn) {
  EXPECT_EQ(TranscriptText(json::array{}), "");
  // Anything but an array renders no turns.
  const json::value object = json::parse(R"({"role":"agent","message":"Hi"})");
  EXPECT_TRUE(RenderTranscript(&object).empty());

  const json::value turns = json::parse(R"([
      {"role":"user","message":"Hello?","time_in_call_secs":0},
      {"role":"agent","message":"Hi, I am calling about a ticket.","time_in_call_secs":1},
      {"role":"user","message":null,"time_in_call_secs":2}])");
  EXPECT_EQ(TranscriptText(RenderTranscript(&turns)),
            "User: Hello?\nAgent: Hi, I am calling about a ticket.");
  EXPECT_TRUE(RenderTranscript(nullptr).empty());
}

TEST(ConversationQuery, EmptyIsPassedOnAsNothing) {
  const auto parsed = ParseConversationQuery("");
  EXPECT_FALSE(parsed.error);
  EXPECT_EQ(parsed.upstream_query, "");
}

TEST(ConversationQuery, DocumentedParametersAreReEncodedInOrder) {
  const auto parsed = ParseConversationQuery(
      "page_size=20&cursor=abc%3D%3D&agent_id=agent_1&call_successful=success"
      "&call_start_before_unix=1790000000&call_start_after_unix=1700000000"
      "&search=parking+ticket&main_languages=en&main_languages=fr"
      "&exclude_statuses=failed&exclude_statuses=in-progress&summary_mode=include"
      "&has_feedback_comment=true&rating_min=2&rating_max=4");
  ASSERT_FALSE(parsed.error) << parsed.error->message;
  EXPECT_EQ(parsed.upstream_query,
            "page_size=20&cursor=abc%3D%3D&agent_id=agent_1&call_successful=success"
            "&call_start_before_unix=1790000000&call_start_after_unix=1700000000"
            "&search=parking%20ticket&main_languages=en&main_languages=fr"
            "&exclude_statuses=failed&exclude_statuses=in-progress&summary_mode=include"
            "&has_feedback_comment=true&rating_min=2&rating_max=4");
}

TEST(ConversationQuery, AnEmptyCursorMeansTheFirstPage) {
  const auto parsed = ParseConversationQuery("cursor=&page_size=5");
  ASSERT_FALSE(parsed.error);
  EXPECT_EQ(parsed.upstream_query, "page_size=5");
}

TEST(ConversationQuery, BadQueriesNameTheParameter) {
  const std::pair<const char*, const char*> cases[] = {
      {"foo=1", "foo"},
      {"page_size=0", "page_size"},
      {"page_size=101", "page_size"},
      {"page_size=ten", "page_size"},
      {"page_size=", "page_size"},
      {"page_size=-1", "page_size"},
      {"page_size=10&page_size=20", "page_size"},
      {"call_successful=maybe", "call_successful"},
      {"call_start_before_unix=yesterday", "call_start_before_unix"},
      {"call_start_after_unix=1234567890123", "call_start_after_unix"},
      {"agent_id=", "agent_id"},
      {"agent_id=a%0Ab", "agent_id"},
      {"exclude_statuses=ended", "exclude_statuses"},
      {"has_feedback_comment=yes", "has_feedback_comment"},
      {"rating_min=4&rating_max=2", "rating_max"},
      {"call_duration_min_secs=60&call_duration_max_secs=10", "call_duration_max_secs"},
      {"summary_mode=all", "summary_mode"},
  };
  for (const auto& [query, parameter] : cases) {
    const auto parsed = ParseConversationQuery(query);
    ASSERT_TRUE(parsed.error) << query;
    EXPECT_EQ(parsed.error->parameter, parameter) << query;
    EXPECT_FALSE(parsed.error->message.empty());
    EXPECT_TRUE(parsed.upstream_query.empty()) << query;
  }
  EXPECT_NE(ParseConversationQuery("foo=1").error->message.find("page_size"), std::string::npos);
  EXPECT_NE(ParseConversationQuery("page_size=0").error->message.find("1 to 100"),
            std::string::npos);
}

TEST(ConversationQuery, ListFiltersAreBounded) {
  std::string query;
  for (int i = 0; i < 51; ++i)
    query += "tag_ids=t" + std::to_string(i) + "&";
  const auto parsed = ParseConversationQuery(query);
  ASSERT_TRUE(parsed.error);
  EXPECT_EQ(parsed.error->parameter, "tag_ids");
}

TEST(ConversationId, Validation) {
  EXPECT_TRUE(IsValidConversationId("conv_9601k8pjchj6fnvamdmbsvdq5ptv"));
  EXPECT_TRUE(IsValidConversationId("a-B_9"));
  EXPECT_TRUE(IsValidConversationId(std::string(128, 'a')));
  EXPECT_FALSE(IsValidConversationId(std::string(129, 'a')));
  EXPECT_FALSE(IsValidConversationId(""));
  EXPECT_FALSE(IsValidConversationId("conv/../x"));
  EXPECT_FALSE(IsValidConversationId("conv x"));
  EXPECT_FALSE(IsValidConversationId("conv.x"));
  EXPECT_FALSE(IsValidConversationId("conv%2Fx"));
}

TEST(Host, SaneHosts) {
  for (const char* host : {"localhost", "127.0.0.1", "127.0.0.1:8000", "gw.example.com",
                           "gw.example.com:443", "[::1]", "[::1]:8080", "a-b.example"}) {
    EXPECT_TRUE(IsSaneHost(host)) << host;
  }
  for (const char* host :
       {"", ":80", "gw.example:0", "gw.example:65536", "gw.example:80:80", "gw example",
        "gw.example/path", "evil\"><script>", "user@gw.example", "[::1", "[zz::1]", "[::1]x",
        "-gw.example", ".gw.example", "gw.example:", "gw.example:8a"}) {
    EXPECT_FALSE(IsSaneHost(host)) << host;
  }
  EXPECT_FALSE(IsSaneHost(std::string(300, 'a')));
}

TEST(PublicBaseUrl, ConfiguredThenHostThenRelative) {
  EXPECT_EQ(PublicBaseUrl("https://calls.example.com/cg", false, "ignored:1"),
            "https://calls.example.com/cg");
  EXPECT_EQ(PublicBaseUrl("https://calls.example.com/cg//", false, std::nullopt),
            "https://calls.example.com/cg");
  EXPECT_EQ(PublicBaseUrl("", false, "gw.example:8000"), "http://gw.example:8000");
  EXPECT_EQ(PublicBaseUrl("", true, "gw.example"), "https://gw.example");
  EXPECT_EQ(PublicBaseUrl("", false, std::nullopt), "");
  EXPECT_EQ(PublicBaseUrl("", true, "bad host"), "");
  EXPECT_EQ(RecordingUrl("", "conv_1"), "/api/conversations/conv_1/audio");
  EXPECT_EQ(RecordingUrl("https://x.example/cg", "conv_1"),
            "https://x.example/cg/api/conversations/conv_1/audio");
}

}  // namespace
}  // namespace callgate::conversations
