// The ElevenLabs Conversational AI simulator, REST half: the real API's routes used by callgate
// (outbound calls, phone numbers, conversations, signed URLs) with the real shapes and errors,
// plus a control API under /_sim/ for tests (request journal, fault injection, clock, callee
// behaviour). Registered on an http::Router and served by the ordinary http::Server.
//
// Wiring (the composition root does this):
//   sim::Simulator simulator(options, clock, scheduler);
//   http::Router router;  simulator.AddRoutes(router);
//   http::Dispatcher dispatcher(router, {.render_error = simulator.ErrorRenderer(),
//                                        .observer = simulator.Observer()});
// The router, dispatcher and server must not outlive the Simulator (handlers capture it).
//
// Behaviour worth knowing (details in elevenlabs-api.md and the headers of sim/):
//   * Every /v1 route needs xi-api-key == SimOptions::api_key (compared in constant time; an
//     empty SimOptions::api_key accepts any non-empty key). Request validation (422) comes
//     first, as on the real API, then auth (401), then lookups (404/400).
//   * Every /v1 response carries x-trace-id, equal to detail.request_id in error bodies.
//   * Conversation state is computed from the injected clock (lifecycle.hpp); nothing is timed.
//   * Faults (faults.hpp) replace or delay the answers of matching /v1 requests; injected
//     latency waits on the injected Scheduler, never on an I/O thread. Reset, status and html
//     faults answer before the request takes effect (no call is created), unless the fault has
//     "process_request": true; latency and truncate faults always let it take effect.
//   * The journal sees every request except /_sim/ ones (journal.hpp), secrets redacted.
// Thread-safe: one mutex guards all state; it is never held while answering.
#pragma once

#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "http/dispatcher.hpp"
#include "http/router.hpp"
#include "sim/faults.hpp"
#include "sim/journal.hpp"
#include "sim/lifecycle.hpp"
#include "sim/options.hpp"
#include "sim/recording.hpp"
#include "sim/state.hpp"

#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace callgate::sim {

class Simulator {
 public:
  using SignatureCheck = sim::SignatureCheck;

  Simulator(SimOptions options, core::Clock& clock, core::Scheduler& scheduler);
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Every /v1/... and /_sim/... route.
  void AddRoutes(http::Router& router);
  // FastAPI shapes for errors produced before a handler runs ({"detail":"Not Found"}, ...).
  http::ErrorRenderer ErrorRenderer() const;
  // Feeds the journal; /_sim/ requests are not recorded.
  http::RequestObserver Observer();

  // For the WebSocket side: checks a signed URL's conversation_signature and, when kOk,
  // consumes it (single use). Uses the injected clock for the 15-minute lifetime.
  SignatureCheck ConsumeSignature(std::string_view agent_id, std::string_view signature);
  // Agents never change after construction: the pointer is stable for the Simulator's life.
  const AgentConfig* FindAgent(std::string_view agent_id) const;

  // For the WebSocket side: a conversation held over the WebSocket, visible to the REST routes
  // (in-progress until EndWebSocketConversation, then processing for processing_secs, then
  // done). Times come from the injected clock.
  struct WebSocketStart {
    std::string conversation_id;
    std::string first_message;  // overrides applied (when allowed), variables substituted
    std::string language;
    // Non-empty when the first message references variables the client did not send: the real
    // service closes the session (1008, missing_dynamic_variable).
    std::vector<std::string> missing_variables;
  };
  // nullopt when the agent does not exist. `client_data` is the client's
  // conversation_initiation_client_data message (its "type" member is dropped).
  std::optional<WebSocketStart> BeginWebSocketConversation(std::string_view agent_id,
                                                           const boost::json::object& client_data);
  // `role` is "agent" or "user"; time_in_call_secs is taken from the clock. False when the
  // conversation is unknown, not a WebSocket one, or already ended.
  bool AppendTranscript(std::string_view conversation_id, std::string_view role,
                        std::string message);
  // After an interruption: the last agent turn becomes what was actually spoken. False as for
  // AppendTranscript, or when there is no agent turn.
  bool AmendLastAgentTurn(std::string_view conversation_id, std::string spoken);
  bool EndWebSocketConversation(std::string_view conversation_id, std::string termination_reason);

