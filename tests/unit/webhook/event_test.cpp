// Event parsing: the envelope, each known type, generic events and precise errors.
#include "webhook/event.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace callgate::webhook {
namespace {

// The documented post_call_transcription example (elevenlabs-api.md §7.1), with a transcript.
constexpr char kTranscription[] = R"({
  "type": "post_call_transcription",
  "event_timestamp": 1739537297,
  "data": {
    "agent_id": "xyz", "conversation_id": "abc", "status": "done", "user_id": "user123",
    "transcript": [
      {"role": "agent", "message": "Hello, this is the parking office.", "time_in_call_secs": 0},
      {"role": "user", "message": "Hi, about ticket 12345.", "time_in_call_secs": 3.5},
      {"role": "agent", "message": null, "time_in_call_secs": 7, "tool_calls": [{"name": "x"}]}
    ],
    "metadata": {"start_time_unix_secs": 1739537297, "call_duration_secs": 22, "cost": 296},
    "analysis": {"evaluation_criteria_results": {}, "data_collection_results": {},
                 "call_successful": "success", "transcript_summary": "Ticket dismissed."},
    "conversation_initiation_client_data": {"dynamic_variables": {"purpose": "x"}},
    "has_audio": true, "has_user_audio": true, "has_response_audio": true
  }
})";

EventError ErrorOf(std::string_view body) {
  const EventResult result = ParseEvent(std::string(body));
  EXPECT_FALSE(result.has_value()) << body;
  return result.has_value() ? EventError{} : result.error();
}

TEST(Event, PostCallTranscription) {
  const EventResult result = ParseEvent(kTranscription);
  ASSERT_TRUE(result.has_value()) << result.error().message;
  const Event& event = *result;
  EXPECT_EQ(event.type, "post_call_transcription");
  EXPECT_EQ(event.kind, EventType::kPostCallTranscription);
  EXPECT_EQ(event.event_timestamp, 1739537297);
  EXPECT_EQ(event.conversation_id, "abc");
  EXPECT_EQ(event.agent_id, "xyz");
  const std::optional<Transcription> transcription = TranscriptionOf(event);
  ASSERT_TRUE(transcription);
  const Transcription& t = *transcription;
  EXPECT_EQ(t.status, "done");
  EXPECT_EQ(t.user_id, "user123");
  ASSERT_EQ(t.transcript.size(), 3u);
  EXPECT_EQ(t.transcript[0].role, "agent");
  EXPECT_EQ(t.transcript[0].message, "Hello, this is the parking office.");
  EXPECT_EQ(t.transcript[1].time_in_call_secs, 3.5);
  EXPECT_EQ(t.transcript[2].message, "");
  EXPECT_EQ(t.call_duration_secs, 22.0);
  EXPECT_EQ(t.start_time_unix_secs, 1739537297);
  EXPECT_EQ(t.call_successful, "success");
  EXPECT_EQ(t.transcript_summary, "Ticket dismissed.");
  EXPECT_TRUE(DataOf(event).contains("has_audio"));  // everything else is kept
  EXPECT_FALSE(event.audio);
  EXPECT_FALSE(event.failure);
}

TEST(Event, TheSeedsShapeIsTolerated) {
  // The seed README's example: a free-text transcript and a recording_url.
  const EventResult result = ParseEvent(
      R"({"type":"post_call_transcription","data":{"conversation_id":"conv_123","status":"ended",
          "transcript":"...","recording_url":"https://x/audio.mp3"},"event_timestamp":1730000000})");
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_EQ(TranscriptionOf(*result)->transcript.size(), 1u);
  EXPECT_EQ(TranscriptionOf(*result)->transcript[0].role, "");
  EXPECT_EQ(TranscriptionOf(*result)->transcript[0].message, "...");
  EXPECT_EQ(TranscriptionOf(*result)->recording_url, "https://x/audio.mp3");
}

TEST(Event, EventTimestampAsNumberStringOrAbsent) {
  EXPECT_EQ(ParseEvent(R"({"type":"x","event_timestamp":"1739537297","data":{}})")->event_timestamp,
            1739537297);
  EXPECT_EQ(ParseEvent(R"({"type":"x","event_timestamp":1739537297.9,"data":{}})")->event_timestamp,
            1739537297);
  EXPECT_FALSE(ParseEvent(R"({"type":"x","data":{}})")->event_timestamp);
  EXPECT_FALSE(ParseEvent(R"({"type":"x","event_timestamp":null,"data":{}})")->event_timestamp);
  const EventError error = ErrorOf(R"({"type":"x","event_timestamp":"soon","data":{}})");
  EXPECT_EQ(error.code, "invalid_field");
  EXPECT_EQ(error.field, "event_timestamp");
  EXPECT_EQ(ErrorOf(R"({"type":"x","event_timestamp":[1],"data":{}})").field, "event_timestamp");
}

