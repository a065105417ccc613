// The operator's banner and the structured log line.
#include "webhook/banner.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace callgate::webhook {
namespace {

StoredEvent Stored(const std::string& body) {
  EventResult parsed = ParseEvent(body);
  EXPECT_TRUE(parsed.has_value()) << body;
  StoredEvent stored;
  stored.event_id = "evt_1";
  stored.seq = 1;
  stored.type = parsed->type;
  stored.conversation_id = parsed->conversation_id;
  stored.agent_id = parsed->agent_id;
  stored.event_timestamp = parsed->event_timestamp;
  stored.received_at_ms = 1'700'000'000'000;
  stored.verification = "verified";
  stored.event = std::make_shared<Event>(std::move(*parsed));
  return stored;
}

const char kCall[] = R"({"type":"post_call_transcription","event_timestamp":1739537297,"data":{
  "agent_id":"agent_7","conversation_id":"conv_42","status":"done",
  "transcript":[{"role":"agent","message":"Hello, parking office.","time_in_call_secs":0},
                {"role":"user","message":"Hi, ticket 12345.","time_in_call_secs":65}],
  "metadata":{"call_duration_secs":83},
  "analysis":{"call_successful":"success","transcript_summary":"Dismissed."}}})";

TEST(Banner, ShowsTheCallTurnByTurn) {
  const std::string banner =
      RenderBanner(Stored(kCall), "https://gw.example/api/conversations/conv_42/audio");
  EXPECT_NE(banner.find("ElevenLabs webhook: post_call_transcription"), std::string::npos)
      << banner;
  EXPECT_NE(banner.find("Conversation:  conv_42"), std::string::npos) << banner;
  EXPECT_NE(banner.find("Status:        done"), std::string::npos) << banner;
  EXPECT_NE(banner.find("Duration:      1:23 (83 s)"), std::string::npos) << banner;
  EXPECT_NE(banner.find("[0:00] Agent: Hello, parking office."), std::string::npos) << banner;
  EXPECT_NE(banner.find("[1:05] User: Hi, ticket 12345."), std::string::npos) << banner;
  EXPECT_NE(banner.find("Recording:     https://gw.example/api/conversations/conv_42/audio"),
            std::string::npos)
      << banner;
  EXPECT_NE(banner.find("Source:        webhook (verified)"), std::string::npos) << banner;
  EXPECT_EQ(banner.back(), '\n');
}

TEST(Banner, TruncatesAndNeutralisesUntrustedText) {
  std::string turns;
  for (int i = 0; i < 250; ++i) {
    if (i) turns += ",";
    turns += R"({"role":"user","message":"turn )" + std::to_string(i) + R"("})";
  }
  const std::string body =
      R"({"type":"post_call_transcription","data":{"conversation_id":"c","status":"done",)"
      R"("transcript":[{"role":"agent","message":"evil \u001b[2J\u009b31m bell\u0007 )" +
      std::string(5000, 'x') + R"("},)" + turns + "]}}";
  const std::string banner = RenderBanner(Stored(body), "");
  EXPECT_EQ(banner.find('\x1b'), std::string::npos);
  EXPECT_EQ(banner.find('\x07'), std::string::npos);
  EXPECT_EQ(banner.find("\xc2\x9b"), std::string::npos);
  EXPECT_NE(banner.find("evil ?[2J?31m bell?"), std::string::npos);
  EXPECT_NE(banner.find(std::string(1000, 'x') + "..."), std::string::npos);
  EXPECT_EQ(banner.find(std::string(2100, 'x')), std::string::npos);
  EXPECT_NE(banner.find("... 51 more turns"), std::string::npos);  // 251 turns, 200 shown

  // Cut at a UTF-8 boundary, never inside a character.
  EXPECT_EQ(SanitizeForTerminal("\xc3\xa9\xc3\xa9", 3), "\xc3\xa9...");
  EXPECT_EQ(SanitizeForTerminal("a\nb\tc", 10), "a b c");
  EXPECT_EQ(SanitizeForTerminal("\xff", 10), "?");
}

TEST(Banner, OtherTypes) {
  const std::string failure =
      RenderBanner(Stored(R"({"type":"call_initiation_failure","data":{"conversation_id":"conv_9",
                 "failure_reason":"busy","metadata":{"type":"sip"}}})"),
                   "");
  EXPECT_NE(failure.find("Failure:       busy (sip)"), std::string::npos) << failure;
  const std::string other =
      RenderBanner(Stored(R"({"type":"brand_new","data":{"alpha":1,"beta":2}})"), "");
  EXPECT_NE(other.find("Data fields:   alpha, beta"), std::string::npos) << other;
}

TEST(Banner, LogLineIsOneJsonObjectWithoutTranscriptText) {
  const std::string line = RenderLogLine(Stored(kCall), "https://x/audio");
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto json = boost::json::parse(line).as_object();
  EXPECT_EQ(json.at("event_id").as_string(), "evt_1");
  EXPECT_EQ(json.at("conversation_id").as_string(), "conv_42");
  EXPECT_EQ(json.at("status").as_string(), "done");
  EXPECT_EQ(json.at("turns").as_int64(), 2);
  EXPECT_EQ(json.at("duration_secs").as_double(), 83.0);
  EXPECT_EQ(json.at("recording_url").as_string(), "https://x/audio");
  EXPECT_EQ(line.find("parking office"), std::string::npos);
}

TEST(Banner, SinkModes) {
  std::vector<std::string> written;
  auto write = [&](const std::string& text) { written.push_back(text); };
  BannerSink quiet(BannerMode::kQuiet, write);
  quiet.OnStored(Stored(kCall));
  EXPECT_TRUE(written.empty());
  BannerSink text(BannerMode::kText, write, [](std::string_view id) {
    return "http://gw/api/conversations/" + std::string(id) + "/audio";
  });
  text.OnStored(Stored(kCall));
  ASSERT_EQ(written.size(), 1u);
  EXPECT_NE(written[0].find("http://gw/api/conversations/conv_42/audio"), std::string::npos);
  BannerSink json(BannerMode::kJson, write);
  json.OnStored(Stored(kCall));
  ASSERT_EQ(written.size(), 2u);
  EXPECT_EQ(written[1].front(), '{');
}

}  // namespace
}  // namespace callgate::webhook