  // For the post-call webhook sender (webhooks.hpp): a conversation in its final state.
  struct EndedConversation {
    std::string conversation_id, agent_id;
    ConversationStatus status = ConversationStatus::kDone;  // kDone or kFailed
    Channel channel = Channel::kPhone;
    Provider provider = Provider::kTwilio;
    CalleeBehaviour behaviour = CalleeBehaviour::kAnswer;
    std::string call_sid, agent_number, external_number, termination_reason;
    bool answered = false;  // the callee picked up (or it was a WebSocket session)
    bool has_audio = false;
    std::vector<TranscriptTurn> transcript;
    boost::json::object conversation;  // the GET /v1/convai/conversations/{id} shape
  };
  // Conversations that reached done or failed since the last call; each is returned once.
  std::vector<EndedConversation> TakeNewlyEnded();
  // One conversation, when it has ended. `known` says whether the id exists at all.
  std::optional<EndedConversation> FindEnded(std::string_view conversation_id, bool& known);
  // The conversation's recording, as GET .../audio serves it (see recording.hpp).
  bool RenderRecording(std::string conversation_id, std::vector<TranscriptTurn> transcript,
                       RecordingRenderer::Done done);
  double time_scale() const { return options_.time_scale; }

  // "answer" | "busy" | "no-answer" | "fail"; throws std::invalid_argument otherwise.
  static CalleeBehaviour ParseCallee(std::string_view text);
  static std::string_view CalleeName(CalleeBehaviour behaviour);

 private:
  using ApiHandler = http::Response (Simulator::*)(const http::Request&, std::string_view);
  // Handlers that answer later (from another thread) call `finish` exactly once.
  using Finish = std::function<void(http::Response)>;
  using AsyncApiHandler = void (Simulator::*)(const http::Request&, std::string_view, Finish);
  using Runner = std::function<void(const http::Request&, std::string_view, Finish)>;

  void AddApiRoute(http::Router& router, std::string method, std::string pattern,
                   ApiHandler handler, http::RouteOptions options = {});
  void AddAsyncApiRoute(http::Router& router, std::string method, std::string pattern,
                        AsyncApiHandler handler, http::RouteOptions options = {});
  void AddRunnerRoute(http::Router& router, std::string method, std::string pattern, Runner run,
                      http::RouteOptions options);
  // Faults, trace id and latency around `run`, for synchronous and asynchronous handlers alike.
  void ServeApi(const std::string& pattern, http::Request request, http::Responder responder,
                Runner run);
  void AddControlRoutes(http::Router& router);
  // Under mutex_.
  EndedConversation MakeEnded(const ConversationRecord& record,
                              ConversationSnapshot snapshot) const;
  std::optional<http::Response> CheckApiKey(const http::Request& request,
                                            std::string_view trace_id) const;
  bool IsKnownApiRoute(std::string_view route) const;

  // Real-API handlers (rest_routes.cpp): synchronous; they lock mutex_ themselves.
  http::Response TwilioOutboundCall(const http::Request& request, std::string_view trace_id);
  http::Response SipOutboundCall(const http::Request& request, std::string_view trace_id);
  http::Response OutboundCall(const http::Request& request, std::string_view trace_id,
                              Provider provider);
  http::Response ListPhoneNumbers(const http::Request& request, std::string_view trace_id);
  http::Response GetPhoneNumber(const http::Request& request, std::string_view trace_id);
  http::Response ListConversations(const http::Request& request, std::string_view trace_id);
  http::Response GetConversation(const http::Request& request, std::string_view trace_id);
  http::Response DeleteConversation(const http::Request& request, std::string_view trace_id);
  http::Response GetSignedUrl(const http::Request& request, std::string_view trace_id);
  void GetConversationAudio(const http::Request& request, std::string_view trace_id, Finish finish);

  // Control handlers (control_routes.cpp).
  http::Response ControlListRequests(const http::Request& request);
  http::Response ControlClearRequests();
  http::Response ControlAddFault(const http::Request& request);
  http::Response ControlListFaults();
  http::Response ControlClearFaults();
  http::Response ControlAdvanceClock(const http::Request& request);
  http::Response ControlGetClock();
  http::Response ControlSetCallee(const http::Request& request);
  http::Response ControlListCallees();

  SimOptions options_;
  core::Clock& clock_;
  core::Scheduler& scheduler_;
  mutable std::mutex mutex_;
  SimState state_;
  FaultPlan faults_;
  Journal journal_;
  // request_id -> id of the fault applied to it, until the observer journals the request.
  std::unordered_map<std::string, std::string> fault_by_request_;
  std::vector<std::pair<std::string, std::string>> api_routes_;  // (method, pattern)
  // Conversations not yet done or failed, for TakeNewlyEnded().
  std::vector<std::string> awaiting_end_;
  RecordingRenderer recordings_;
};

}  // namespace callgate::sim
