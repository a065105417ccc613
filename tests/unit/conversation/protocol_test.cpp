// The ConvAI client codec: exact client messages, every server event of API notes §6.3 in its
// documented and alternative forms, and errors as values.
#include "conversation/protocol.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <cctype>
#include <random>

namespace callgate::conversation {
namespace {

namespace json = boost::json;

template <class T>
T Expect(std::string_view text) {
  ParsedEvent parsed = ParseServerMessage(text);
  if (!parsed.event) {
    ADD_FAILURE() << "parse error: " << parsed.error << " for " << text;
    return T{};
  }
  const T* event = std::get_if<T>(&*parsed.event);
  if (event == nullptr) {
    ADD_FAILURE() << "wrong event type " << EventType(*parsed.event) << " for " << text;
    return T{};
  }
  return *event;
}

std::string ExpectError(std::string_view text) {
  ParsedEvent parsed = ParseServerMessage(text);
  EXPECT_FALSE(parsed.event) << text;
  EXPECT_FALSE(parsed.error.empty()) << text;
  return parsed.error;
}

TEST(ConversationProtocolTest, InitiationMessageCarriesEveryPartAndOmitsEmptyOnes) {
  InitiationData data;
  data.dynamic_variables = {{"user_name", "John"}, {"order", 42}};
  data.conversation_config_override = {{"agent", {{"language", "et"}, {"first_message", "Hi"}}}};
  data.custom_llm_extra_body = {{"temperature", 0.7}};
  data.user_id = "u1";
  const auto message = json::parse(InitiationMessage(data)).as_object();
  EXPECT_EQ(message.at("type"), "conversation_initiation_client_data");
  EXPECT_EQ(message.at("dynamic_variables"), json::value(data.dynamic_variables));
  EXPECT_EQ(message.at("conversation_config_override"),
            json::value(data.conversation_config_override));
  EXPECT_EQ(message.at("custom_llm_extra_body").at("temperature").as_double(), 0.7);
  EXPECT_EQ(message.at("user_id"), "u1");
  EXPECT_EQ(message.at("source_info"), json::parse(R"({"source":"callgate","version":"0.1.0"})"));

  const auto minimal = json::parse(InitiationMessage({.source = ""})).as_object();
  EXPECT_EQ(minimal, json::parse(R"({"type":"conversation_initiation_client_data"})"));
}

TEST(ConversationProtocolTest, ClientMessagesAreExact) {
  const std::vector<std::uint8_t> audio{0x00, 0x01, 0x02, 0xff};
  EXPECT_EQ(UserAudioChunkMessage(audio), R"({"user_audio_chunk":"AAEC/w=="})");
  EXPECT_EQ(UserAudioChunkMessage({}), R"({"user_audio_chunk":""})");
  EXPECT_EQ(PongMessage(12345), R"({"type":"pong","event_id":12345})");
  EXPECT_EQ(
      ClientToolResultMessage("tool_call_123", "Account is \"active\"", false),
      R"({"type":"client_tool_result","tool_call_id":"tool_call_123","result":"Account is \"active\"","is_error":false})");
  EXPECT_EQ(UserActivityMessage(), R"({"type":"user_activity"})");
  EXPECT_EQ(ContextualUpdateMessage("User is on the pricing page"),
            R"({"type":"contextual_update","text":"User is on the pricing page"})");
  EXPECT_EQ(ContextualUpdateMessage("x", "page"),
            R"({"type":"contextual_update","text":"x","context_id":"page"})");
  EXPECT_EQ(UserMessageMessage("I would like to upgrade"),
            R"({"type":"user_message","text":"I would like to upgrade"})");
  EXPECT_EQ(FeedbackMessage(7, true), R"({"type":"feedback","score":"like","event_id":7})");
}

TEST(ConversationProtocolTest, Metadata) {
  const auto metadata = Expect<InitiationMetadata>(
      R"({"conversation_initiation_metadata_event":{"conversation_id":"conv_123","agent_output_audio_format":"pcm_44100","user_input_audio_format":"ulaw_8000"},"type":"conversation_initiation_metadata"})");
  EXPECT_EQ(metadata.conversation_id, "conv_123");
  EXPECT_EQ(metadata.agent_output_audio_format, "pcm_44100");
  EXPECT_EQ(metadata.user_input_audio_format, "ulaw_8000");
  // Without formats: pcm_16000, as the JS SDK assumes.
  const auto bare = Expect<InitiationMetadata>(
      R"({"type":"conversation_initiation_metadata","conversation_initiation_metadata_event":{"conversation_id":"c"}})");
  EXPECT_EQ(bare.agent_output_audio_format, "pcm_16000");
  EXPECT_EQ(bare.user_input_audio_format, "pcm_16000");
  ExpectError(
      R"({"type":"conversation_initiation_metadata","conversation_initiation_metadata_event":{}})");
}

TEST(ConversationProtocolTest, AudioIsDecoded) {
  const auto audio = Expect<AudioChunk>(
      R"({"type":"audio","audio_event":{"audio_base_64":"AAEC/w==","event_id":3,"alignment":{"chars":["H","i"],"char_start_times_ms":[0,80],"char_durations_ms":[80,90]}}})");
  EXPECT_EQ(audio.audio, (std::vector<std::uint8_t>{0x00, 0x01, 0x02, 0xff}));
  EXPECT_EQ(audio.event_id, 3);
  // Unpadded base64 and a string event id are accepted.
  const auto lenient = Expect<AudioChunk>(
      R"({"type":"audio","audio_event":{"audio_base_64":"AAEC/w","event_id":"4"}})");
  EXPECT_EQ(lenient.audio.size(), 4u);
  EXPECT_EQ(lenient.event_id, 4);
  EXPECT_NE(ExpectError(R"({"type":"audio","audio_event":{"audio_base_64":"@@@@","event_id":1}})")
                .find("base64"),
            std::string::npos);
  ExpectError(R"({"type":"audio","audio_event":{"event_id":1}})");
  ExpectError(R"({"type":"audio","audio_event":{"audio_base_64":42}})");
}

TEST(ConversationProtocolTest, InterruptionInBothForms) {
  EXPECT_EQ(Expect<Interruption>(R"({"type":"interruption","interruption_event":{"event_id":3}})")
                .event_id,
            3);
  const auto reason =
      Expect<Interruption>(R"({"type":"interruption","interruption_event":{"reason":"user"}})");
  EXPECT_FALSE(reason.event_id);
  EXPECT_EQ(reason.reason, "user");
}

TEST(ConversationProtocolTest, Ping) {
  const auto ping = Expect<Ping>(R"({"type":"ping","ping_event":{"event_id":12345,"ping_ms":50}})");
  EXPECT_EQ(ping.event_id, 12345);
  EXPECT_EQ(ping.ping_ms, 50);
  const auto first = Expect<Ping>(R"({"type":"ping","ping_event":{"event_id":1,"ping_ms":null}})");
  EXPECT_FALSE(first.ping_ms);
  ExpectError(R"({"type":"ping","ping_event":{"ping_ms":5}})");
  ExpectError(R"({"type":"ping","ping_event":{"event_id":"abc"}})");
}

TEST(ConversationProtocolTest, TextEvents) {
  const auto response = Expect<AgentResponse>(
      R"({"type":"agent_response","agent_response_event":{"agent_response":"I'd be happy to help","event_id":3}})");
  EXPECT_EQ(response.text, "I'd be happy to help");
  EXPECT_EQ(response.event_id, 3);
  const auto correction = Expect<AgentResponseCorrection>(
      R"({"type":"agent_response_correction","agent_response_correction_event":{"original_agent_response":"Let me tell you about the complete history","corrected_agent_response":"Let me tell you about","event_id":3}})");
  EXPECT_EQ(correction.original, "Let me tell you about the complete history");
  EXPECT_EQ(correction.corrected, "Let me tell you about");
  const auto user = Expect<UserTranscript>(
      R"({"type":"user_transcript","user_transcription_event":{"user_transcript":"I need help.","event_id":2}})");
  EXPECT_EQ(user.text, "I need help.");
  const auto tentative = Expect<TentativeUserTranscript>(
      R"({"type":"tentative_user_transcript","tentative_user_transcription_event":{"user_transcript":"I need","event_id":2}})");
  EXPECT_EQ(tentative.text, "I need");
  const auto agent_tentative = Expect<TentativeAgentResponse>(
      R"({"type":"internal_tentative_agent_response","tentative_agent_response_internal_event":{"tentative_agent_response":"I'd be happy"}})");
  EXPECT_EQ(agent_tentative.text, "I'd be happy");
  ExpectError(R"({"type":"agent_response","agent_response_event":{"event_id":3}})");
  ExpectError(R"({"type":"user_transcript","user_transcription_event":{}})");
}

TEST(ConversationProtocolTest, ToolsAndEndCall) {
  const auto call = Expect<ClientToolCall>(
      R"({"type":"client_tool_call","client_tool_call":{"tool_name":"check_account_status","tool_call_id":"tool_call_123","parameters":{"user_id":"user_123"},"event_id":5}})");
  EXPECT_EQ(call.tool_name, "check_account_status");
  EXPECT_EQ(call.tool_call_id, "tool_call_123");
  EXPECT_EQ(call.parameters.at("user_id"), "user_123");
  EXPECT_EQ(call.event_id, 5);
  ExpectError(R"({"type":"client_tool_call","client_tool_call":{"tool_name":"x"}})");

  const auto end_call = Expect<AgentToolResponse>(
      R"({"type":"agent_tool_response","agent_tool_response":{"tool_name":"end_call","tool_call_id":"end_call_1","tool_type":"system","is_error":false,"is_called":true,"event_id":9}})");
  EXPECT_EQ(end_call.tool_name, "end_call");
  EXPECT_EQ(end_call.tool_type, "system");
  EXPECT_TRUE(end_call.is_called);
  EXPECT_EQ(end_call.event_id, 9);
}

TEST(ConversationProtocolTest, ErrorEvent) {
  const auto error = Expect<ServerError>(
      R"({"type":"error","error_event":{"code":1008,"message":"Missing required dynamic variables: purpose","error_type":"missing_dynamic_variable"}})");
  EXPECT_EQ(error.code, 1008);
  EXPECT_EQ(error.error_type, "missing_dynamic_variable");
  EXPECT_EQ(error.message, "Missing required dynamic variables: purpose");
  EXPECT_EQ(Expect<ServerError>(R"({"type":"error"})").code, 0);
}

TEST(ConversationProtocolTest, PayloadAtTheTopLevelIsAccepted) {
  EXPECT_EQ(Expect<Ping>(R"({"type":"ping","event_id":8,"ping_ms":3})").event_id, 8);
}

TEST(ConversationProtocolTest, OtherAndUnknownTypesAreTolerated) {
  for (
      const char* text :
      {R"({"type":"vad_score","vad_score_event":{"vad_score":0.95}})",
       R"({"type":"agent_chat_response_part","text_response_part":{"text":"Hel","type":"delta","event_id":4}})",
       R"({"type":"guardrail_triggered"})", R"({"type":"something_from_2030","x":[1,2,3]})"}) {
    const auto other = Expect<OtherEvent>(text);
    EXPECT_FALSE(other.type.empty());
  }
}

TEST(ConversationProtocolTest, GarbageIsAnErrorValue) {
  ExpectError("");
  ExpectError("not json");
  ExpectError("[1,2]");
  ExpectError(R"({"no_type":1})");
  ExpectError(R"({"type":7})");
  ExpectError(R"({"type":"audio")");
  EXPECT_NE(ParseServerMessage(std::string(100, ' '), 10).error.find("limit"), std::string::npos);
}

TEST(ConversationProtocolTest, EventTypeNamesTheWireType) {
  EXPECT_EQ(EventType(Ping{}), "ping");
  EXPECT_EQ(EventType(AudioChunk{}), "audio");
  EXPECT_EQ(EventType(OtherEvent{"vad_score"}), "vad_score");
  EXPECT_EQ(EventType(InitiationMetadata{}), "conversation_initiation_metadata");
}

TEST(ConversationProtocolTest, Base64RoundTripsAndRejectsBadInput) {
  std::mt19937 random(7);
  for (std::size_t size = 0; size < 64; ++size) {
    std::vector<std::uint8_t> bytes(size);
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random());
    const std::string encoded = Base64Encode(bytes);
    EXPECT_EQ(encoded.size() % 4, 0u);
    EXPECT_EQ(Base64Decode(encoded), bytes);
  }
  EXPECT_EQ(Base64Encode(std::vector<std::uint8_t>{'M', 'a', 'n'}), "TWFu");
  EXPECT_EQ(Base64Encode(std::vector<std::uint8_t>{'M', 'a'}), "TWE=");
  EXPECT_EQ(Base64Encode(std::vector<std::uint8_t>{'M'}), "TQ==");
  for (const char* bad :
       {"A", "A===", "AB=C", "AB==AB==", "====", "AB*D", "TQ=", "TWFu=", "T Fu"}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;
  }
  EXPECT_EQ(Base64Decode("TQ"), (std::vector<std::uint8_t>{'M'}));
}

TEST(ConversationProtocolTest, UserAudioChunksReuseRecycledFrames) {
  std::mt19937 random(5);
  std::vector<std::uint8_t> a(1600), b(1600), c(100);
  for (auto* bytes : {&a, &b, &c}) {
    for (auto& byte : *bytes)
      byte = static_cast<std::uint8_t>(random());
  }
  std::string first = UserAudioChunkMessage(a);
  const char* buffer = first.data();
  RecycleFrame(std::move(first));
  // The next chunk is built in the recycled buffer, every byte of it rewritten.
  const std::string second = UserAudioChunkMessage(b);
  EXPECT_EQ(second.data(), buffer);
  EXPECT_EQ(second, R"({"user_audio_chunk":")" + Base64Encode(b) + R"("})");
  // A shorter chunk (the last of a session) in a recycled buffer is exact too.
  RecycleFrame(std::string(second));
  EXPECT_EQ(UserAudioChunkMessage(c), R"({"user_audio_chunk":")" + Base64Encode(c) + R"("})");
  // Small frames (pongs) are not kept: the next chunk gets a buffer of its own.
  RecycleFrame(std::string("{}"));
  EXPECT_EQ(UserAudioChunkMessage(c), R"({"user_audio_chunk":")" + Base64Encode(c) + R"("})");
}

// The table-driven codec against a per-character reference (RFC 4648), on audio-sized inputs
// and with a bad character at every position.
std::string ReferenceBase64(const std::vector<std::uint8_t>& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t n = std::uint32_t{bytes[i]} << 16;
    if (i + 1 < bytes.size()) n |= std::uint32_t{bytes[i + 1]} << 8;
    if (i + 2 < bytes.size()) n |= bytes[i + 2];
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

TEST(ConversationProtocolTest, Base64MatchesAReferenceCodec) {
  std::mt19937 random(11);
  for (std::size_t size : {0u, 1u, 2u, 3u, 4u, 5u, 159u, 160u, 161u, 1600u, 3200u, 4410u}) {
    std::vector<std::uint8_t> bytes(size);
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random());
    const std::string expected = ReferenceBase64(bytes);
    EXPECT_EQ(Base64Encode(bytes), expected) << size;
    const auto message = UserAudioChunkMessage(bytes);
    EXPECT_EQ(message, R"({"user_audio_chunk":")" + expected + R"("})") << size;
    EXPECT_EQ(Base64Decode(expected), bytes) << size;
  }
  // Every length up to 100 (the 12-byte vector steps and every scalar tail after them), every
  // byte value at every position in a quantum (so every 6-bit index in every lane), appended
  // after existing text.
  for (std::size_t size = 0; size <= 100; ++size) {
    std::vector<std::uint8_t> bytes(size);
    for (auto& byte : bytes)
      byte = static_cast<std::uint8_t>(random());
    std::string out = "prefix:";
    Base64EncodeTo(bytes, out);
    EXPECT_EQ(out, "prefix:" + ReferenceBase64(bytes)) << size;
  }
  std::vector<std::uint8_t> all;
  for (int round = 0; round < 3; ++round) {
    for (int v = 0; v < 256; ++v)
      all.push_back(static_cast<std::uint8_t>(v));
    all.push_back(static_cast<std::uint8_t>(round));  // shift the values' positions by one
  }
  EXPECT_EQ(Base64Encode(all), ReferenceBase64(all));
  // Every character outside the alphabet, at every position of a short text, is refused.
  const std::string good = ReferenceBase64({1, 2, 3, 4, 5, 6, 7, 8, 9});  // 12 characters
  for (std::size_t at = 0; at < good.size(); ++at) {
    for (int c = 0; c < 256; ++c) {
      const char ch = static_cast<char>(c);
      if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '/') continue;
      std::string bad = good;
      bad[at] = ch;
      if (ch == '=' && at == good.size() - 1) continue;  // "xxx=" is valid padding
      EXPECT_FALSE(Base64Decode(bad)) << "character " << c << " at " << at;
    }
  }
}

}  // namespace
}  // namespace callgate::conversation
