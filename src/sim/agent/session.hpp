// One simulated ConvAI WebSocket conversation: the scripted agent on the far side of
// /v1/convai/conversation (API notes §6). It waits for conversation_initiation_client_data,
// answers with conversation_initiation_metadata, greets, then for each user turn replies with a
// scripted line spoken with espeak-ng (via the injected Speak function), listens with an
// energy VAD, handles interruptions, pings, a client tool call, inactivity, and ends with the
// end_call system tool. Everything it did is kept as statistics (Stats()).
//
// Event ids: one counter per conversation, increasing in send order. An agent turn takes one id
// when its agent_response is sent and all of its audio events (and an interruption or
// agent_response_correction of it) carry that id; a user turn takes one id when its first
// tentative_user_transcript or its user_transcript is sent; every ping takes its own. That is
// the reading of §6.3 consistent with the SDKs dropping audio with event_id <= the interruption's.
//
// Threading: callbacks (strand), Scheduler tasks (I/O threads) and Speak completions (the TTS
// worker) may run concurrently; one mutex guards all state and the connection is only used
// under it (its methods never block nor call back synchronously). Scheduled tasks hold a
// weak_ptr, so nothing dangles after the connection closes. The Simulator, Scheduler and Clock
// must outlive the session's activity: the owner calls Shutdown() before they go.
#pragma once

#include "audio/format.hpp"
#include "audio/vad.hpp"
#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "http/websocket.hpp"
#include "sim/agent/protocol.hpp"
#include "sim/options.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace callgate::sim {

class Simulator;

struct ConversationServiceOptions {
  std::chrono::milliseconds ping_interval{2000};
  // No user input (speech, user_message, user_activity) for this long, counted from the later
  // of the last input and the end of the agent's last turn: error transport_receive_timeout
  // and close 1002, as the real service after 60 s.
  std::chrono::milliseconds inactivity_timeout{60000};
  std::chrono::milliseconds audio_chunk{100};  // agent audio per `audio` event
  double speech_speed = 1.0;                   // 1.0 = agent audio paced in real time; 4.0 = 4x
  int turns = 3;                               // agent replies (the last is the goodbye)
  bool reject_with_http = false;  // refusal as HTTP 403 instead of accept + error + close 1008
  // The user_transcript of a user turn the simulator cannot recognise; "{secs}" becomes its
  // duration. A user_message sent during the turn replaces it verbatim.
  std::string user_transcript_style = "(user spoke for {secs} s)";
  // Tentative transcripts while the user speaks, every this much speech.
  std::chrono::milliseconds tentative_interval{500};
  // How long the agent waits for client_tool_result before carrying on.
  std::chrono::milliseconds client_tool_timeout{10000};
  // The unconfirmed interruption shape {reason:"user"} (§9.3) instead of {event_id}.
  bool interruption_with_reason = false;
  // Bounds: sessions alive at once (more are refused 1008 / HTTP 429), ended sessions whose
  // statistics are kept, pings kept per session. (2048: room for the 1,000-session benchmark.)
  std::size_t max_sessions = 2048;
  std::size_t max_ended_sessions = 1000;
  std::size_t max_pings_kept = 1000;
  // The VAD's level threshold for user speech.
  double vad_threshold_dbfs = -45.0;
};

// A fault for the next session (POST /_sim/websocket-faults).
struct WebSocketFault {
  bool drop = false;             // Abort() the TCP connection (no close frame)...
  int close_code = 0;            // ...or close with this code
  std::size_t after_events = 1;  // once this many server events were sent
};

namespace agent {

// Synthesises `text` at `sample_rate` in `language` OFF the caller's thread and calls `done`
// with the samples (empty on failure) later, on any thread; never synchronously. False when the
// work cannot be queued.
using SpeakFn = std::function<bool(std::string text, int sample_rate, std::string language,
                                   std::function<void(std::vector<std::int16_t>)> done)>;

struct Refusal {
  std::string error_type;  // error_event.error_type, also the close reason
  std::string message;
};

struct SessionSettings {
  std::string session_id;  // "ws_<n>", for the statistics list
  std::string agent_id;
  const AgentConfig* agent = nullptr;  // null only with a refusal
  std::optional<Refusal> refusal;      // accept, send an error event, close 1008
  std::optional<WebSocketFault> fault;
  ConversationServiceOptions options;
};

struct SessionDependencies {
  Simulator& simulator;
  core::Scheduler& scheduler;
  core::Clock& clock;
  SpeakFn speak;
  // Once, when the session has ended (OnClose or Shutdown), outside the session's lock.
  std::function<void(const std::string& session_id)> on_finished;
};

class Session final : public http::WebSocketHandler, public std::enable_shared_from_this<Session> {
 public:
  Session(SessionDependencies deps, SessionSettings settings);
  ~Session() override;

  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override;
  void OnText(std::string_view message) override;
  void OnClose(std::uint16_t code, std::string_view reason) override;

  // The owner is going away: close 1001, end the conversation, do nothing more.
  void Shutdown();

