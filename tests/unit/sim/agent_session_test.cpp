// The scripted agent's state machine (sim/agent/session) driven without sockets or espeak-ng:
// a fake connection records frames, the harness's FakeScheduler runs timers on demand, a
// ManualClock stands still unless advanced, and a fake Speak returns a tone later.
#include "sim/agent/session.hpp"

#include "audio/codec.hpp"
#include "audio/speech.hpp"
#include "sim/agent/protocol.hpp"
#include "unit/sim/sim_harness.hpp"

#include <openssl/sha.h>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <set>

namespace callgate::sim::agent {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using sim::testing::SimHarness;

class FakeConnection final : public http::WebSocketConnection {
 public:
  bool SendText(std::string message) override {
    if (closed || aborted) return false;
    frames.push_back(json::parse(message).as_object());
    return true;
  }
  void Close(std::uint16_t code, std::string reason) override {
    if (closed) return;
    closed = true;
    close_code = code;
    close_reason = std::move(reason);
  }
  void Abort() override { aborted = true; }
  const std::string& remote() const override { return remote_; }

  std::vector<json::object> Of(std::string_view type) const {
    std::vector<json::object> out;
    for (const auto& frame : frames) {
      if (frame.at("type").as_string() == type) out.push_back(frame);
    }
    return out;
  }

  std::vector<json::object> frames;
  bool closed = false, aborted = false;
  std::uint16_t close_code = 0;
  std::string close_reason;

 private:
  std::string remote_ = "127.0.0.1:1";
};

struct PendingSpeech {
  std::string text;
  int rate;
  std::function<void(std::vector<std::int16_t>)> done;
};

SimOptions Agents() {
  SimOptions options;
  options.agents = {
      {.agent_id = "agent_open",
       .name = "Open",
       .is_public = true,
       .first_message = "Hello there, this is a fairly long greeting from the agent.",
       .input_format = "pcm_16000",
       .output_format = "pcm_16000"},
      {.agent_id = "agent_strict",
       .name = "Strict",
       .is_public = true,
       .first_message = "Hi {{name}}.",
       .output_format = "ulaw_8000",
       .allow_overrides = false},
  };
  return options;
}

std::string Chunk(const std::vector<std::int16_t>& samples) {
  const auto bytes = audio::EncodePcm16Le(samples);
  return R"({"user_audio_chunk":")" + Base64Encode(bytes.data(), bytes.size()) + "\"}";
}

class AgentSessionTest : public ::testing::Test {
 protected:
  AgentSessionTest() : harness_(Agents()) {}

  void Open(const std::string& agent_id, ConversationServiceOptions options = {},
            std::optional<WebSocketFault> fault = std::nullopt) {
    SessionSettings settings;
    settings.session_id = "ws_1";
    settings.agent_id = agent_id;
    settings.agent = harness_.simulator->FindAgent(agent_id);
    settings.options = options;
    settings.fault = fault;
    session_ = std::make_shared<Session>(
        SessionDependencies{.simulator = *harness_.simulator,
                            .scheduler = harness_.scheduler,
                            .clock = harness_.clock,
                            .speak =
                                [this](std::string text, int rate, std::string,
                                       std::function<void(std::vector<std::int16_t>)> done) {
                                  speech_.push_back({std::move(text), rate, std::move(done)});
                                  return true;
                                },
                            .on_finished = [this](const std::string&) { ++finished_; }},
        std::move(settings));
    session_->OnOpen(connection_);
  }

  void Init(const std::string& extra = "") {
    session_->OnText(R"({"type":"conversation_initiation_client_data")" + extra + "}");
  }

  // Completes the oldest pending synthesis with `seconds` of a loud tone.
  std::string Speak(double seconds = 1.0) {
    EXPECT_FALSE(speech_.empty());
    if (speech_.empty()) return {};
    auto pending = std::move(speech_.front());
    speech_.erase(speech_.begin());
    pending.done(audio::Tone(440, seconds, pending.rate, 0.5));
    return pending.text;
  }

