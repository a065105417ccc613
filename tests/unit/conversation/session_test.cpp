// The session state machine, driven directly: server frames in, actions out, with a manual
// clock and scripted endpoints (no sockets, no threads).
#include "conversation/session.hpp"

#include "audio/codec.hpp"
#include "audio/speech.hpp"
#include "conversation/protocol.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <deque>

namespace callgate::conversation {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using audio::backends::AudioInput;
using audio::backends::AudioOutput;
using audio::backends::BackendError;

// Delivers scripted samples: everything queued is available at once.
class FakeInput final : public AudioInput {
 public:
  explicit FakeInput(int rate) : rate_(rate) {}
  std::string_view kind() const override { return "null"; }
  std::string Describe() const override { return "fake input"; }
  int sample_rate() const override { return rate_; }
  std::optional<BackendError> Start() override {
    started_ = true;
    return std::nullopt;
  }
  void Stop() override { started_ = false; }
  std::size_t Read(std::span<std::int16_t> out) override {
    const std::size_t n = std::min(out.size(), queued_.size());
    std::copy_n(queued_.begin(), n, out.begin());
    queued_.erase(queued_.begin(), queued_.begin() + static_cast<std::ptrdiff_t>(n));
    return n;
  }
  void Queue(std::span<const std::int16_t> samples) {
    queued_.insert(queued_.end(), samples.begin(), samples.end());
  }
  void Break() { Fail({BackendError::Code::kDeviceUnavailable, "fake device unplugged"}); }

 private:
  int rate_;
  std::deque<std::int16_t> queued_;
};

// Wants `per_tick` samples each tick and records them.
class FakeOutput final : public AudioOutput {
 public:
  FakeOutput(int rate, std::size_t per_tick) : rate_(rate), per_tick_(per_tick) {}
  std::string_view kind() const override { return "null"; }
  std::string Describe() const override { return "fake output"; }
  int sample_rate() const override { return rate_; }
  std::optional<BackendError> Start() override {
    started_ = true;
    return std::nullopt;
  }
  void Stop() override { started_ = false; }
  std::size_t WritableFrames() override {
    const std::size_t n = owed_ ? per_tick_ : 0;
    owed_ = false;
    return n;
  }
  std::size_t Write(std::span<const std::int16_t> samples) override {
    written.insert(written.end(), samples.begin(), samples.end());
    return samples.size();
  }
  std::size_t QueuedFrames() const override { return queued_frames; }
  void NextTick() { owed_ = true; }

  std::vector<std::int16_t> written;
  std::size_t queued_frames = 0;

