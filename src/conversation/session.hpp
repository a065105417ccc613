// The conversation state machine: everything one ConvAI session decides, with no socket, no
// timer and no thread. Inputs are method calls (the socket opened, a text frame arrived, a tick
// of the audio clock, the socket closed, Stop()); outputs are `Actions` for the owner to carry
// out (frames to send, endpoints to open, a tool to run, the socket to close, the end).
// The engine (engine.hpp) is the owner in production; unit tests drive it directly.
//
// What it does with each server event (API notes §6.3):
//   conversation_initiation_metadata  records the conversation id and both audio formats and
//       asks for the audio endpoints (Actions::open_audio); unknown formats end the session
//       (protocol_error).
//   audio            decoded into ConversationAudio::PushAgentAudio(bytes, event_id) (dropped
//       there when the event_id is not above the last interruption's); audio arriving before
//       StartAudio() waits in a bounded queue.
//   interruption     ConversationAudio::Interrupt(event_id): buffered agent audio is flushed
//       at once. The {reason} form without an event_id interrupts the latest agent audio.
//   ping             an immediate pong with the same event_id; counted, ping_ms kept.
//   agent_response, user_transcript       a transcript turn (role, text, time, event_id);
//   agent_response_correction             the agent turn's text replaced, marked interrupted;
//   tentative_user_transcript, internal_tentative_agent_response   kept as "tentative" text.
//   client_tool_call a client_tool_result: with no tool handler, is_error:true and a message
//       saying so at once (the agent never waits); with one, Actions::call_tool, then
//       ToolResult() or ToolTimedOut().
//   agent_tool_response end_call          the agent hung up: user audio stops, the buffered
//       agent audio is played out (DrainThen + the output's queue and latency), then the
//       session ends with agent_ended (closing with 1000 if the server has not closed yet).
//   error            kept; the close that follows is reported with its code, type and message.
//   anything else    counted and ignored; malformed frames are counted and ignored.
// Close codes become end reasons (stats.hpp): 1000 -> server_closed (after playing out),
// other codes -> upstream_error, no close frame -> connection_lost, never opened ->
// connect_failed. The first end reason wins: a Stop() that closes with 1000 ends "stopped".
//
// Not thread-safe: one owner (the session's strand). Time comes from the injected Clock (turn
// times, start/end, the drain deadline). All queues and texts are bounded by the options.
// Errors are end reasons; nothing throws out of it (ConversationAudio's invalid_argument for
// impossible rates becomes internal_error).
#pragma once

#include "audio/backends/backend.hpp"
#include "audio/format.hpp"
#include "audio/pipeline/conversation_audio.hpp"
#include "conversation/protocol.hpp"
#include "conversation/stats.hpp"
#include "conversation/transport.hpp"
#include "core/clock.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace callgate::conversation {