  // {"session_id","conversation_id","agent_id","active","init_message","formats","pings",
  //  "user_audio_bytes","user_audio_sha256","events_sent","events_total","agent_audio_bytes",
  //  "agent_audio_late_chunks","agent_audio_max_late_ms",
  //  "transcript","contextual_updates","tool_results","feedback","close"}
  boost::json::object Stats() const;
  const std::string& session_id() const { return settings_.session_id; }
  std::string conversation_id() const;

 private:
  enum class Phase { kAwaitingInit, kActive, kEnded };
  struct Turn {
    std::uint64_t generation = 0;
    std::int64_t event_id = -1;  // -1 until the audio is synthesised and agent_response sent
    std::string text;
    std::vector<std::uint8_t> audio;  // in the output format
    std::size_t sent = 0;             // bytes of `audio` sent
    bool last = false;                // the goodbye: end_call follows it
    // Pacing: chunk k (from 0) is due at paced_from + k * ChunkPeriod(), on the clock, so that
    // late timer wake-ups do not add up over a turn (see SendChunkLocked).
    core::SystemTime paced_from{};
    std::int64_t chunks = 0;  // chunks sent
  };
  struct Ping {
    std::int64_t event_id;
    std::int64_t sent_unix_ms;
    core::SystemTime sent;
    bool pong_received = false;
    std::optional<std::int64_t> latency_ms;
  };
  struct Sha256;

  // All *Locked functions run with mutex_ held.
  void SendLocked(std::string_view type, std::string frame);
  void FailLocked(int code, std::string_view error_type, std::string_view message);
  void CloseLocked(std::uint16_t code, std::string reason, std::string termination);
  void EndConversationLocked(std::string termination);
  void HandleInitLocked(const ClientMessage& message);
  void HandleAudioLocked(std::span<const std::uint8_t> bytes);
  void UserTurnCompleteLocked(std::string text);
  void StartReplyLocked();
  void StartTurnLocked(std::string text, bool last);
  void SendChunkLocked();
  void FinishTurnLocked();
  void InterruptLocked();
  void ActivityLocked();
  void SchedulePing();
  void ScheduleInactivityCheck(std::chrono::milliseconds delay);

  void OnSynthesized(std::uint64_t generation, std::vector<std::int16_t> samples);
  void OnChunkTimer(std::uint64_t generation);
  void OnTurnEndTimer(std::uint64_t generation);
  void OnPingTimer();
  void OnInactivityTimer();
  void OnToolTimeout(std::string tool_call_id);

  std::chrono::microseconds ChunkPeriod() const;
  std::chrono::milliseconds NextChunkDelay();
  std::int64_t UnixMs() const;
  std::int64_t NextEventId() { return next_event_id_++; }

  SessionDependencies deps_;
  const SessionSettings settings_;

  mutable std::mutex mutex_;
  std::shared_ptr<http::WebSocketConnection> connection_;
  Phase phase_ = Phase::kAwaitingInit;
  bool finished_ = false;  // on_finished called (or due)
  std::string conversation_id_;
  bool conversation_ended_ = false;
  std::string language_ = "en";
  std::string purpose_;
  audio::AudioFormat input_format_, output_format_;
  boost::json::value init_message_;
  std::int64_t next_event_id_ = 1;
  std::map<std::string, std::int64_t, std::less<>> events_sent_;
  std::size_t events_total_ = 0;

  // Agent side.
  std::optional<Turn> turn_;
  std::uint64_t turn_generation_ = 0;
  int reply_index_ = 0;
  bool reply_owed_ = false;  // a user turn ended while the agent was busy
  std::int64_t agent_audio_bytes_ = 0;
  // Agent audio chunks sent kLateChunk or more after they were due (a diagnostic: a client
  // with a playback buffer shorter than that may run dry), and the worst lateness.
  static constexpr std::chrono::milliseconds kLateChunk{50};
  std::int64_t agent_audio_late_chunks_ = 0;
  std::int64_t agent_audio_max_late_ms_ = 0;

  // User side.
  std::optional<audio::EnergyVad> vad_;
  std::optional<std::uint8_t> carry_;  // odd PCM byte kept for the next chunk
  std::int64_t speech_start_ = 0;
  std::int64_t next_tentative_ = 0;
  std::int64_t user_event_id_ = -1;
  std::optional<std::string> pending_user_text_;
  std::unique_ptr<Sha256> sha_;
  std::vector<std::uint8_t> audio_scratch_;  // the decoded user_audio_chunk (fast path)
  std::int64_t user_audio_bytes_ = 0;
  core::SystemTime last_activity_;

  // Pings, tools, the rest.
  std::deque<Ping> pings_;
  std::optional<std::int64_t> last_rtt_ms_;
  std::string client_tool_name_;
  bool client_tool_done_ = false;
  std::optional<std::string> awaiting_tool_call_id_;
  std::string last_user_text_;
  boost::json::array transcript_, contextual_updates_, tool_results_, feedback_;
  boost::json::value close_;  // null until closed
};

}  // namespace agent
}  // namespace callgate::sim
