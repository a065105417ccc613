// The simulator's conversation WebSocket: wss://…/v1/convai/conversation (API notes §4, §6),
// plus its control routes. Each accepted connection gets a scripted agent (agent::Session);
// this service authenticates the upgrade, owns the live sessions, the TTS worker and the
// statistics of ended sessions, and injects WebSocket faults.
//
// Wiring (next to Simulator::AddRoutes, on the same Router):
//   sim::ConversationService conversations(simulator, scheduler, {.ping_interval = ...});
//   conversations.AddRoutes(router);
// The server (and so the router's handlers) must stop before the service is destroyed, and the
// Simulator and Scheduler must outlive it.
//
// Authentication of the upgrade (query parameters):
//   * agent_id is required (else missing_fields);
//   * conversation_signature, or the alternative spelling token (§4, §9.2), is checked and
//     consumed with Simulator::ConsumeSignature (single use, 15 minutes);
//   * without a signature only agents with is_public are accepted.
// A refusal is, by default, what the service is believed to do: accept the upgrade, send an
// error event and close 1008 with the error type as the reason. With reject_with_http the
// upgrade is answered instead: 403 {"detail":{"status","message"}} for auth, 404 for an unknown
// agent, 422 (FastAPI shape) for a missing agent_id, 429 when max_sessions are live.
// The "convai" subprotocol is echoed when offered (the browser SDK offers it).
//
// Control routes (no auth, like the rest of /_sim/):
//   GET    /_sim/websockets                               summaries of live and ended sessions
//   GET    /_sim/conversations/{conversation_id}/websocket  one session's statistics
//   (Session::Stats) POST   /_sim/websocket-faults  {"drop_after_events":N} |
//   {"close_code":C,"after_events":N}
//          applies to the next accepted session; GET shows it, DELETE clears it.
//
// Client tool calls: a session whose init dynamic_variables has "sim_client_tool": "<name>"
// gets a client_tool_call of that tool after the first user turn, and the agent waits for the
// matching client_tool_result (at most client_tool_timeout) before replying.
//
// Thread-safe. Speech is synthesised on the service's own worker thread, never an I/O thread;
// sessions asking for the same line while it is queued share one synthesis.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "core/worker.hpp"
#include "http/router.hpp"
#include "sim/agent/session.hpp"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

namespace callgate::audio {
class SpeechSynthesizer;
}

namespace callgate::sim {

class Simulator;

class ConversationService {
 public:
  ConversationService(Simulator& simulator, core::Scheduler& scheduler,
                      ConversationServiceOptions options = {});
  ~ConversationService();  // closes live sessions (1001) and ends their conversations
  ConversationService(const ConversationService&) = delete;
  ConversationService& operator=(const ConversationService&) = delete;

  void AddRoutes(http::Router& router);

 private:
  struct Registry;
  class Handler;

  http::WebSocketAccept Accept(const http::Request& request);
  bool Speak(std::string text, int sample_rate, std::string language,
             std::function<void(std::vector<std::int16_t>)> done);
  http::Response ListSessions() const;
  http::Response GetSession(std::string_view conversation_id) const;
  http::Response SetFault(const http::Request& request);
  http::Response GetFault() const;
  http::Response ClearFault();

  Simulator& simulator_;
  core::Scheduler& scheduler_;
  const ConversationServiceOptions options_;
  core::SystemClock clock_;  // pacing and ping latency are real time, whatever the sim's clock
  std::shared_ptr<Registry> registry_;
  std::unique_ptr<audio::SpeechSynthesizer> synthesizer_;  // the worker thread only; lazy
  // Syntheses queued or running, (text, rate, language) -> who waits for the samples.
  using SpeechKey = std::tuple<std::string, int, std::string>;
  std::mutex speech_mutex_;
  std::map<SpeechKey, std::vector<std::function<void(std::vector<std::int16_t>)>>> speech_waiting_;
  core::Worker worker_;  // last member: stopped (joined) first
};

}  // namespace callgate::sim