struct SessionMachineOptions {
  // Chunk length, jitter buffer, echo canceller, resampler quality. The formats, rates and
  // echo_cancellation flag are filled in by StartAudio().
  audio::pipeline::ConversationAudioOptions audio;
  std::size_t max_transcript_turns = 1000;  // the oldest turns are dropped beyond it
  std::size_t max_text_bytes = 4096;        // longer texts are cut (at a UTF-8 boundary)
  // Agent audio received before the endpoints are open (wire bytes); the oldest is dropped.
  std::size_t max_pending_audio_bytes = 2 * 1024 * 1024;
  std::size_t max_message_bytes = 4 * 1024 * 1024;
  bool tools_enabled = false;  // a client tool handler is configured
  std::size_t max_pending_tool_calls = 8;
  std::chrono::milliseconds tool_timeout{10'000};      // for the message only (the engine times)
  std::chrono::milliseconds metadata_timeout{10'000};  // for the message only
  // Playing out after end_call gives up after this long (a stuck output never blocks the end).
  std::chrono::milliseconds drain_timeout{15'000};
  // Audio moved per Tick() at most, each way (after a stall, the rest waits for the next tick).
  std::chrono::milliseconds max_tick_audio{1'000};
};

// Who the session is, for its statistics.
struct SessionIdentity {
  std::string session_id;
  std::string agent_id;
  std::string input;  // endpoint specs as text
  std::string output;
};

struct OutgoingFrame {
  std::string text;
  bool user_audio = false;      // a user_audio_chunk: may be dropped when the send queue is full
  std::size_t audio_bytes = 0;  // its raw audio, for CountDroppedChunk()
};

struct CloseRequest {
  std::uint16_t code = 1000;
  std::string reason;
};

// A change to the transcript, for live display (`callgate talk`).
struct TranscriptUpdate {
  enum class Kind {
    kTurn,       // a new turn
    kCorrected,  // an earlier agent turn's text was corrected after an interruption
    kTentative,  // tentative text of the user or the agent (turn.text may be empty)
  };
  Kind kind = Kind::kTurn;
  Turn turn;
};

struct Actions {
  std::vector<OutgoingFrame> send;  // in order, right away
  bool open_audio = false;          // formats known: open the endpoints, then StartAudio()
  std::optional<ClientToolCall> call_tool;
  std::optional<CloseRequest> close;  // close the socket (then Closed() follows)
  bool finished = false;              // the session is over: release everything, report
  std::vector<TranscriptUpdate> transcript;

  bool empty() const {
    return send.empty() && !open_audio && !call_tool && !close && !finished && transcript.empty();
  }
};

class SessionMachine {
 public:
  SessionMachine(const core::Clock& clock, SessionMachineOptions options, SessionIdentity identity);
  SessionMachine(const SessionMachine&) = delete;
  SessionMachine& operator=(const SessionMachine&) = delete;

  // Status kStarting; the start time is now.
  void Begin();
  // The signed URL is known; status kConnecting.
  void Connecting();
  // The WebSocket is open: sends conversation_initiation_client_data, first.
  Actions Opened(const InitiationData& initiation);
  // One text frame from the server.
  Actions Receive(std::string_view text);
  // The socket closed (or never opened).
  Actions Closed(const CloseInfo& info);

  // The endpoints are open (rates known): builds the audio pipeline and feeds it the agent
  // audio that arrived meanwhile. Call once, after Actions::open_audio.
  Actions StartAudio(int capture_rate, int playback_rate, bool echo_cancellation);
  // One tick of the audio clock, in the pipeline's order: playback first, then capture, then
  // the user chunks to send; also notices endpoint errors and the end of a drain.
  Actions Tick(audio::backends::AudioInput& input, audio::backends::AudioOutput& output);
  // Prefetches what Tick() touches in this object (stage 0), in the audio pipeline (stage 1) and
  // in its buffers (stage 2); nothing at later stages. A ticker's warm stages
  // (TickerGroup::Warmer): stage s reads only what stage s - 1 prefetched; changes nothing.
  void Warm(unsigned stage) const;

  // The answer of the configured tool handler / its deadline passed.
  Actions ToolResult(const std::string& tool_call_id, std::string_view result, bool is_error);
  Actions ToolTimedOut(const std::string& tool_call_id);
  // The metadata deadline passed: ends with protocol_error unless the metadata arrived.
  Actions MetadataDeadline();

  // Sends a client message of the caller's (user_message, contextual_update, user_activity,
  // feedback) while the session is active; false when it cannot be sent now.
  Actions SendClientMessage(std::string frame, bool& accepted);

  // Ends the session: closes with 1000 when open, at once otherwise; reason `stopped`.
  Actions Stop();
  // Ends the session for a reason found outside (signed URL, endpoints, send queue, ...).
  Actions Fail(EndReason reason);

  // The transport refused a user_audio_chunk (queue full) of `audio_bytes` raw bytes.
  void CountDroppedChunk(std::size_t audio_bytes);

  SessionStats Stats() const;
  Status status() const { return status_; }
  bool finished() const { return finished_; }
  bool audio_started() const { return audio_ != nullptr; }
  bool can_send() const { return socket_open_ && !close_requested_; }
  const std::optional<EndReason>& end_reason() const { return end_; }
  const std::optional<audio::AudioFormat>& input_format() const { return input_format_; }
  const std::optional<audio::AudioFormat>& output_format() const { return output_format_; }
  // `audio` events whose samples went straight into the playback buffer (the pipeline was
  // started; not stale): the engine times Receive() when this grows.
  std::uint64_t buffered_audio_events() const { return buffered_audio_events_; }
  // The pipeline, once started (for inspection in tests).
  const audio::pipeline::ConversationAudio* audio() const { return audio_.get(); }

 private:
  struct PendingAudio {
    std::vector<std::uint8_t> bytes;
    std::int64_t event_id;
  };

  void Handle(InitiationMetadata&& event, Actions& actions);
  void Handle(AudioChunk&& event, Actions& actions);
  void Handle(Interruption&& event, Actions& actions);
  void Handle(Ping&& event, Actions& actions);
  void Handle(AgentResponse&& event, Actions& actions);
  void Handle(AgentResponseCorrection&& event, Actions& actions);
  void Handle(UserTranscript&& event, Actions& actions);
  void Handle(TentativeUserTranscript&& event, Actions& actions);
  void Handle(TentativeAgentResponse&& event, Actions& actions);
  void Handle(ClientToolCall&& event, Actions& actions);
  void Handle(AgentToolResponse&& event, Actions& actions);
  void Handle(ServerError&& event, Actions& actions);
  void Handle(OtherEvent&& event, Actions& actions);

  void SendFrame(std::string text, Actions& actions);
  void AddTurn(Turn turn, Actions& actions);
  void BeginDrain(EndReason reason, Actions& actions);
  // Closes with 1000 when the socket is open (the end follows Closed()), else finishes now.
  void EndWith(EndReason reason, Actions& actions);
  void Finish(Actions& actions);
  std::string Clip(std::string text) const;
  EndReason ReasonForClose(const CloseInfo& info) const;

  const core::Clock& clock_;

  // What every Tick() reads or writes, together at the front: with a thousand sessions ticked
  // 50 times a second, each cache line a tick touches is a miss, and these fit in one.
  bool socket_open_ = false;
  bool close_requested_ = false;
  bool finished_ = false;
  bool draining_ = false;  // after end_call (or the server's normal close)
  std::unique_ptr<audio::pipeline::ConversationAudio> audio_;
  std::uint64_t sent_bytes_ = 0;
  std::uint64_t chunked_bytes_ = 0;  // user audio in chunks made (sent or dropped)
  std::uint64_t user_chunks_sent_ = 0;
  double user_lag_max_ms_ = 0;
  bool chunks_aligned_ = false;  // the first sending tick sent its rest (chunk_early)

  const SessionMachineOptions options_;
  const SessionIdentity identity_;

  Status status_ = Status::kStarting;
  core::SystemTime start_time_;
  std::optional<core::SystemTime> end_time_;
  bool ever_opened_ = false;
  bool metadata_received_ = false;
  bool stop_requested_ = false;
  std::optional<EndReason> end_;
  std::optional<ServerError> server_error_;
  std::optional<int> close_code_;

  std::string conversation_id_;
  std::optional<audio::AudioFormat> input_format_, output_format_;
  std::deque<PendingAudio> pending_audio_;
  std::size_t pending_audio_bytes_ = 0;
  std::optional<std::int64_t> last_interrupt_id_;
  std::optional<std::int64_t> last_audio_event_id_;
  std::optional<std::int64_t> last_agent_response_id_;

  // Draining (draining_ is with the tick's state above).
  bool drained_ = false;
  core::SystemTime drain_started_, drained_at_;
  std::optional<EndReason> drain_reason_;

  std::map<std::string, std::string> pending_tools_;  // tool_call_id -> tool_name

  // Statistics.
  std::deque<Turn> transcript_;
  std::string tentative_user_text_, tentative_agent_text_;
  std::uint64_t received_bytes_ = 0;
  std::uint64_t user_chunks_dropped_ = 0;
  std::uint64_t audio_events_ = 0, stale_audio_events_ = 0, interruptions_ = 0;
  std::uint64_t buffered_audio_events_ = 0;
  std::uint64_t pings_answered_ = 0;
  std::optional<std::int64_t> last_ping_ms_;
  std::uint64_t tool_calls_ = 0, malformed_ = 0, ignored_ = 0;
};

}  // namespace callgate::conversation
