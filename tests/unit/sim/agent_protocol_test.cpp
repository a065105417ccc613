// The pure protocol pieces of the simulator's conversation WebSocket (sim/agent/protocol).
#include "sim/agent/protocol.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace callgate::sim::agent {
namespace {

namespace json = boost::json;

std::string B64(std::string_view text) {
  return Base64Encode(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

TEST(AgentProtocol, Base64MatchesRfc4648Vectors) {
  EXPECT_EQ(B64(""), "");
  EXPECT_EQ(B64("f"), "Zg==");
  EXPECT_EQ(B64("fo"), "Zm8=");
  EXPECT_EQ(B64("foo"), "Zm9v");
  EXPECT_EQ(B64("foobar"), "Zm9vYmFy");
  const auto decoded = Base64Decode("Zm9vYg==");
  ASSERT_TRUE(decoded);
  EXPECT_EQ(std::string(decoded->begin(), decoded->end()), "foob");
  std::vector<std::uint8_t> all(256);
  for (int i = 0; i < 256; ++i)
    all[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
  EXPECT_EQ(Base64Decode(Base64Encode(all.data(), all.size())), all);
}

TEST(AgentProtocol, Base64RejectsMalformedText) {
  EXPECT_FALSE(Base64Decode("Zm9"));       // not a multiple of 4
  EXPECT_FALSE(Base64Decode("Zm9v!A=="));  // outside the alphabet
  EXPECT_FALSE(Base64Decode("Z==v"));      // padding inside
  EXPECT_FALSE(Base64Decode("Zm=v"));
  EXPECT_FALSE(Base64Decode("Zg==Zg=="));  // padding before the end
  EXPECT_FALSE(Base64Decode("Zm9v_-=="));  // base64url is not base64
}

TEST(AgentProtocol, Base64DecodeIntoAgreesWithBase64DecodeOnEveryShortText) {
  // Every text of 0, 4 or 8 characters over a small alphabet with both ends of each range, '='
  // and a bad character (6^8 = 1.7 million texts: seconds, also under the sanitizers at -O0).
  const std::string symbols = "Az9/=!";
  std::vector<std::uint8_t> out{42};
  for (std::size_t length = 0; length <= 8; length += 4) {
    std::vector<std::size_t> digits(length, 0);
    while (true) {
      std::string text;
      for (auto d : digits)
        text += symbols[d];
      const auto expected = Base64Decode(text);
      EXPECT_EQ(Base64DecodeInto(text, out), expected.has_value()) << text;
      if (expected) {
        EXPECT_EQ(out, *expected) << text;
      }
      std::size_t i = 0;
      while (i < length && ++digits[i] == symbols.size())
        digits[i++] = 0;
      if (i == length) break;
    }
  }
}

TEST(AgentProtocol, UserAudioChunkFastPathAgreesWithTheFullParse) {
  std::vector<std::uint8_t> pcm(1600);
  for (std::size_t i = 0; i < pcm.size(); ++i)
    pcm[i] = static_cast<std::uint8_t>(i * 7 + 3);
  const std::string chunk = Base64Encode(pcm.data(), pcm.size());
  std::vector<std::uint8_t> audio;
  for (const std::string& text :
       {R"({"user_audio_chunk":")" + chunk + R"("})", std::string(R"({"user_audio_chunk":"AAEC"})"),
        std::string(R"({"user_audio_chunk":"AA=="})"), std::string(R"({"user_audio_chunk":""})")}) {
    ASSERT_TRUE(ParseUserAudioChunkInto(text, audio)) << text.substr(0, 40);
    const auto parsed = ParseClientMessage(text);
    ASSERT_TRUE(parsed.message);
    EXPECT_EQ(parsed.message->kind, ClientKind::kUserAudioChunk);
    EXPECT_EQ(parsed.message->audio, audio);
  }
  EXPECT_EQ(audio.size(), 0u);
  // Anything but the exact shape, or invalid base64, is left to ParseClientMessage.
  for (const char* other :
       {R"({ "user_audio_chunk":"AAEC"})", R"({"user_audio_chunk": "AAEC"})",
        R"({"user_audio_chunk":"AAEC","type":"x"})", R"({"user_audio_chunk":"AAE"})",
        "{\"user_audio_chunk\":\"AA\\u0041C\"}", R"({"user_audio_chunk":"A=EC"})",
        R"({"user_audio_chunk":"AAEC"} )", R"({"type":"pong","event_id":1})",
        R"({"user_audio_chunk":")", ""}) {
    EXPECT_FALSE(ParseUserAudioChunkInto(other, audio)) << other;
  }
}

TEST(AgentProtocol, ParsesEveryClientMessage) {
  auto audio = ParseClientMessage(R"({"user_audio_chunk":"AAEC"})");
  ASSERT_TRUE(audio.message);
  EXPECT_EQ(audio.message->kind, ClientKind::kUserAudioChunk);
  EXPECT_EQ(audio.message->audio, (std::vector<std::uint8_t>{0, 1, 2}));

  auto init = ParseClientMessage(
      R"({"type":"conversation_initiation_client_data","dynamic_variables":{"a":"b"}})");
  ASSERT_TRUE(init.message);
  EXPECT_EQ(init.message->kind, ClientKind::kInit);

  auto pong = ParseClientMessage(R"({"type":"pong","event_id":12})");
  ASSERT_TRUE(pong.message);
  EXPECT_EQ(pong.message->kind, ClientKind::kPong);
  EXPECT_EQ(pong.message->event_id, 12);
  auto string_pong = ParseClientMessage(R"({"type":"pong","event_id":"13"})");  // JS SDK typing
  ASSERT_TRUE(string_pong.message);
  EXPECT_EQ(string_pong.message->event_id, 13);

  auto result = ParseClientMessage(
      R"({"type":"client_tool_result","tool_call_id":"t1","result":"ok","is_error":false})");
  ASSERT_TRUE(result.message);
  EXPECT_EQ(result.message->kind, ClientKind::kClientToolResult);
  EXPECT_EQ(result.message->text, "t1");

  auto user = ParseClientMessage(R"({"type":"user_message","text":"I need help"})");
  ASSERT_TRUE(user.message);
  EXPECT_EQ(user.message->kind, ClientKind::kUserMessage);
  EXPECT_EQ(user.message->text, "I need help");

  for (const char* ok :
       {R"({"type":"user_activity"})",
        R"({"type":"contextual_update","text":"on the pricing page"})",
        R"({"type":"feedback","score":"like","event_id":7})",
        R"({"type":"mcp_tool_approval_result","tool_call_id":"t","is_approved":true})",
        R"({"type":"multimodal_message","text":{"type":"user_message","text":"x"}})"}) {
    EXPECT_TRUE(ParseClientMessage(ok).message) << ok;
  }
}

TEST(AgentProtocol, RefusesInvalidMessagesWithInvalidMessage) {
  for (const char* bad :
       {"not json", "[1,2]", "{}", R"({"type":7})", R"({"type":"dance"})",
        R"({"user_audio_chunk":5})", R"({"user_audio_chunk":"***"})", R"({"type":"pong"})",
        R"({"type":"pong","event_id":"x"})", R"({"type":"client_tool_result","tool_call_id":"t"})",
        R"({"type":"contextual_update"})", R"({"type":"feedback","score":"like"})",
        R"({"type":"user_message","text":5})"}) {
    const auto parsed = ParseClientMessage(bad);
    EXPECT_FALSE(parsed.message) << bad;
    EXPECT_EQ(parsed.error.error_type, "invalid_message") << bad;
  }
}

TEST(AgentProtocol, OverridesAreRefusedOnlyWhenTheAgentForbidsThem) {
  const auto init =
      json::parse(R"({"type":"conversation_initiation_client_data","conversation_config_override":)"
                  R"({"agent":{"first_message":"Hi"},"tts":{},"conversation":{}}})")
          .as_object();
  EXPECT_FALSE(CheckInitiation(init, true));
  const auto refused = CheckInitiation(init, false);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->error_type, "override_error");

  const auto tts =
      json::parse(R"({"conversation_config_override":{"tts":{"voice_id":"v"}}})").as_object();
  ASSERT_TRUE(CheckInitiation(tts, false));
  EXPECT_EQ(CheckInitiation(tts, false)->error_type, "override_error");
  // Empty override objects (what the React SDK sends) override nothing.
  const auto empty =
      json::parse(R"({"conversation_config_override":{"agent":{"language":""},"tts":{}}})")
          .as_object();
  EXPECT_FALSE(CheckInitiation(empty, false));
  const auto bad_vars = json::parse(R"({"dynamic_variables":[1]})").as_object();
  ASSERT_TRUE(CheckInitiation(bad_vars, true));
  EXPECT_EQ(CheckInitiation(bad_vars, true)->error_type, "invalid_message");
}

TEST(AgentProtocol, EventsHaveTheDocumentedShapes) {
  EXPECT_EQ(
      json::parse(MetadataEvent("conv_1", "pcm_44100", "pcm_16000")),
      json::parse(
          R"({"type":"conversation_initiation_metadata",)"
          R"("conversation_initiation_metadata_event":{"conversation_id":"conv_1",)"
          R"("agent_output_audio_format":"pcm_44100","user_input_audio_format":"pcm_16000"}})"));
  EXPECT_EQ(json::parse(AudioEvent("AAA=", 3)),
            json::parse(R"({"type":"audio","audio_event":{"audio_base_64":"AAA=","event_id":3}})"));
  EXPECT_EQ(
      json::parse(AgentResponseEvent("Hi", 3)),
      json::parse(
          R"({"type":"agent_response","agent_response_event":{"agent_response":"Hi","event_id":3}})"));
  EXPECT_EQ(json::parse(InterruptionEvent(3, false)),
            json::parse(R"({"type":"interruption","interruption_event":{"event_id":3}})"));
  EXPECT_EQ(json::parse(InterruptionEvent(3, true)),
            json::parse(R"({"type":"interruption","interruption_event":{"reason":"user"}})"));
  EXPECT_EQ(json::parse(PingEvent(4, std::nullopt)),
            json::parse(R"({"type":"ping","ping_event":{"event_id":4,"ping_ms":null}})"));
  EXPECT_EQ(json::parse(PingEvent(5, 20)),
            json::parse(R"({"type":"ping","ping_event":{"event_id":5,"ping_ms":20}})"));
  EXPECT_EQ(
      json::parse(UserTranscriptEvent("x", 2)),
      json::parse(
          R"({"type":"user_transcript","user_transcription_event":{"user_transcript":"x","event_id":2}})"));
  EXPECT_EQ(
      json::parse(AgentToolResponseEvent("end_call", "c1", "system", false, true, 9)),
      json::parse(
          R"({"type":"agent_tool_response","agent_tool_response":{"tool_name":"end_call",)"
          R"("tool_call_id":"c1","tool_type":"system","is_error":false,"is_called":true,"event_id":9}})"));
  EXPECT_EQ(
      json::parse(ErrorEvent(1008, "m", "invalid_message")),
      json::parse(
          R"({"type":"error","error_event":{"code":1008,"message":"m","error_type":"invalid_message"}})"));
  EXPECT_EQ(json::parse(ClientToolCallEvent("lookup", "t1", {{"a", 1}}, 6)),
            json::parse(R"({"type":"client_tool_call","client_tool_call":{"tool_name":"lookup",)"
                        R"("tool_call_id":"t1","parameters":{"a":1},"event_id":6}})"));
}

TEST(AgentProtocol, TruncatesToWholeSpokenWords) {
  const std::string text = "Let me tell you about the history";
  EXPECT_EQ(TruncateSpoken(text, 0.0), "");
  EXPECT_EQ(TruncateSpoken(text, 1.0), text);
  EXPECT_EQ(TruncateSpoken(text, 0.1), "Let");                     // 3 chars of 33
  EXPECT_EQ(TruncateSpoken(text, 0.65), "Let me tell you about");  // 21 of 33
  EXPECT_EQ(TruncateSpoken(text, 0.01), "");
}

TEST(AgentProtocol, SimulatedTextAndScript) {
  EXPECT_EQ(SimulatedUserText("(user spoke for {secs} s)", 1.44), "(user spoke for 1.4 s)");
  EXPECT_EQ(SimulatedUserText("{secs}/{secs}", 2.0), "2.0/2.0");
  EXPECT_EQ(SimulatedUserText("fixed", 2.0), "fixed");
  EXPECT_NE(ScriptLine(1, 3, "your order").find("your order"), std::string::npos);
  EXPECT_EQ(ScriptLine(3, 3, ""), "Thank you for your time. Goodbye!");
  EXPECT_EQ(ScriptLine(1, 1, "x"), "Thank you for your time. Goodbye!");
}

}  // namespace
}  // namespace callgate::sim::agent
