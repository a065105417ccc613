// The session engine: runs live ConvAI conversations between this host's audio endpoints and
// ElevenLabs agents. Used by the dialer endpoint (POST /webhook/initiate-call) and by
// `callgate talk` alike.
//
// One conversation, start to end:
//   1. endpoints whose rate does not depend on the agent (devices, an input file) are opened on
//      the worker, so a missing device ends the session before anything is asked upstream;
//   2. GET get-signed-url (ElevenLabsApi::GetSignedUrl) -> the signed ws(s):// URL;
//   3. the WebSocket opens (Transport; verified TLS) and conversation_initiation_client_data
//      is sent first;
//   4. conversation_initiation_metadata gives the formats: the remaining endpoints (null, the
//      output file) are opened at the formats' rates and all are started, on the worker;
//   5. every `tick` (DefaultTick: 25 ms for 50 ms chunks) on the session's strand: playback to
//      the output endpoint, capture from the input, user_audio_chunk messages of
//      `session.audio.chunk` (50 ms), each sent on the tick it ends on;
//   6. server events are handled by SessionMachine (session.hpp): pongs, transcripts, tools,
//      interruptions, end_call (the last words are played out before the end), errors;
//   7. the end: the socket is closed (1000 when we close), the endpoints are stopped on the
//      worker (the output WAV is complete), then `on_done` gets the final SessionStats.
// End reasons are listed in stats.hpp.
//
// Usage:
//   auto transports = MakeWebSocketTransportFactory(runtime, {.ca_file = cfg.ca_file});
//   core::Worker worker("audio", 256);
//   backends::MonotonicClock audio_clock;  core::SystemClock wall_clock;
//   Engine engine({api, *transports, worker, wall_clock, audio_clock}, EngineOptions{});
//   auto started = engine.Start({.agent_id = "agent_...",
//                                .input = *ParseBackendSpec("file:/tmp/in.wav"),
//                                .output = *ParseBackendSpec("file:/tmp/out.wav"),
//                                .initiation = {.dynamic_variables = {{"name", "Ann"}}},
//                                .on_done = [](const SessionStats& s) { ... }});
//   if (auto* session = std::get_if<std::shared_ptr<Session>>(&started)) {
//     (*session)->Stats();  // any time, any thread
//     (*session)->Stop();   // ends with close 1000, reason "stopped"
//   }
//
// Threading: Engine and Session methods are thread-safe and never block (except
// Engine::Shutdown, which waits). Each session lives on its transport's strand; the callbacks
// of a SessionRequest (on_transcript, tool_handler, on_done) run there, so they must not block;
// on_done runs exactly once, after the endpoints are closed. Blocking work (opening, starting
// and stopping endpoints) runs on the worker.
//
// Ownership: a running session keeps itself alive (the engine holds it until on_done); the
// shared_ptr returned by Start() is only a handle. The dependencies must outlive the engine;
// destroy the engine (which calls Shutdown()) while the runtime still runs, and before the
// runtime, the worker and the transport factory.
//
// Bounds: max_sessions at once; one session per physical device (the same `device[:NAME]`
// spec); plus the per-session bounds of SessionMachineOptions and TransportOptions.
#pragma once

#include "audio/backends/device_backend.hpp"
#include "audio/backends/spec.hpp"
#include "conversation/protocol.hpp"
#include "conversation/session.hpp"
#include "conversation/stats.hpp"
#include "conversation/transport.hpp"
#include "core/clock.hpp"
#include "core/worker.hpp"
#include "metrics/latency.hpp"
#include "upstream/elevenlabs.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <variant>