  // Runs timers until nothing is pending or `limit` rounds passed.
  void Drain(int limit = 200) {
    for (int i = 0; i < limit && harness_.scheduler.pending() > 0; ++i) {
      harness_.scheduler.RunAll();
      if (connection_->closed || connection_->aborted) break;
    }
  }

  SimHarness harness_;
  std::shared_ptr<FakeConnection> connection_ = std::make_shared<FakeConnection>();
  std::vector<PendingSpeech> speech_;
  std::shared_ptr<Session> session_;
  int finished_ = 0;
};

TEST_F(AgentSessionTest, AnyFirstMessageOtherThanInitiationIsRefused) {
  Open("agent_open");
  session_->OnText(R"({"type":"user_activity"})");
  ASSERT_EQ(connection_->frames.size(), 1u);
  EXPECT_EQ(connection_->frames[0].at("type"), "error");
  EXPECT_EQ(connection_->frames[0].at("error_event").at("code"), 1008);
  EXPECT_EQ(connection_->frames[0].at("error_event").at("error_type"), "invalid_message");
  EXPECT_TRUE(connection_->closed);
  EXPECT_EQ(connection_->close_code, 1008);
  EXPECT_EQ(connection_->close_reason, "invalid_message");
}

TEST_F(AgentSessionTest, MetadataFirstThenTheGreetingWithOneEventIdPerTurn) {
  Open("agent_open", {.audio_chunk = 100ms});
  Init();
  ASSERT_FALSE(connection_->frames.empty());
  const auto& metadata = connection_->frames[0];
  EXPECT_EQ(metadata.at("type"), "conversation_initiation_metadata");
  const auto& event = metadata.at("conversation_initiation_metadata_event");
  EXPECT_EQ(event.at("agent_output_audio_format"), "pcm_16000");
  EXPECT_EQ(event.at("user_input_audio_format"), "pcm_16000");
  EXPECT_EQ(session_->conversation_id(), event.at("conversation_id").as_string());
  ASSERT_EQ(speech_.size(), 1u);
  EXPECT_EQ(speech_[0].rate, 16000);
  EXPECT_EQ(Speak(1.0), "Hello there, this is a fairly long greeting from the agent.");

  // agent_response comes with the first audio chunk; the rest follow on the scheduler.
  ASSERT_EQ(connection_->frames.size(), 3u);
  EXPECT_EQ(connection_->frames[1].at("type"), "agent_response");
  const auto id = connection_->frames[1].at("agent_response_event").at("event_id").as_int64();
  Drain(20);
  const auto audio = connection_->Of("audio");
  ASSERT_EQ(audio.size(), 10u);  // 1 s in 100 ms chunks
  std::size_t bytes = 0;
  for (const auto& chunk : audio) {
    EXPECT_EQ(chunk.at("audio_event").at("event_id").as_int64(), id);
    bytes += Base64Decode(chunk.at("audio_event").at("audio_base_64").as_string())->size();
  }
  EXPECT_EQ(bytes, 32000u);
  const auto delays = harness_.scheduler.delays();
  EXPECT_GE(std::count(delays.begin(), delays.end(), 100ms), 9);  // paced in real time
  const auto stats = session_->Stats();
  ASSERT_EQ(stats.at("transcript").as_array().size(), 1u);
  EXPECT_EQ(stats.at("transcript").at(0).at("role"), "agent");
  EXPECT_EQ(stats.at("agent_audio_bytes"), 32000);
}

