// The one-pass parse of a conversation for the gateway's answer, against the reference built
// from a whole tree (support/pruned_conversation.hpp) and against boost::json::parse's errors.
#include "upstream/conversation_parse.hpp"

#include "conversations/render.hpp"
#include "support/pruned_conversation.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>
#include <vector>

namespace callgate::upstream {
namespace {

namespace json = boost::json;

// Documents with every shape the parse distinguishes. Also used by the render test.
std::vector<std::string> Documents() {
  std::vector<std::string> documents = {
      // The shape the simulator serves (elevenlabs-api.md 3.1), tool turns included.
      R"({"agent_id":"agent_1","agent_name":"A","conversation_id":"conv_1","status":"done",
          "user_id":null,"transcript":[
            {"role":"agent","message":"Hello","tool_calls":[],"tool_results":[],"feedback":null,
             "time_in_call_secs":0,"interrupted":false,"conversation_turn_metrics":{"a":{"b":1}}},
            {"role":"agent","message":null,"tool_calls":[{"tool_name":"end_call","params":
             {"x":[1,{"y":2}]}}],"time_in_call_secs":4.5},
            {"role":"user","message":"Bye \"now\" \u00e9","time_in_call_secs":18446744073709551615}],
          "metadata":{"start_time_unix_secs":1795402451,"call_duration_secs":42,"cost":7,
            "termination_reason":"end_call tool","phone_call":{"type":"twilio"}},
          "analysis":{"evaluation_criteria_results":{},"call_successful":"success",
            "transcript_summary":"s","nested":[{"a":[1,2,{"b":null}]},-3,1.5e3,true]},
          "conversation_initiation_client_data":{"dynamic_variables":{"purpose":"p"}},
          "has_audio":false,"has_user_audio":true})",
      R"({})",
      R"({"status":"done"})",
      // Numbers of each kind, one out of a double's range (boost::json gives infinity).
      R"({"metadata":{"call_duration_secs":1e99999,"start_time_unix_secs":-5},
          "transcript":[{"time_in_call_secs":-0.0},{"time_in_call_secs":9223372036854775807}]})",
      // Items of a transcript that are not objects are dropped.
      R"({"transcript":[1,"x",null,[{"role":"agent"}],{"role":"user"},true]})",
      // Kept members of other types than listed are kept whole.
      R"({"transcript":{"role":"agent","extra":[1]},"metadata":[1,{"cost":2}],
          "analysis":"text","has_audio":{"a":1},"status":["x"]})",
      // A repeated key keeps its last value, as in a tree.
      R"({"status":"a","status":"done","transcript":[{"role":"x"}],"transcript":[],
          "metadata":{"call_duration_secs":1},"metadata":{"cost":2,"termination_reason":"r"}})",
      R"({"transcript":[{"role":"agent","role":"user","message":1,"message":"m"}]})",
      // Escaped keys and values arrive in parts.
      R"({"trans\u0063ript":[{"ro\u006ce":"agent","m\u0065ssage":"a\nb\t\u20ac\ud83d\ude00"}],
          "\u0061nalysis":{"k\u0065y":"v"},"c\u006fst":1})",
      // Not objects at the top: kept whole (the client then refuses them).
      R"([1,{"status":"done"}])",
      R"("conv")",
      R"(42)",
      R"(null)",
  };
  // A long message with escapes all along it (strings in several parts).
  std::string long_message;
  for (int i = 0; i < 3000; ++i)
    long_message += "ab\\n\\u00e9";
  documents.push_back(R"({"transcript":[{"role":"agent","message":")" + long_message +
                      R"(","time_in_call_secs":1}],"analysis":{"s":")" + long_message + R"("}})");
  return documents;
}

TEST(ConversationParse, BuildsWhatTheTreeReferenceKeeps) {
  for (const std::string& text : Documents()) {
    json::monotonic_resource arena;
    const ConversationParse parsed = ParseConversationForRender(text, &arena);
    ASSERT_FALSE(parsed.error) << parsed.error.message() << " in " << text;
    EXPECT_EQ(parsed.consumed, text.size());
    EXPECT_EQ(parsed.root, callgate::testing::PrunedConversation(json::parse(text))) << text;
    EXPECT_EQ(parsed.root.storage().get(), &arena) << "built in the caller's storage";
  }
}

TEST(ConversationParse, KeepsOnlyTheRenderedMembers) {
  const ConversationParse parsed = ParseConversationForRender(Documents().front());
  ASSERT_FALSE(parsed.error);
  const json::object& root = parsed.root.as_object();
  EXPECT_EQ(root.size(),
            7u);  // conversation_id status agent_id has_audio transcript metadata analysis
  EXPECT_FALSE(root.contains("conversation_initiation_client_data"));
  const json::array& turns = root.at("transcript").as_array();
  ASSERT_EQ(turns.size(), 3u);
  EXPECT_EQ(turns[1],
            (json::object{{"role", "agent"}, {"message", nullptr}, {"time_in_call_secs", 4.5}}));
  EXPECT_EQ(turns[2].at("time_in_call_secs").kind(), json::kind::uint64);
  EXPECT_EQ(root.at("metadata"), (json::object{{"start_time_unix_secs", 1795402451},
                                               {"call_duration_secs", 42},
                                               {"termination_reason", "end_call tool"}}));
}

TEST(ConversationParse, TheAnswerIsTheOneRenderedFromTheWholeTree) {
  for (const std::string& text : Documents()) {
    const json::value full = json::parse(text);
    if (!full.is_object()) continue;
    const ConversationParse parsed = ParseConversationForRender(text);
    ASSERT_FALSE(parsed.error);
    const std::string url = "http://gw.example/api/conversations/conv_1/audio";
    EXPECT_EQ(conversations::RenderConversationText(parsed.root.as_object(), text, url),
              conversations::RenderConversationText(full.as_object(), text, url))
        << text;
  }
}

TEST(ConversationParse, ErrorsAreThoseOfAFullParse) {
  const std::vector<std::string> bad = {
      "",
      "{",
      R"({"status":"done",})",
      R"({"transcript":[{"role":"agent"},]})",
      R"({"status":"done"} x)",
      R"({"status":"done"}{})",
      "{\"message\":\"\xff\"}",
      R"({"analysis":{"a":tru}})",
      std::string(40, '[') + std::string(40, ']'),
      R"({"transcript":)" + std::string(40, '[') + std::string(40, ']') + "}",
      R"({"status":"\u12"})",
  };
  for (const std::string& text : bad) {
    boost::system::error_code expected;
    json::parse(text, expected);
    ASSERT_TRUE(expected) << "not an error for boost::json: " << text;
    const ConversationParse parsed = ParseConversationForRender(text);
    EXPECT_EQ(parsed.error, expected) << text;
    EXPECT_TRUE(parsed.root.is_null());
    EXPECT_LE(parsed.consumed, text.size());
  }
}

}  // namespace
}  // namespace callgate::upstream