namespace callgate::conversation {

// What a client tool handler answers.
struct ToolOutcome {
  std::string result;
  bool is_error = false;
};

// Runs a client tool the agent called. Invoked on the session's strand: it must not block.
// Call `reply` once, from any thread, within SessionMachineOptions::tool_timeout (after that
// the agent has been told the tool timed out and the reply is ignored).
using ToolHandler =
    std::function<void(const ClientToolCall& call, std::function<void(ToolOutcome)> reply)>;

struct SessionRequest {
  std::string session_id;               // for stats and logs; "sess_<hex>" when empty
  std::string agent_id;                 // required
  audio::backends::BackendSpec input;   // default: null
  audio::backends::BackendSpec output;  // default: null
  InitiationData initiation;            // dynamic_variables, conversation_config_override, ...
  ToolHandler tool_handler;             // empty: every client_tool_call gets is_error:true
  std::function<void(const TranscriptUpdate&)> on_transcript;  // live transcript; optional
  std::function<void(const SessionStats&)> on_done;            // the final stats; optional
};

struct EngineOptions {
  // The audio clock. 0: DefaultTick(chunk), steps that divide the chunk (25 ms for 50 ms
  // chunks), and each chunk goes out on the tick it ends on (Uplink's `early`, half a tick).
  std::chrono::milliseconds tick{0};
  // Chunk (AUDIO_CHUNK_MS), jitter buffer (AUDIO_JITTER_PREBUFFER_MS, AUDIO_JITTER_MAX_MS),
  // transcript bounds, tool and metadata timeouts, drain timeout.
  SessionMachineOptions session;
  audio::backends::EchoCancellationMode echo = audio::backends::EchoCancellationMode::kAuto;
  audio::backends::DeviceOptions device;
  std::chrono::milliseconds file_flush_interval{200};
  std::size_t max_sessions = 1000;
};

// The tick for a chunk length: its largest divisor from 10 to 25 ms (a chunk of less than 10 ms:
// itself); 20 ms when there is none (a chunk of 53 ms), and chunks then wait for their tick.
std::chrono::milliseconds DefaultTick(std::chrono::milliseconds chunk);

struct EngineDependencies {
  upstream::ElevenLabsApi& api;
  TransportFactory& transports;
  core::Worker& worker;            // opens, starts and stops audio endpoints
  const core::Clock& wall_clock;   // timestamps in the stats (core::SystemClock)
  const core::Clock& audio_clock;  // paces file and null endpoints (backends::MonotonicClock)
};

struct StartError {
  enum class Code {
    kInvalidRequest,   // no agent_id
    kTooManySessions,  // max_sessions are running
    kDeviceBusy,       // another session owns that audio device
    kDuplicateId,      // a running session has this session_id
    kShuttingDown,
  };
  Code code = Code::kInvalidRequest;
  std::string message;
};

// A handle on one running (or finished) conversation.
class Session {
 public:
  virtual ~Session() = default;
  virtual const std::string& id() const = 0;
  // Ends the conversation cleanly (close 1000, reason "stopped"); idempotent, any thread.
  virtual void Stop() = 0;
  // A snapshot, any thread.
  virtual SessionStats Stats() const = 0;
  virtual bool finished() const = 0;
  // Client messages while the session is active (dropped otherwise); any thread.
  virtual void SendUserMessage(std::string text) = 0;
  virtual void SendContextualUpdate(std::string text) = 0;
  virtual void SendUserActivity() = 0;
};

class Engine {
 public:
  Engine(EngineDependencies deps, EngineOptions options);
  ~Engine();  // Shutdown()
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Starts a conversation in the background; never blocks. Every failure after this point
  // (signed URL, connection, devices, ...) ends the session with a reason, reported to on_done.
  std::variant<std::shared_ptr<Session>, StartError> Start(SessionRequest request);

  // The session with this id, while it runs (no longer once its on_done is called).
  std::shared_ptr<Session> Find(const std::string& session_id) const;
  std::size_t active() const;

  // From an `audio` event read off the WebSocket (Transport::received_at) to its samples being
  // in the session's playback buffer (parse, base64, conversion, jitter buffer), over every
  // session so far; events that arrive before the pipeline is started are not counted.
  metrics::LatencySummary audio_event_latency() const;

  // Refuses new sessions, stops every running one and waits up to `grace` for them to end (their
  // on_done has returned); then cuts the connections of the rest and waits up to `grace` again.
  // Idempotent.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(5));

  const EngineOptions& options() const { return options_; }

  // Shared with the sessions, which outlive neither it nor the engine's dependencies.
  struct Registry;

 private:
  EngineDependencies deps_;
  const EngineOptions options_;
  std::shared_ptr<Registry> registry_;
};

// "HTTP 401 invalid_api_key: Invalid API key", "timed out: ...": an upstream error in one line.
std::string DescribeApiError(const upstream::ApiError& error);

}  // namespace callgate::conversation