TEST_F(AgentSessionTest, LateTimersDoNotSlowTheAgentSpeechDown) {
  // The wait the session last asked for below a second: the chunk timer's (pings and the
  // inactivity check wait longer).
  const auto chunk_wait = [this] {
    const auto delays = harness_.scheduler.delays();
    for (auto it = delays.rbegin(); it != delays.rend(); ++it) {
      if (*it < 1s) return *it;
    }
    return std::chrono::milliseconds(-1);
  };
  Open("agent_open", {.ping_interval = 60s, .audio_chunk = 100ms});
  Init();
  const auto start = harness_.clock.Now();
  Speak(1.0);  // the first chunk goes at once
  ASSERT_EQ(connection_->Of("audio").size(), 1u);
  EXPECT_EQ(chunk_wait(), 100ms);
  // Every timer fires 30 ms after it was due: each wait is shortened by the lateness, so chunk k
  // still goes out at k * 100 ms + 30 ms, not k * 130 ms.
  for (std::size_t k = 1; k < 10; ++k) {
    harness_.clock.Advance(chunk_wait() + 30ms);
    harness_.scheduler.RunAll();
    ASSERT_EQ(connection_->Of("audio").size(), k + 1);
    EXPECT_EQ(harness_.clock.Now() - start, 100ms * static_cast<int>(k) + 30ms) << "chunk " << k;
    EXPECT_EQ(chunk_wait(), 70ms) << "after chunk " << k;
  }
  // A stall of several seconds restarts the schedule instead of sending a burst.
  Open("agent_open", {.ping_interval = 60s, .audio_chunk = 100ms});
  Init();
  Speak(1.0);
  harness_.clock.Advance(5s);
  harness_.scheduler.RunAll();
  EXPECT_EQ(chunk_wait(), 100ms);
}

TEST_F(AgentSessionTest, UserSpeechInterruptsTheAgentTurn) {
  Open("agent_open", {.audio_chunk = 100ms});
  Init();
  Speak(3.0);
  for (int i = 0; i < 3; ++i)
    harness_.scheduler.RunAll();  // three more chunks
  const auto audio_id = connection_->Of("audio").back().at("audio_event").at("event_id").as_int64();
  ASSERT_EQ(connection_->Of("audio").size(), 4u);
  session_->OnText(Chunk(audio::Tone(300, 0.2, 16000, 0.5)));  // speech starts after 60 ms
  const auto interruptions = connection_->Of("interruption");
  ASSERT_EQ(interruptions.size(), 1u);
  EXPECT_EQ(interruptions[0].at("interruption_event").at("event_id").as_int64(), audio_id);
  const auto corrections = connection_->Of("agent_response_correction");
  ASSERT_EQ(corrections.size(), 1u);
  const auto& correction = corrections[0].at("agent_response_correction_event");
  EXPECT_EQ(correction.at("event_id").as_int64(), audio_id);
  // 4 of 30 chunks spoken: 8 of the greeting's 60 characters, so its first word.
  EXPECT_EQ(correction.at("corrected_agent_response"), "Hello");
  // The REST transcript, like the statistics, keeps what was spoken.
  const auto conversation =
      harness_.Api("GET", "/v1/convai/conversations/" + session_->conversation_id()).Json();
  EXPECT_EQ(conversation.at("transcript").at(0).at("message"), "Hello");
  Drain(10);
  EXPECT_EQ(connection_->Of("audio").size(), 4u) << "no audio of the interrupted turn";
  // The user stops: transcript with the simulated text, then the agent's first reply.
  session_->OnText(Chunk(std::vector<std::int16_t>(16000, 0)));
  const auto transcripts = connection_->Of("user_transcript");
  ASSERT_EQ(transcripts.size(), 1u);
  EXPECT_EQ(transcripts[0].at("user_transcription_event").at("user_transcript"),
            "(user spoke for 0.2 s)");
  EXPECT_GT(transcripts[0].at("user_transcription_event").at("event_id").as_int64(), audio_id);
  ASSERT_EQ(speech_.size(), 1u);
  EXPECT_EQ(speech_[0].text, "Thanks, I understand. Let me note that down for you.");
}

