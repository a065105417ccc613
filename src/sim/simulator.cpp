#include "sim/simulator.hpp"

#include "core/strings.hpp"

#include "core/secure_compare.hpp"
#include "sim/fastapi_errors.hpp"
#include "sim/render.hpp"
#include "sim/tokens.hpp"

#include <stdexcept>

namespace callgate::sim {
namespace {

// Faults recorded for requests the observer never saw (unit tests without an observer) must not
// accumulate forever.
constexpr std::size_t kMaxPendingFaultMarks = 10'000;

std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> out;
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t slash = path.find('/', start);
    const std::size_t end = slash == std::string_view::npos ? path.size() : slash;
    out.emplace_back(path.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// Does the concrete `path` fit `pattern` ("{name}" segments match any non-empty segment)?
bool PathFitsPattern(std::string_view path, std::string_view pattern) {
  const auto a = Segments(path);
  const auto b = Segments(pattern);
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const bool param = b[i].size() > 2 && b[i].front() == '{' && b[i].back() == '}';
    if (param ? a[i].empty() : a[i] != b[i]) return false;
  }
  return true;
}

}  // namespace

Simulator::Simulator(SimOptions options, core::Clock& clock, core::Scheduler& scheduler)
    : options_(std::move(options)),
      clock_(clock),
      scheduler_(scheduler),
      state_(options_),
      journal_(options_.max_journal_entries, options_.api_key) {}

void Simulator::AddRoutes(http::Router& router) {
  const http::RouteOptions json_body{.body = http::BodyKind::kRaw};
  AddApiRoute(router, "POST", "/v1/convai/twilio/outbound-call", &Simulator::TwilioOutboundCall,
              json_body);
  AddApiRoute(router, "POST", "/v1/convai/sip-trunk/outbound-call", &Simulator::SipOutboundCall,
              json_body);
  AddApiRoute(router, "GET", "/v1/convai/phone-numbers", &Simulator::ListPhoneNumbers);
  AddApiRoute(router, "GET", "/v1/convai/phone-numbers/{phone_number_id}",
              &Simulator::GetPhoneNumber);
  AddApiRoute(router, "GET", "/v1/convai/conversations", &Simulator::ListConversations);
  AddApiRoute(router, "GET", "/v1/convai/conversations/{conversation_id}",
              &Simulator::GetConversation);
  AddAsyncApiRoute(router, "GET", "/v1/convai/conversations/{conversation_id}/audio",
                   &Simulator::GetConversationAudio);
  AddApiRoute(router, "DELETE", "/v1/convai/conversations/{conversation_id}",
              &Simulator::DeleteConversation);
  AddApiRoute(router, "GET", "/v1/convai/conversation/get-signed-url", &Simulator::GetSignedUrl);
  // Deprecated snake_case alias (changelog 2025-05-19), still served.
  AddApiRoute(router, "GET", "/v1/convai/conversation/get_signed_url", &Simulator::GetSignedUrl);
  AddControlRoutes(router);
}

void Simulator::AddApiRoute(http::Router& router, std::string method, std::string pattern,
                            ApiHandler handler, http::RouteOptions options) {
  AddRunnerRoute(
      router, std::move(method), std::move(pattern),
      [this, handler](const http::Request& r, std::string_view trace_id, const Finish& finish) {
        finish((this->*handler)(r, trace_id));
      },
      options);
}

void Simulator::AddAsyncApiRoute(http::Router& router, std::string method, std::string pattern,
                                 AsyncApiHandler handler, http::RouteOptions options) {
  AddRunnerRoute(
      router, std::move(method), std::move(pattern),
      [this, handler](const http::Request& r, std::string_view trace_id, Finish finish) {
        (this->*handler)(r, trace_id, std::move(finish));
      },
      options);
}

void Simulator::AddRunnerRoute(http::Router& router, std::string method, std::string pattern,
                               Runner run, http::RouteOptions options) {
  api_routes_.emplace_back(method, pattern);
  router.Add(
      std::move(method), pattern,
      [this, pattern, run = std::move(run)](http::Request request, http::Responder responder) {
        ServeApi(pattern, std::move(request), std::move(responder), run);
      },
      options);
}

void Simulator::ServeApi(const std::string& pattern, http::Request request,
                         http::Responder responder, Runner run) {
  const std::string trace_id = NewTraceId();
  std::optional<Fault> fault;
  {
    std::lock_guard lock(mutex_);
    fault = faults_.Take(request.method, pattern, request.path);
    if (fault) {
      if (fault_by_request_.size() >= kMaxPendingFaultMarks) fault_by_request_.clear();
      fault_by_request_[request.request_id] = fault->id;
    }
  }
  const auto latency = fault ? fault->spec.latency : std::chrono::milliseconds(0);
  auto send = [this, responder, trace_id, latency](http::Response response) {
    SetTraceId(response, trace_id);
    if (latency.count() > 0) {
      scheduler_.After(latency, [responder, delayed = std::move(response)]() mutable {
        responder.Send(std::move(delayed));
      });
    } else {
      responder.Send(std::move(response));
    }
  };
  std::optional<http::Response> replacement;
  if (fault) replacement = FaultResponse(fault->spec, trace_id);
  if (replacement) {
    if (fault->spec.process_request) run(request, trace_id, [](const http::Response&) {});
    send(std::move(*replacement));
    return;
  }
  const bool truncate = fault && fault->spec.action == FaultAction::kTruncate;
  run(request, trace_id, [send, truncate](http::Response response) {
    if (truncate) TruncateBody(response);
    send(std::move(response));
  });
}

std::optional<http::Response> Simulator::CheckApiKey(const http::Request& request,
                                                     std::string_view trace_id) const {
  const auto key = request.headers.Get("xi-api-key");
  if (!key || core::TrimWhitespace(*key).empty()) {
    // An Authorization header alone is a credential the simulator cannot accept.
    if (request.headers.Get("Authorization")) return InvalidApiKey(trace_id);
    return MissingApiKey(trace_id);
  }
  if (options_.api_key.empty()) return std::nullopt;
  if (!core::ConstantTimeEquals(core::TrimWhitespace(*key), options_.api_key)) {
    return InvalidApiKey(trace_id);
  }
  return std::nullopt;
}

bool Simulator::IsKnownApiRoute(std::string_view route) const {
  if (route == "*") return true;
  const auto space = route.find(' ');
  if (space == std::string_view::npos) return false;
  const std::string_view method = route.substr(0, space);
  const std::string_view target = route.substr(space + 1);
  for (const auto& [m, pattern] : api_routes_) {
    if (m == method && (pattern == target || PathFitsPattern(target, pattern))) return true;
  }
  return false;
}

http::ErrorRenderer Simulator::ErrorRenderer() const {
  return [](int status, std::string_view, std::string_view message, std::string_view,
            boost::json::object) { return FrameworkError(status, message, NewTraceId()); };
}

http::RequestObserver Simulator::Observer() {
  return [this](const http::Request& request, const http::Response& response) {
    if (request.path == "/_sim" || request.path.starts_with("/_sim/")) return;
    std::lock_guard lock(mutex_);
    std::string fault_id;
    if (const auto it = fault_by_request_.find(request.request_id); it != fault_by_request_.end()) {
      fault_id = std::move(it->second);
      fault_by_request_.erase(it);
    }
    journal_.Record(request, response, clock_.Now(), std::move(fault_id));
  };
}

Simulator::SignatureCheck Simulator::ConsumeSignature(std::string_view agent_id,
                                                      std::string_view signature) {
  std::lock_guard lock(mutex_);
  return state_.ConsumeSignature(agent_id, signature, clock_.Now());
}

const AgentConfig* Simulator::FindAgent(std::string_view agent_id) const {
  return state_.FindAgent(agent_id);  // immutable after construction: no lock needed
}

std::optional<Simulator::WebSocketStart> Simulator::BeginWebSocketConversation(
    std::string_view agent_id, const boost::json::object& client_data) {
  const AgentConfig* agent = state_.FindAgent(agent_id);
  if (agent == nullptr) return std::nullopt;
  ConversationRecord record;
  record.channel = Channel::kWebSocket;
  record.conversation_id = NewConversationId();
  record.created = clock_.Now();
  boost::json::object data = client_data;
  data.erase("type");
  PrepareConversation(record, *agent, std::move(data),
                      {{"system__agent_id", agent->agent_id},
                       {"system__current_agent_id", agent->agent_id},
                       {"system__conversation_id", record.conversation_id},
                       {"system__time_utc", FormatUtc(record.created)}});
  WebSocketStart start{record.conversation_id, record.first_message, record.language,
                       record.missing_variables};
  std::lock_guard lock(mutex_);
  awaiting_end_.push_back(record.conversation_id);
  state_.AddConversation(std::move(record));
  return start;
}

Simulator::EndedConversation Simulator::MakeEnded(const ConversationRecord& record,
                                                  ConversationSnapshot snapshot) const {
  EndedConversation ended;
  ended.conversation_id = record.conversation_id;
  ended.agent_id = record.agent_id;
  ended.status = snapshot.status;
  ended.channel = record.channel;
  ended.provider = record.provider;
  ended.behaviour = record.behaviour;
  ended.call_sid = record.call_sid;
  ended.agent_number = record.agent_number;
  ended.external_number = record.external_number;
  ended.termination_reason = snapshot.termination_reason;
  ended.answered =
      record.channel == Channel::kWebSocket || snapshot.accepted_time_unix_secs.has_value();
  ended.has_audio = snapshot.has_audio;
  ended.conversation = ConversationJson(record, snapshot);
  ended.transcript = std::move(snapshot.transcript);
  return ended;
}

std::vector<Simulator::EndedConversation> Simulator::TakeNewlyEnded() {
  std::vector<EndedConversation> ended;
  std::lock_guard lock(mutex_);
  const auto now = clock_.Now();
  std::erase_if(awaiting_end_, [&](const std::string& id) {
    const ConversationRecord* record = state_.FindConversation(id);
    if (record == nullptr) return true;  // deleted (or evicted) before it ended
    // A live WebSocket conversation is in progress until it ends: skip Evaluate(), which
    // copies its transcript (this runs every poll_interval over every live conversation).
    if (record->channel == Channel::kWebSocket && !record->ended) return false;
    ConversationSnapshot snapshot = Evaluate(*record, now, state_.durations());
    if (snapshot.status != ConversationStatus::kDone &&
        snapshot.status != ConversationStatus::kFailed) {
      return false;
    }
    ended.push_back(MakeEnded(*record, std::move(snapshot)));
    return true;
  });
  return ended;
}

std::optional<Simulator::EndedConversation> Simulator::FindEnded(std::string_view conversation_id,
                                                                 bool& known) {
  std::lock_guard lock(mutex_);
  const ConversationRecord* record = state_.FindConversation(conversation_id);
  known = record != nullptr;
  if (record == nullptr) return std::nullopt;
  ConversationSnapshot snapshot = Evaluate(*record, clock_.Now(), state_.durations());
  if (snapshot.status != ConversationStatus::kDone &&
      snapshot.status != ConversationStatus::kFailed) {
    return std::nullopt;
  }
  return MakeEnded(*record, std::move(snapshot));
}

bool Simulator::RenderRecording(std::string conversation_id, std::vector<TranscriptTurn> transcript,
                                RecordingRenderer::Done done) {
  return recordings_.Render(std::move(conversation_id), std::move(transcript), std::move(done));
}

bool Simulator::AppendTranscript(std::string_view conversation_id, std::string_view role,
                                 std::string message) {
  std::lock_guard lock(mutex_);
  ConversationRecord* record = state_.FindConversation(conversation_id);
  if (record == nullptr || record->channel != Channel::kWebSocket || record->ended) return false;
  const auto now = clock_.Now();
  const std::int64_t secs =
      now <= record->created
          ? 0
          : std::chrono::duration_cast<std::chrono::seconds>(now - record->created).count();
  record->live_transcript.push_back({std::string(role), std::move(message), secs});
  return true;
}

bool Simulator::AmendLastAgentTurn(std::string_view conversation_id, std::string spoken) {
  std::lock_guard lock(mutex_);
  ConversationRecord* record = state_.FindConversation(conversation_id);
  if (record == nullptr || record->channel != Channel::kWebSocket || record->ended) return false;
  for (auto it = record->live_transcript.rbegin(); it != record->live_transcript.rend(); ++it) {
    if (it->role == "agent") {
      it->message = std::move(spoken);
      return true;
    }
  }
  return false;
}

bool Simulator::EndWebSocketConversation(std::string_view conversation_id,
                                         std::string termination_reason) {
  std::lock_guard lock(mutex_);
  ConversationRecord* record = state_.FindConversation(conversation_id);
  if (record == nullptr || record->channel != Channel::kWebSocket || record->ended) return false;
  record->ended = clock_.Now();
  record->end_reason = std::move(termination_reason);
  return true;
}

CalleeBehaviour Simulator::ParseCallee(std::string_view text) {
  if (text == "answer") return CalleeBehaviour::kAnswer;
  if (text == "busy") return CalleeBehaviour::kBusy;
  if (text == "no-answer") return CalleeBehaviour::kNoAnswer;
  if (text == "fail") return CalleeBehaviour::kFail;
  throw std::invalid_argument("unknown callee behaviour '" + std::string(text) +
                              "'; expected answer, busy, no-answer or fail");
}

std::string_view Simulator::CalleeName(CalleeBehaviour behaviour) {
  switch (behaviour) {
    case CalleeBehaviour::kAnswer:
      return "answer";
    case CalleeBehaviour::kBusy:
      return "busy";
    case CalleeBehaviour::kNoAnswer:
      return "no-answer";
    case CalleeBehaviour::kFail:
      return "fail";
  }
  return "answer";
}

}  // namespace callgate::sim