TEST(Event, PostCallAudioIsDecoded) {
  // "ID3\x04\x00" + bytes: base64 computed with `printf 'ID3\x04\x00\xff\xfb' | base64`.
  const EventResult result = ParseEvent(
      R"({"type":"post_call_audio","event_timestamp":1739537319,
          "data":{"agent_id":"xyz","conversation_id":"abc","full_audio":"SUQzBAD/+w=="}})");
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_TRUE(result->audio);
  EXPECT_EQ(result->audio->mp3, std::string("ID3\x04\x00\xff\xfb", 7));
  EXPECT_FALSE(DataOf(*result).contains("full_audio"));  // no second copy
  EXPECT_EQ(DataOf(*result).at("agent_id").as_string(), "xyz");
  // Every padding length.
  EXPECT_EQ(DecodeBase64("TWFu"), "Man");
  EXPECT_EQ(DecodeBase64("TWE="), "Ma");
  EXPECT_EQ(DecodeBase64("TQ=="), "M");
  EXPECT_EQ(DecodeBase64(""), "");
}

TEST(Event, InvalidAudioIsRefusedClearly) {
  auto audio = [](const std::string& full_audio) {
    return R"({"type":"post_call_audio","data":{"conversation_id":"abc","full_audio":)" +
           full_audio + "}}";
  };
  for (const char* bad : {R"("SUQzBAD/+w")", R"("SUQz BAD/+w==")", R"("SUQz*AD/+w==")",
                          R"("SUQzBAD/+w===")", R"("S===")", R"("SU=z")", R"("SUQzBAD/-w==")"}) {
    const EventError error = ErrorOf(audio(bad));
    EXPECT_EQ(error.code, "invalid_audio") << bad;
    EXPECT_EQ(error.field, "data.full_audio");
    EXPECT_NE(error.message.find("base64"), std::string::npos);
  }
  EXPECT_EQ(ErrorOf(audio(R"("")")).code, "invalid_audio");
  EXPECT_EQ(ErrorOf(audio("42")).code, "invalid_field");
  EXPECT_EQ(ErrorOf(R"({"type":"post_call_audio","data":{"conversation_id":"abc"}})").code,
            "missing_field");
  // The conversation id names a file: nothing that could leave the recordings directory.
  for (const char* id : {"../etc/passwd", "a/b", ".hidden", "", "x y"}) {
    const EventError error = ErrorOf(R"({"type":"post_call_audio","data":{"conversation_id":")" +
                                     std::string(id) + R"(","full_audio":"TWFu"}})");
    EXPECT_TRUE(error.code == "invalid_field" || error.code == "missing_field") << id;
    EXPECT_EQ(error.field, "data.conversation_id") << id;
  }
}

TEST(Event, CallInitiationFailure) {
  const EventResult result = ParseEvent(
      R"({"type":"call_initiation_failure","event_timestamp":1739537400,"data":{"agent_id":"agent_1",
          "conversation_id":"conv_1","failure_reason":"busy","metadata":{"type":"sip","body":{"sip_status_code":486}}}})");
  ASSERT_TRUE(result.has_value()) << result.error().message;
  ASSERT_TRUE(result->failure);
  EXPECT_EQ(result->failure->failure_reason, "busy");
  EXPECT_EQ(result->failure->provider, "sip");
  EXPECT_EQ(result->conversation_id, "conv_1");
  // Fields unconfirmed upstream are optional.
  const EventResult bare = ParseEvent(R"({"type":"call_initiation_failure","data":{}})");
  ASSERT_TRUE(bare.has_value());
  EXPECT_EQ(bare->failure->failure_reason, "unknown");
  EXPECT_EQ(bare->conversation_id, "");
}

TEST(Event, UnknownTypesAreKept) {
  const EventResult result =
      ParseEvent(R"({"type":"post_call_something_new","data":{"conversation_id":"c1","n":[1,2]}})");
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->kind, EventType::kOther);
  EXPECT_EQ(result->type, "post_call_something_new");
  EXPECT_EQ(result->conversation_id, "c1");
  EXPECT_EQ(DataOf(*result).at("n").as_array().size(), 2u);
}