TEST_F(AgentSessionTest, AWholeConversationEndsWithEndCallAndClose1000) {
  Open("agent_open", {.turns = 2});
  Init(R"(,"dynamic_variables":{"purpose":"your order"})");
  Speak(0.3);
  Drain();
  session_->OnText(R"({"type":"user_message","text":"I have a question"})");
  EXPECT_EQ(Speak(0.3), "Thanks, I understand. I'm noting that down about your order.");
  Drain();
  session_->OnText(R"({"type":"user_message","text":"That is all"})");
  EXPECT_EQ(Speak(0.3), "Thank you for your time. Goodbye!");
  Drain();
  ASSERT_TRUE(connection_->closed);
  EXPECT_EQ(connection_->close_code, 1000);
  const auto& last = connection_->frames.back();
  EXPECT_EQ(last.at("type"), "agent_tool_response");
  EXPECT_EQ(last.at("agent_tool_response").at("tool_name"), "end_call");
  EXPECT_EQ(last.at("agent_tool_response").at("tool_type"), "system");
  EXPECT_EQ(last.at("agent_tool_response").at("is_called"), true);

  // Each new event id is larger than every id sent before it (a turn's audio keeps its id
  // while pings take new ones).
  std::int64_t highest = 0;
  std::set<std::int64_t> seen;
  for (const auto& frame : connection_->frames) {
    for (const auto& [key, payload] : frame) {
      if (!payload.is_object()) continue;
      if (const auto* id = payload.as_object().if_contains("event_id")) {
        if (seen.insert(id->as_int64()).second) {
          EXPECT_GT(id->as_int64(), highest) << frame.at("type");
          highest = id->as_int64();
        }
      }
    }
  }
  const std::string id = session_->conversation_id();
  const auto conversation = harness_.Api("GET", "/v1/convai/conversations/" + id).Json();
  const auto& transcript = conversation.at("transcript").as_array();
  ASSERT_EQ(transcript.size(), 5u);
  EXPECT_EQ(transcript[1].at("role"), "user");
  EXPECT_EQ(transcript[1].at("message"), "I have a question");
  EXPECT_EQ(transcript[4].at("message"), "Thank you for your time. Goodbye!");
  EXPECT_NE(conversation.at("status"), "in-progress");
  session_->OnClose(1000, "");
  EXPECT_EQ(finished_, 1);
  EXPECT_EQ(session_->Stats().at("close").at("by"), "server");
}

TEST_F(AgentSessionTest, OverridesAndMissingVariablesAreRefused) {
  Open("agent_strict");
  Init(R"(,"conversation_config_override":{"agent":{"first_message":"Yo"}})");
  EXPECT_EQ(connection_->close_code, 1008);
  EXPECT_EQ(connection_->close_reason, "override_error");

  connection_ = std::make_shared<FakeConnection>();
  Open("agent_strict");
  Init();
  EXPECT_EQ(connection_->close_code, 1008);
  EXPECT_EQ(connection_->close_reason, "missing_dynamic_variable");
  EXPECT_EQ(connection_->frames[0].at("error_event").at("error_type"), "missing_dynamic_variable");

  connection_ = std::make_shared<FakeConnection>();
  Open("agent_strict");
  Init(R"(,"dynamic_variables":{"name":"Ann"})");
  EXPECT_FALSE(connection_->closed);
  EXPECT_EQ(connection_->frames[0]
                .at("conversation_initiation_metadata_event")
                .at("agent_output_audio_format"),
            "ulaw_8000");
  ASSERT_EQ(speech_.size(), 1u);
  EXPECT_EQ(speech_[0].text, "Hi Ann.");
  EXPECT_EQ(speech_[0].rate, 8000);
}

TEST_F(AgentSessionTest, PingsCarryThePreviousRoundTrip) {
  Open("agent_open", {.ping_interval = 1000ms});
  Init();
  harness_.scheduler.RunAll();  // the first ping (and the inactivity check)
  auto pings = connection_->Of("ping");
  ASSERT_EQ(pings.size(), 1u);
  EXPECT_TRUE(pings[0].at("ping_event").at("ping_ms").is_null());
  const auto id = pings[0].at("ping_event").at("event_id").as_int64();
  harness_.clock.Advance(30ms);
  session_->OnText(R"({"type":"pong","event_id":)" + std::to_string(id) + "}");
  harness_.scheduler.RunAll();
  pings = connection_->Of("ping");
  ASSERT_EQ(pings.size(), 2u);
  EXPECT_EQ(pings[1].at("ping_event").at("ping_ms"), 30);
  EXPECT_GT(pings[1].at("ping_event").at("event_id").as_int64(), id);
  const auto stats = session_->Stats();
  EXPECT_EQ(stats.at("pings").at(0).at("pong_received"), true);
  EXPECT_EQ(stats.at("pings").at(0).at("latency_ms"), 30);
  EXPECT_EQ(stats.at("pings").at(1).at("pong_received"), false);
}