 private:
  int rate_;
  std::size_t per_tick_;
  bool owed_ = false;
};

std::string Metadata(std::string_view in = "pcm_16000", std::string_view out = "pcm_16000") {
  return json::serialize(json::object{{"type", "conversation_initiation_metadata"},
                                      {"conversation_initiation_metadata_event",
                                       {{"conversation_id", "conv_1"},
                                        {"agent_output_audio_format", out},
                                        {"user_input_audio_format", in}}}});
}

std::string AudioFrame(std::span<const std::int16_t> samples, std::int64_t event_id) {
  const auto bytes = audio::EncodePcm16Le(samples);
  return json::serialize(json::object{
      {"type", "audio"},
      {"audio_event", {{"audio_base_64", Base64Encode(bytes)}, {"event_id", event_id}}}});
}

std::string Event(std::string_view type, std::string_view key, json::object payload) {
  return json::serialize(json::object{{"type", type}, {key, std::move(payload)}});
}

// A recognisable signal that never repeats within a test and never contains zero: noise
// seeded by `seed`.
std::vector<std::int16_t> Ramp(std::size_t n, std::int16_t seed) {
  std::vector<std::int16_t> samples(n);
  std::uint32_t state = 2654435761u * static_cast<std::uint32_t>(seed + 1);
  for (auto& sample : samples) {
    state = state * 1664525u + 1013904223u;
    sample = static_cast<std::int16_t>(1 + (state >> 17) % 20000);
  }
  return samples;
}

bool Contains(const std::vector<std::int16_t>& haystack, std::span<const std::int16_t> needle) {
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

class SessionMachineTest : public ::testing::Test {
 protected:
  static constexpr int kRate = 16000;
  static constexpr std::size_t kTick = kRate / 50;  // 20 ms

  SessionMachine& Make(SessionMachineOptions options = {}) {
    machine_ = std::make_unique<SessionMachine>(
        clock_, std::move(options), SessionIdentity{"sess_1", "agent_1", "null", "null"});
    machine_->Begin();
    machine_->Connecting();
    return *machine_;
  }

  // Opened, metadata, audio started at 16 kHz both ways.
  SessionMachine& Active(SessionMachineOptions options = {}) {
    auto& machine = Make(std::move(options));
    const auto opened = machine.Opened({});
    EXPECT_EQ(opened.send.size(), 1u);
    const auto meta = machine.Receive(Metadata());
    EXPECT_TRUE(meta.open_audio);
    machine.StartAudio(kRate, kRate, false);
    return machine;
  }

  Actions Tick() {
    clock_.Advance(20ms);
    output_.NextTick();
    return machine_->Tick(input_, output_);
  }

  // An active machine with `chunk_early`, ticked once per entry of `captures` (samples queued
  // for that tick): the sizes of the user_audio_chunk payloads sent, decoded from the frames.
  std::vector<std::size_t> ChunkSizes(const std::vector<std::size_t>& captures,
                                      std::chrono::milliseconds chunk_early) {
    SessionMachineOptions options;
    options.audio.chunk_early = chunk_early;
    Active(options);
    std::vector<std::size_t> sizes;
    for (std::size_t i = 0; i < captures.size(); ++i) {
      input_.Queue(Ramp(captures[i], static_cast<std::int16_t>(i)));
      for (const auto& frame : Tick().send) {
        const auto bytes =
            Base64Decode(json::parse(frame.text).as_object().at("user_audio_chunk").as_string());
        EXPECT_TRUE(bytes && bytes->size() == frame.audio_bytes);
        sizes.push_back(frame.audio_bytes);
      }
    }
    return sizes;
  }
  // The engine's default for 50 ms chunks: 25 ms ticks, early half a tick.
  static constexpr std::chrono::milliseconds kEarly{12};

  // Ticks until the machine finishes or wants to close (at most `limit` ticks).
  Actions TickUntilEnd(int limit = 1000) {
    for (int i = 0; i < limit; ++i) {
      auto actions = Tick();
      if (actions.finished || actions.close) return actions;
    }
    ADD_FAILURE() << "did not end";
    return {};
  }

  core::ManualClock clock_;
  FakeInput input_{kRate};
  FakeOutput output_{kRate, kTick};
  std::unique_ptr<SessionMachine> machine_;
};

TEST_F(SessionMachineTest, InitiationIsTheFirstFrame) {
  auto& machine = Make();
  InitiationData init;
  init.dynamic_variables = {{"purpose", "your order"}};
  const auto actions = machine.Opened(init);
  ASSERT_EQ(actions.send.size(), 1u);
  EXPECT_EQ(actions.send[0].text, InitiationMessage(init));
  EXPECT_FALSE(actions.send[0].user_audio);
  EXPECT_EQ(machine.status(), Status::kConnecting);
}

TEST_F(SessionMachineTest, MetadataSetsFormatsAndAsksForAudio) {
  auto& machine = Make();
  machine.Opened({});
  const auto actions = machine.Receive(Metadata("ulaw_8000", "pcm_44100"));
  EXPECT_TRUE(actions.open_audio);
  EXPECT_EQ(machine.status(), Status::kActive);
  const auto stats = machine.Stats();
  EXPECT_EQ(stats.conversation_id, "conv_1");
  EXPECT_EQ(stats.user_input_audio_format, "ulaw_8000");
  EXPECT_EQ(stats.agent_output_audio_format, "pcm_44100");
  // A second metadata message changes nothing.
  EXPECT_FALSE(machine.Receive(Metadata("pcm_16000", "pcm_16000")).open_audio);
  EXPECT_EQ(machine.Stats().user_input_audio_format, "ulaw_8000");
}

TEST_F(SessionMachineTest, UnknownFormatEndsWithProtocolError) {
  auto& machine = Make();
  machine.Opened({});
  const auto actions = machine.Receive(Metadata("pcm_16000", "mp3_44100_128"));
  EXPECT_FALSE(actions.open_audio);
  ASSERT_TRUE(actions.close);
  EXPECT_EQ(actions.close->code, 1000);
  const auto closed =
      machine.Closed({.code = 1000, .clean = true, .by_client = true, .opened = true});
  EXPECT_TRUE(closed.finished);
  ASSERT_TRUE(machine.end_reason());
  EXPECT_EQ(machine.end_reason()->code, "protocol_error");
  EXPECT_NE(machine.end_reason()->detail.find("mp3_44100_128"), std::string::npos);
}

TEST_F(SessionMachineTest, PingsAreAnsweredAtOnceWithTheirEventId) {
  auto& machine = Active();
  for (std::int64_t id : {5, 9, 12}) {
    const auto actions =
        machine.Receive(Event("ping", "ping_event", {{"event_id", id}, {"ping_ms", id * 10}}));
    ASSERT_EQ(actions.send.size(), 1u);
    EXPECT_EQ(actions.send[0].text, PongMessage(id));
  }
  machine.Receive(Event("ping", "ping_event", {{"event_id", 13}, {"ping_ms", nullptr}}));
  const auto stats = machine.Stats();
  EXPECT_EQ(stats.pings_answered, 4u);
  EXPECT_EQ(stats.last_ping_ms, 120);  // a null ping_ms keeps the last one
}

TEST_F(SessionMachineTest, AgentAudioIsPlayedInOrder) {
  auto& machine = Make();
  machine.Opened({});
  machine.Receive(Metadata());
  const auto first = Ramp(3200, 100);
  const auto second = Ramp(1600, 5000);
  machine.Receive(AudioFrame(first, 1));  // before the endpoints are open: kept
  machine.StartAudio(kRate, kRate, false);
  machine.Receive(AudioFrame(second, 1));
  for (int i = 0; i < 30; ++i)
    Tick();
  std::vector<std::int16_t> both = first;
  both.insert(both.end(), second.begin(), second.end());
  EXPECT_TRUE(Contains(output_.written, both));
  const auto stats = machine.Stats();
  EXPECT_EQ(stats.audio_events, 2u);
  EXPECT_DOUBLE_EQ(stats.audio_seconds_received, 0.3);
  EXPECT_DOUBLE_EQ(stats.audio_seconds_played, 0.3);
}

TEST_F(SessionMachineTest, InterruptionFlushesBufferedAudioAndDropsItsLateAudio) {
  auto& machine = Active();
  const auto turn = Ramp(kRate * 2, 100);  // 2 s, far ahead of playback
  machine.Receive(AudioFrame(turn, 3));
  for (int i = 0; i < 15; ++i)
    Tick();  // 300 ms: 80 ms prebuffer, then 220 ms of the turn
  machine.Receive(Event("interruption", "interruption_event", {{"event_id", 3}}));
  const auto late = Ramp(1600, 9000);
  machine.Receive(AudioFrame(late, 3));  // stale: same event
  const auto next = Ramp(1600, 20000);
  machine.Receive(AudioFrame(next, 4));
  for (int i = 0; i < 100; ++i)
    Tick();
  // Only the start of the turn was played (plus a few ms of fade), never its tail.
  const std::span<const std::int16_t> tail(turn.data() + kRate, 1600);
  EXPECT_FALSE(Contains(output_.written, tail));
  EXPECT_FALSE(Contains(output_.written, late));
  EXPECT_TRUE(Contains(output_.written, next));
  const auto stats = machine.Stats();
  EXPECT_EQ(stats.interruptions, 1u);
  EXPECT_EQ(stats.stale_audio_events, 1u);
  EXPECT_LT(stats.audio_seconds_played, 0.5);
}

TEST_F(SessionMachineTest, InterruptionWithAReasonInterruptsTheLatestAudio) {
  auto& machine = Active();
  const auto turn = Ramp(kRate, 100);
  machine.Receive(AudioFrame(turn, 7));
  machine.Receive(Event("interruption", "interruption_event", {{"reason", "user"}}));
  machine.Receive(AudioFrame(Ramp(800, 3000), 7));
  for (int i = 0; i < 60; ++i)
    Tick();
  EXPECT_FALSE(Contains(output_.written, std::span<const std::int16_t>(turn.data() + 800, 800)));
  EXPECT_EQ(machine.Stats().stale_audio_events, 1u);
}

TEST_F(SessionMachineTest, InterruptionBeforeTheEndpointsOpenDropsQueuedAudio) {
  auto& machine = Make();
  machine.Opened({});
  machine.Receive(Metadata());
  const auto old_turn = Ramp(1600, 100);
  machine.Receive(AudioFrame(old_turn, 2));
  machine.Receive(Event("interruption", "interruption_event", {{"event_id", 2}}));
  const auto new_turn = Ramp(1600, 7000);
  machine.Receive(AudioFrame(new_turn, 5));
  machine.StartAudio(kRate, kRate, false);
  for (int i = 0; i < 30; ++i)
    Tick();
  EXPECT_FALSE(Contains(output_.written, old_turn));
  EXPECT_TRUE(Contains(output_.written, new_turn));
}

TEST_F(SessionMachineTest, TranscriptTurnsCorrectionsAndTentativeText) {
  auto& machine = Active();
  auto actions = machine.Receive(
      Event("agent_response", "agent_response_event",
            {{"agent_response", "Let me tell you about the complete history"}, {"event_id", 3}}));
  ASSERT_EQ(actions.transcript.size(), 1u);
  EXPECT_EQ(actions.transcript[0].kind, TranscriptUpdate::Kind::kTurn);
  clock_.Advance(1s);
  machine.Receive(Event("tentative_user_transcript", "tentative_user_transcription_event",
                        {{"user_transcript", "I need"}, {"event_id", 4}}));
  EXPECT_EQ(machine.Stats().tentative_user_text, "I need");
  machine.Receive(Event("interruption", "interruption_event", {{"event_id", 3}}));
  actions = machine.Receive(
      Event("agent_response_correction", "agent_response_correction_event",
            {{"original_agent_response", "Let me tell you about the complete history"},
             {"corrected_agent_response", "Let me tell you about"},
             {"event_id", 3}}));
  ASSERT_EQ(actions.transcript.size(), 1u);
  EXPECT_EQ(actions.transcript[0].kind, TranscriptUpdate::Kind::kCorrected);
  machine.Receive(Event("user_transcript", "user_transcription_event",
                        {{"user_transcript", "I need help."}, {"event_id", 4}}));
  machine.Receive(Event("internal_tentative_agent_response",
                        "tentative_agent_response_internal_event",
                        {{"tentative_agent_response", "Sure"}}));
  const auto stats = machine.Stats();
  ASSERT_EQ(stats.transcript.size(), 2u);
  EXPECT_EQ(stats.transcript[0].role, Turn::Role::kAgent);
  EXPECT_EQ(stats.transcript[0].text, "Let me tell you about");
  EXPECT_TRUE(stats.transcript[0].interrupted);
  EXPECT_EQ(stats.transcript[0].event_id, 3);
  EXPECT_EQ(stats.transcript[1].role, Turn::Role::kUser);
  EXPECT_EQ(stats.transcript[1].text, "I need help.");
  EXPECT_EQ(stats.transcript[1].time - stats.transcript[0].time, 1s);
  EXPECT_TRUE(stats.tentative_user_text.empty());
  EXPECT_EQ(stats.tentative_agent_text, "Sure");
}

TEST_F(SessionMachineTest, TranscriptAndTextsAreBounded) {
  auto& machine = Active({.max_transcript_turns = 3, .max_text_bytes = 8});
  for (int i = 0; i < 5; ++i) {
    machine.Receive(Event("user_transcript", "user_transcription_event",
                          {{"user_transcript", "turn " + std::to_string(i) + " with words"}}));
  }
  const auto stats = machine.Stats();
  ASSERT_EQ(stats.transcript.size(), 3u);
  EXPECT_EQ(stats.transcript[0].text, "turn 2 w");
  // A cut never splits a UTF-8 character.
  machine.Receive(Event("user_transcript", "user_transcription_event",
                        {{"user_transcript", "abcdefg\xc3\xa9xyz"}}));
  EXPECT_EQ(machine.Stats().transcript.back().text, "abcdefg");
}

TEST_F(SessionMachineTest, ClientToolCallWithoutAHandlerGetsAClearError) {
  auto& machine = Active();
  const auto actions = machine.Receive(Event("client_tool_call", "client_tool_call",
                                             {{"tool_name", "check_account"},
                                              {"tool_call_id", "tc_1"},
                                              {"parameters", json::object{}},
                                              {"event_id", 5}}));
  EXPECT_FALSE(actions.call_tool);
  ASSERT_EQ(actions.send.size(), 1u);
  const auto result = json::parse(actions.send[0].text).as_object();
  EXPECT_EQ(result.at("type"), "client_tool_result");
  EXPECT_EQ(result.at("tool_call_id"), "tc_1");
  EXPECT_EQ(result.at("is_error"), true);
  EXPECT_NE(std::string(result.at("result").as_string()).find("check_account"), std::string::npos);
  EXPECT_EQ(machine.Stats().tool_calls, 1u);
}

TEST_F(SessionMachineTest, ClientToolCallWithAHandler) {
  auto& machine = Active({.tools_enabled = true, .max_pending_tool_calls = 1});
  const auto call =
      Event("client_tool_call", "client_tool_call",
            {{"tool_name", "lookup"}, {"tool_call_id", "tc_1"}, {"parameters", {{"order", 42}}}});
  auto actions = machine.Receive(call);
  ASSERT_TRUE(actions.call_tool);
  EXPECT_EQ(actions.call_tool->parameters.at("order"), 42);
  EXPECT_TRUE(actions.send.empty());
  // Over the bound: answered with an error at once.
  actions = machine.Receive(Event("client_tool_call", "client_tool_call",
                                  {{"tool_name", "lookup"}, {"tool_call_id", "tc_2"}}));
  EXPECT_FALSE(actions.call_tool);
  ASSERT_EQ(actions.send.size(), 1u);
  EXPECT_EQ(json::parse(actions.send[0].text).at("is_error"), true);

  actions = machine.ToolResult("tc_1", "shipped", false);
  ASSERT_EQ(actions.send.size(), 1u);
  EXPECT_EQ(actions.send[0].text, ClientToolResultMessage("tc_1", "shipped", false));
  EXPECT_TRUE(machine.ToolTimedOut("tc_1").send.empty()) << "answered already";

  machine.Receive(Event("client_tool_call", "client_tool_call",
                        {{"tool_name", "slow"}, {"tool_call_id", "tc_3"}}));
  actions = machine.ToolTimedOut("tc_3");
  ASSERT_EQ(actions.send.size(), 1u);
  EXPECT_EQ(json::parse(actions.send[0].text).at("is_error"), true);
  EXPECT_TRUE(machine.ToolResult("tc_3", "late", false).send.empty());
}

TEST_F(SessionMachineTest, UserAudioIsSentInChunksOfTheConfiguredLength) {
  auto& machine = Active();
  const auto samples = Ramp(kRate / 2, 10);  // 500 ms
  input_.Queue(samples);
  std::vector<std::uint8_t> sent;
  for (int i = 0; i < 3; ++i) {
    for (const auto& frame : Tick().send) {
      ASSERT_TRUE(frame.user_audio);
      const auto object = json::parse(frame.text).as_object();
      auto bytes = Base64Decode(object.at("user_audio_chunk").as_string());
      ASSERT_TRUE(bytes);
      EXPECT_EQ(bytes->size(), 1600u) << "50 ms at 16 kHz";
      sent.insert(sent.end(), bytes->begin(), bytes->end());
    }
  }
  EXPECT_EQ(sent, audio::EncodePcm16Le(samples));
  const auto stats = machine.Stats();
  EXPECT_EQ(stats.user_chunks_sent, 10u);
  EXPECT_DOUBLE_EQ(stats.audio_seconds_sent, 0.5);
  machine.CountDroppedChunk(1600);
  EXPECT_EQ(machine.Stats().user_chunks_dropped, 1u);
  EXPECT_DOUBLE_EQ(machine.Stats().audio_seconds_sent, 0.45);
}

TEST_F(SessionMachineTest, UserAudioLagIsTheChunkBeingFilledPlusTheWaitForItsTick) {
  // A fresh active machine ticked `ticks` times, each tick capturing `per_tick` samples.
  const auto ticked = [&](std::size_t per_tick, int ticks) {
    auto& machine = Active();
    for (int i = 0; i < ticks; ++i) {
      input_.Queue(Ramp(per_tick, static_cast<std::int16_t>(i)));
      Tick();
    }
    return machine.Stats();
  };
  // 20 ms of capture per tick, 50 ms chunks: chunk 1 completes 10 ms before the third tick
  // sends it, so just before that tick 60 ms of capture are unsent (the most, every 5 ticks).
  const SessionStats twenty = ticked(kRate / 50, 10);
  EXPECT_EQ(twenty.user_chunks_sent, 4u);
  EXPECT_NEAR(twenty.user_audio_lag_max_ms, 60.0, 1e-6);
  EXPECT_NEAR(StatsToJson(twenty).at("audio").at("user_lag_max_ms").as_double(), 60.0, 1e-6);
  // One chunk of capture per tick (ticks as long as the chunk): each tick sends what it read.
  const SessionStats aligned = ticked(kRate / 20, 6);
  EXPECT_EQ(aligned.user_chunks_sent, 6u);
  EXPECT_NEAR(aligned.user_audio_lag_max_ms, 50.0, 1e-6);
}

TEST_F(SessionMachineTest, WithEarlyChunksAChunkEndingJustAfterATickGoesOutOnIt) {
  // The first tick sends what it captured (so that chunks end on ticks); then a capture that
  // runs 2 ms behind the ticks (a device's callbacks) still sends on the tick, in short chunks,
  // instead of one tick later: the unsent audio stays under 50 ms instead of reaching 73.
  const std::vector<std::size_t> captures{400, 368, 400, 368, 400, 368, 400, 368};
  EXPECT_EQ(ChunkSizes(captures, kEarly), (std::vector<std::size_t>{800, 1536, 1536, 1536}));
  EXPECT_EQ(machine_->Stats().user_chunks_sent, 4u);
  EXPECT_NEAR(machine_->Stats().user_audio_lag_max_ms, 48.0, 1e-6);
}

TEST_F(SessionMachineTest, WithEarlyChunksATickedCaptureSendsWholeChunksOnTicks) {
  // Headless endpoints capture exactly one tick per tick: after the first tick's short chunk
  // (the capture started 10 ms before it) every chunk is whole and leaves on the tick it ends
  // on: 50 ms unsent at most, not 60.
  const std::vector<std::size_t> captures{160, 400, 400, 400, 400, 400, 400, 400, 400};
  EXPECT_EQ(ChunkSizes(captures, kEarly), (std::vector<std::size_t>{320, 1600, 1600, 1600, 1600}));
  EXPECT_NEAR(machine_->Stats().user_audio_lag_max_ms, 50.0, 1e-6);
}

TEST_F(SessionMachineTest, EndCallPlaysTheLastWordsOutThenEnds) {
  auto& machine = Active();
  const auto goodbye = Ramp(kRate, 300);  // 1 s
  machine.Receive(AudioFrame(goodbye, 8));
  auto actions =
      machine.Receive(Event("agent_tool_response", "agent_tool_response",
                            {{"tool_name", "end_call"}, {"tool_type", "system"}, {"event_id", 9}}));
  EXPECT_FALSE(actions.close);
  EXPECT_EQ(machine.status(), Status::kEnding);
  // No more user audio once the agent hung up.
  input_.Queue(Ramp(kRate, 10));
  EXPECT_TRUE(Tick().send.empty());
  // The server closes right after end_call; the audio keeps playing.
  EXPECT_FALSE(machine.Closed({.code = 1000, .clean = true, .opened = true}).finished);
  output_.queued_frames = 100;  // the device still holds some
  for (int i = 0; i < 100; ++i)
    EXPECT_FALSE(Tick().finished);
  EXPECT_FALSE(machine.finished()) << "the device's queue is not empty yet";
  output_.queued_frames = 0;
  const auto last = Tick();
  EXPECT_TRUE(last.finished);
  EXPECT_FALSE(last.close) << "already closed by the server";
  EXPECT_TRUE(Contains(output_.written, goodbye));
  const auto stats = machine.Stats();
  ASSERT_TRUE(stats.end_reason);
  EXPECT_EQ(stats.end_reason->code, "agent_ended");
  EXPECT_EQ(stats.end_reason->close_code, 1000);
  EXPECT_EQ(stats.status, Status::kEnded);
}

TEST_F(SessionMachineTest, EndCallWhileTheSocketIsOpenClosesWith1000AfterPlaying) {
  auto& machine = Active();
  machine.Receive(AudioFrame(Ramp(1600, 300), 8));
  machine.Receive(Event("agent_tool_response", "agent_tool_response", {{"tool_name", "end_call"}}));
  const auto actions = TickUntilEnd();
  ASSERT_TRUE(actions.close);
  EXPECT_EQ(actions.close->code, 1000);
  EXPECT_TRUE(
      machine.Closed({.code = 1000, .clean = true, .by_client = true, .opened = true}).finished);
  EXPECT_EQ(machine.end_reason()->code, "agent_ended");
}

TEST_F(SessionMachineTest, ServerCloseCodesBecomeEndReasons) {
  struct Case {
    std::optional<std::string> error_event;
    CloseInfo close;
    std::string code;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {Event("error", "error_event",
             {{"code", 1008},
              {"message", "Missing required dynamic variables: purpose"},
              {"error_type", "missing_dynamic_variable"}}),
       {.code = 1008, .reason = "missing_dynamic_variable", .clean = true, .opened = true},
       "upstream_error",
       "1008 missing_dynamic_variable: Missing required dynamic variables: purpose"},
      {std::nullopt,
       {.code = 1011, .reason = "simulated fault", .clean = true, .opened = true},
       "upstream_error",
       "1011 simulated fault"},
      {std::nullopt,
       {.code = 1006, .opened = true, .error = "connection reset by peer"},
       "connection_lost",
       "connection reset by peer"},
      {Event("error", "error_event",
             {{"code", 1000}, {"message", "Too long"}, {"error_type", "max_duration_exceeded"}}),
       {.code = 1000, .clean = true, .opened = true},
       "server_closed",
       "max_duration_exceeded: Too long"},
  };
  for (const auto& test : cases) {
    SCOPED_TRACE(test.code + " " + test.detail);
    auto& machine = Make();
    machine.Opened({});
    machine.Receive(Metadata());
    if (test.error_event) machine.Receive(*test.error_event);
    const auto actions = machine.Closed(test.close);
    EXPECT_TRUE(actions.finished);
    ASSERT_TRUE(machine.end_reason());
    EXPECT_EQ(machine.end_reason()->code, test.code);
    EXPECT_EQ(machine.end_reason()->detail, test.detail);
    EXPECT_EQ(machine.end_reason()->close_code, test.close.code);
  }
}

TEST_F(SessionMachineTest, NeverOpenedIsConnectFailed) {
  auto& machine = Make();
  const auto actions =
      machine.Closed({.error = "TLS with host:443 failed: certificate verify failed"});
  EXPECT_TRUE(actions.finished);
  EXPECT_EQ(machine.end_reason()->ToString(),
            "connect_failed: TLS with host:443 failed: certificate verify failed");
  EXPECT_FALSE(machine.end_reason()->close_code);
}

TEST_F(SessionMachineTest, StopClosesWith1000AndEndsStopped) {
  auto& machine = Active();
  auto actions = machine.Stop();
  ASSERT_TRUE(actions.close);
  EXPECT_EQ(actions.close->code, 1000);
  EXPECT_EQ(actions.close->reason, "User ended conversation");
  EXPECT_TRUE(machine.Stop().empty()) << "idempotent";
  // Whatever the server does now, the reason stays.
  machine.Receive(Event("ping", "ping_event", {{"event_id", 3}}));
  actions = machine.Closed({.code = 1000, .clean = true, .by_client = true, .opened = true});
  EXPECT_TRUE(actions.finished);
  EXPECT_EQ(machine.end_reason()->code, "stopped");
  EXPECT_EQ(machine.end_reason()->close_code, 1000);
}

TEST_F(SessionMachineTest, StopBeforeConnectingEndsAtOnce) {
  auto& machine = Make();
  const auto actions = machine.Stop();
  EXPECT_TRUE(actions.finished);
  EXPECT_FALSE(actions.close);
  EXPECT_EQ(machine.end_reason()->code, "stopped");
  EXPECT_TRUE(machine.Opened({}).empty());
}

TEST_F(SessionMachineTest, FailuresOutsideTheMachine) {
  auto& machine = Make();
  const auto actions =
      machine.Fail({"signed_url_failed", "HTTP 401 invalid_api_key: Invalid API key", {}});
  EXPECT_TRUE(actions.finished);
  EXPECT_EQ(machine.Stats().end_reason->ToString(),
            "signed_url_failed: HTTP 401 invalid_api_key: Invalid API key");
}

TEST_F(SessionMachineTest, AFailingDeviceEndsTheSession) {
  auto& machine = Active();
  Tick();
  input_.Break();
  const auto actions = Tick();
  ASSERT_TRUE(actions.close);
  machine.Closed({.code = 1000, .clean = true, .by_client = true, .opened = true});
  EXPECT_EQ(machine.end_reason()->ToString(), "audio_device_unavailable: fake device unplugged");
}

TEST_F(SessionMachineTest, MetadataDeadline) {
  auto& machine = Make({.metadata_timeout = 1500ms});
  machine.Opened({});
  const auto actions = machine.MetadataDeadline();
  ASSERT_TRUE(actions.close);
  machine.Closed({.code = 1000, .clean = true, .by_client = true, .opened = true});
  EXPECT_EQ(machine.end_reason()->ToString(),
            "protocol_error: no conversation_initiation_metadata within 1500 ms");
  // After the metadata, the deadline does nothing.
  auto& other = Active();
  EXPECT_TRUE(other.MetadataDeadline().empty());
}

TEST_F(SessionMachineTest, MalformedAndUnknownFramesAreCountedNotFatal) {
  auto& machine = Active();
  EXPECT_TRUE(machine.Receive("garbage").empty());
  EXPECT_TRUE(machine.Receive(R"({"type":"audio","audio_event":{"audio_base_64":"!!"}})").empty());
  EXPECT_TRUE(
      machine.Receive(R"({"type":"vad_score","vad_score_event":{"vad_score":0.4}})").empty());
  const auto stats = machine.Stats();
  EXPECT_EQ(stats.malformed_messages, 2u);
  EXPECT_EQ(stats.ignored_events, 1u);
  EXPECT_FALSE(machine.finished());
}

TEST_F(SessionMachineTest, StatsRenderAsJson) {
  auto& machine = Active();
  machine.Receive(
      Event("agent_response", "agent_response_event", {{"agent_response", "Hi"}, {"event_id", 1}}));
  machine.Receive(Event("ping", "ping_event", {{"event_id", 2}, {"ping_ms", 40}}));
  machine.Stop();
  machine.Closed({.code = 1000, .clean = true, .by_client = true, .opened = true});
  const auto json = StatsToJson(machine.Stats());
  EXPECT_EQ(json.at("session_id"), "sess_1");
  EXPECT_EQ(json.at("status"), "ended");
  EXPECT_EQ(json.at("conversation_id"), "conv_1");
  EXPECT_EQ(json.at("formats").at("user_input_audio_format"), "pcm_16000");
  EXPECT_EQ(json.at("pings").at("answered"), 1);
  EXPECT_EQ(json.at("pings").at("last_ping_ms"), 40);
  EXPECT_EQ(json.at("transcript").at(0).at("role"), "agent");
  EXPECT_EQ(json.at("transcript").at(0).at("text"), "Hi");
  EXPECT_EQ(json.at("end_reason").at("code"), "stopped");
  EXPECT_EQ(json.at("end_reason").at("close_code"), 1000);
  EXPECT_TRUE(json.at("start_time").as_string().ends_with("Z"));
  EXPECT_EQ(FormatTime(core::SystemTime(std::chrono::milliseconds(1'700'000'000'123))),
            "2023-11-14T22:13:20.123Z");
}

}  // namespace
}  // namespace callgate::conversation