TEST(Event, PreciseErrors) {
  EventError error = ErrorOf("{\n  \"type\": \"x\",\n  oops\n}");
  EXPECT_EQ(error.code, "invalid_json");
  EXPECT_EQ(error.line, 3u);
  EXPECT_EQ(error.column, 3u);
  ASSERT_TRUE(error.offset);
  EXPECT_EQ(*error.offset, 19u);
  EXPECT_EQ(ErrorOf("").code, "invalid_json");
  EXPECT_EQ(ErrorOf(R"({"type":"x")").code, "invalid_json");
  EXPECT_EQ(ErrorOf("[1,2]").code, "invalid_json");
  EXPECT_EQ(ErrorOf("\"\xff\"").code, "invalid_json");  // not UTF-8

  error = ErrorOf(R"({"data":{}})");
  EXPECT_EQ(error.code, "missing_field");
  EXPECT_EQ(error.field, "type");
  error = ErrorOf(R"({"type":"x"})");
  EXPECT_EQ(error.code, "missing_field");
  EXPECT_EQ(error.field, "data");
  error = ErrorOf(R"({"type":7,"data":{}})");
  EXPECT_EQ(error.code, "invalid_field");
  EXPECT_EQ(error.field, "type");
  EXPECT_EQ(ErrorOf(R"({"type":"","data":{}})").field, "type");
  error = ErrorOf(R"({"type":"x","data":[]})");
  EXPECT_EQ(error.code, "invalid_field");
  EXPECT_EQ(error.field, "data");
  EXPECT_NE(error.message.find("an array"), std::string::npos);
  error = ErrorOf(R"({"type":"x","data":{"conversation_id":5}})");
  EXPECT_EQ(error.field, "data.conversation_id");
  error = ErrorOf(R"({"type":"post_call_transcription","data":{"status":"done"}})");
  EXPECT_EQ(error.code, "missing_field");
  EXPECT_EQ(error.field, "data.conversation_id");
}

TEST(Event, DeepNestingIsBoundedNotACrash) {
  std::string deep = R"({"type":"x","data":{"a":)";
  for (int i = 0; i < 100; ++i)
    deep += "[";
  for (int i = 0; i < 100; ++i)
    deep += "]";
  deep += "}}";
  EXPECT_EQ(ErrorOf(deep).code, "invalid_json");
  std::string ok = R"({"type":"x","data":{"a":)";
  for (int i = 0; i < 40; ++i)
    ok += "[";
  for (int i = 0; i < 40; ++i)
    ok += "]";
  ok += "}}";
  EXPECT_TRUE(ParseEvent(ok).has_value());
}

TEST(Event, BestEffortTypedViewNeverRefusesOptionalFields) {
  const EventResult result = ParseEvent(
      R"({"type":"post_call_transcription","data":{"conversation_id":"c","status":5,
          "transcript":[1,{"role":2,"message":{"x":1}},{"role":"user","message":"hi"}],
          "metadata":"nope","analysis":[]}})");
  ASSERT_TRUE(result.has_value()) << result.error().message;
  EXPECT_EQ(TranscriptionOf(*result)->status, "");
  ASSERT_EQ(TranscriptionOf(*result)->transcript.size(), 2u);
  EXPECT_EQ(TranscriptionOf(*result)->transcript[1].message, "hi");
  EXPECT_FALSE(TranscriptionOf(*result)->call_duration_secs);
}

// ParseEvent checks ordinary bodies in one pass without a tree; ParseEventWithTree is the
// reference. Both must give the same event or the same error, field by field.
void ExpectBothParsesAgree(std::string_view body) {
  SCOPED_TRACE(std::string(body.substr(0, 200)));
  const EventResult one_pass = ParseEvent(std::string(body));
  const EventResult tree = ParseEventWithTree(std::string(body));
  ASSERT_EQ(one_pass.has_value(), tree.has_value())
      << (one_pass ? tree.error().message : one_pass.error().message);
  if (!one_pass) {
    EXPECT_EQ(one_pass.error().code, tree.error().code);
    EXPECT_EQ(one_pass.error().field, tree.error().field);
    EXPECT_EQ(one_pass.error().message, tree.error().message);
    EXPECT_EQ(one_pass.error().offset, tree.error().offset);
    return;
  }
  EXPECT_EQ(one_pass->type, tree->type);
  EXPECT_EQ(one_pass->kind, tree->kind);
  EXPECT_EQ(one_pass->event_timestamp, tree->event_timestamp);
  EXPECT_EQ(one_pass->conversation_id, tree->conversation_id);
  EXPECT_EQ(one_pass->agent_id, tree->agent_id);
  EXPECT_EQ(one_pass->raw, body);
  EXPECT_EQ(tree->raw, body);
  EXPECT_EQ(DataOf(*one_pass), DataOf(*tree));
  ASSERT_EQ(one_pass->failure.has_value(), tree->failure.has_value());
  if (one_pass->failure) {
    EXPECT_EQ(one_pass->failure->failure_reason, tree->failure->failure_reason);
    EXPECT_EQ(one_pass->failure->provider, tree->failure->provider);
  }
}