TEST_F(AgentSessionTest, InactivityClosesWith1002) {
  Open("agent_open", {.inactivity_timeout = 5000ms});
  Init();
  Speak(0.2);
  Drain(5);  // the greeting is over
  harness_.clock.Advance(4s);
  session_->OnText(R"({"type":"user_activity"})");
  harness_.clock.Advance(4s);
  harness_.scheduler.RunAll();
  EXPECT_FALSE(connection_->closed) << "user_activity reset the timer";
  harness_.clock.Advance(2s);
  Drain();
  ASSERT_TRUE(connection_->closed);
  EXPECT_EQ(connection_->close_code, 1002);
  EXPECT_EQ(connection_->Of("error").at(0).at("error_event").at("error_type"),
            "transport_receive_timeout");
}

TEST_F(AgentSessionTest, ClientToolCallWaitsForItsResult) {
  Open("agent_open");
  Init(R"(,"dynamic_variables":{"sim_client_tool":"check_account"})");
  Speak(0.2);
  Drain(5);
  session_->OnText(R"({"type":"user_message","text":"check it"})");
  const auto calls = connection_->Of("client_tool_call");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].at("client_tool_call").at("tool_name"), "check_account");
  EXPECT_TRUE(speech_.empty()) << "the agent waits for the result";
  const std::string call_id(calls[0].at("client_tool_call").at("tool_call_id").as_string());
  session_->OnText(R"({"type":"client_tool_result","tool_call_id":")" + call_id +
                   R"(","result":"active","is_error":false})");
  EXPECT_EQ(speech_.size(), 1u);
  const auto results = session_->Stats().at("tool_results").as_array();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_EQ(results[0].at("result"), "active");
  EXPECT_EQ(results[0].at("timed_out"), false);
}

TEST_F(AgentSessionTest, StatsHashTheUserAudioAndCountEvents) {
  Open("agent_open");
  Init();
  const auto samples = audio::Tone(200, 0.05, 16000, 0.1);
  auto bytes = audio::EncodePcm16Le(samples);
  bytes.push_back(7);  // an odd byte: hashed as received, kept for the next chunk
  session_->OnText(R"({"user_audio_chunk":")" + Base64Encode(bytes.data(), bytes.size()) + "\"}");
  session_->OnText(R"({"type":"contextual_update","text":"viewing pricing"})");
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(bytes.data(), bytes.size(), digest);
  std::string hex;
  for (unsigned char byte : digest) {
    char two[3];
    std::snprintf(two, sizeof two, "%02x", byte);
    hex += two;
  }
  const auto stats = session_->Stats();
  EXPECT_EQ(stats.at("user_audio_sha256").as_string(), hex);
  EXPECT_EQ(stats.at("user_audio_bytes"), static_cast<std::int64_t>(bytes.size()));
  EXPECT_EQ(stats.at("events_sent").at("conversation_initiation_metadata"), 1);
  EXPECT_EQ(stats.at("contextual_updates").at(0).at("text"), "viewing pricing");
  EXPECT_EQ(stats.at("init_message").at("type"), "conversation_initiation_client_data");
}

TEST_F(AgentSessionTest, DropFaultAbortsAfterNEvents) {
  Open("agent_open", {}, WebSocketFault{.drop = true, .after_events = 2});
  Init();
  Speak(1.0);
  Drain();
  EXPECT_TRUE(connection_->aborted);
  EXPECT_FALSE(connection_->closed);
  EXPECT_EQ(connection_->frames.size(), 2u);
  EXPECT_EQ(session_->Stats().at("close").at("code"), 1006);
}

TEST_F(AgentSessionTest, ScheduledTasksOutliveTheSessionSafely) {
  Open("agent_open");
  Init();
  Speak(1.0);
  session_->OnClose(1000, "User ended conversation");
  EXPECT_EQ(finished_, 1);
  session_.reset();
  Drain();  // timers hold weak pointers: nothing to do, nothing dangles
  EXPECT_FALSE(connection_->closed);
}

}  // namespace
}  // namespace callgate::sim::agent