TEST(Event, OnePassEnvelopeAgreesWithTheTree) {
  const std::vector<std::string> bodies = {
      kTranscription,
      // Escapes in keys and values: the parser hands these over in parts.
      R"({"t\u0079pe":"post_call_transcription","data":{"conversation_\u0069d":"c\"1\\","a\u0067ent_id":"\u00e9\ud83d\ude00"}})",
      // Duplicate keys: the last one counts, and a repeated data or metadata starts afresh.
      R"({"type":"a","type":"post_call_transcription","data":{"conversation_id":"x"},"data":{"conversation_id":"y"}})",
      R"({"type":"post_call_transcription","data":{"conversation_id":"x","agent_id":"g"},"data":{"status":"done"}})",
      R"({"type":"call_initiation_failure","data":{"failure_reason":"busy","metadata":{"type":"sip"},"metadata":{"x":1}}})",
      R"({"type":"call_initiation_failure","data":{"metadata":{"type":"twilio","body":{"type":"nested"}},"failure_reason":7}})",
      R"({"type":"call_initiation_failure","data":{"metadata":"sip","failure_reason":"no-answer"}})",
      R"({"type":"call_initiation_failure","data":{"metadata":{"type":["sip"]}}})",
      // Look-alike fields deeper down or outside data are not the envelope's.
      R"({"type":"post_call_transcription","data":{"x":{"conversation_id":"no"},"conversation_id":"yes","list":[{"agent_id":"no"}]},"conversation_id":"no"})",
      R"({"data":{"type":"no","conversation_id":"c"},"type":"x"})",
      R"({"type":"x","data":{"conversation_id":null,"agent_id":5}})",
      R"({"type":"x","event_timestamp":"1739537297","data":{}})",
      R"({"type":"x","event_timestamp":1739537297.75,"data":{}})",
      R"({"type":"x","event_timestamp":18446744073709551615,"data":{}})",
      R"({"type":"x","event_timestamp":"12a","data":{}})",
      R"({"type":"x","event_timestamp":{"s":1},"data":{}})",
      R"({"type":"x","event_timestamp":null,"data":{}})",
      R"({"type":{"a":"b"},"data":{}})",
      R"({"type":"x","data":"text"})",
      R"({"type":"x","data":{"conversation_id":["c"]}})",
      R"({"type":"post_call_audio","data":{"conversation_id":"c1","full_audio":"SUQz","agent_id":"a"}})",
      R"({"type":"post_call_audio","data":{"conversation_id":"../x","full_audio":"SUQz"}})",
      " \n{\"type\":\"x\",\"data\":{}}\n\t ",
      R"({"type":"x","data":{}} trailing)",
      R"({"type":"x","data":{}}{})",
      R"("just a string")",
      "42",
      "null",
      "",
      R"({"type":"x","data":{"a":[1,2,{"b":[true,false,null]}],)",
      "{\"type\":\"x\",\"data\":{\"bad\":\"\xc3\x28\"}}",
      R"({"type":"x",/* comment */"data":{}})",
  };
  for (const std::string& body : bodies)
    ExpectBothParsesAgree(body);
}

TEST(Event, TrailingDataIsNotJson) {
  const EventError error = ErrorOf(R"({"type":"x","data":{}} {"type":"y","data":{}})");
  EXPECT_EQ(error.code, "invalid_json");
  EXPECT_EQ(error.offset, 23u);
  EXPECT_TRUE(ParseEvent("{\"type\":\"x\",\"data\":{}}\r\n").has_value());  // whitespace is fine
}

TEST(Event, LargeBodiesTakeTheTreePathWithTheSameResult) {
  std::string body =
      R"({"type":"post_call_transcription","data":{"conversation_id":"big","transcript":[)";
  while (body.size() < 1024 * 1024 + 100)
    body += R"({"role":"user","message":"a long call goes on and on and on"},)";
  body += R"({"role":"agent","message":"bye"}]}})";
  ExpectBothParsesAgree(body);
  const EventResult result = ParseEvent(body);
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->conversation_id, "big");
  EXPECT_EQ(TranscriptionOf(*result)->transcript.back().message, "bye");
}

TEST(Event, DataOfIsAnIndependentCopy) {
  boost::json::object data;
  {
    const EventResult result =
        ParseEvent(R"({"type":"x","data":{"k":"a value long enough to allocate"}})");
    ASSERT_TRUE(result.has_value());
    data = DataOf(*result);
  }  // the event is gone
  EXPECT_EQ(data.at("k").as_string(), "a value long enough to allocate");
  Event empty;
  EXPECT_TRUE(DataOf(empty).empty());
}

}  // namespace
}  // namespace callgate::webhook
