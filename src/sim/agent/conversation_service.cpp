#include "sim/agent/conversation_service.hpp"

#include "audio/speech.hpp"
#include "sim/simulator.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <deque>
#include <map>
#include <mutex>

namespace callgate::sim {
namespace {

namespace json = boost::json;

constexpr std::size_t kWorkerQueue = 256;

// Is `token` one of the comma-separated values of a Sec-WebSocket-Protocol header?
bool OffersProtocol(std::string_view header, std::string_view token) {
  while (!header.empty()) {
    const auto comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    while (!item.empty() && item.front() == ' ')
      item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ')
      item.remove_suffix(1);
    if (item == token) return true;
    if (comma == std::string_view::npos) break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

std::string_view SignatureProblem(Simulator::SignatureCheck check) {
  switch (check) {
    case Simulator::SignatureCheck::kOk:
      return "";
    case Simulator::SignatureCheck::kExpired:
      return "The conversation signature has expired";
    case Simulator::SignatureCheck::kUsed:
      return "The conversation signature has already been used";
    case Simulator::SignatureCheck::kAgentMismatch:
      return "The conversation signature was issued for another agent";
    case Simulator::SignatureCheck::kUnknown:
      break;
  }
  return "The conversation signature is invalid";
}

json::object Summary(const json::object& stats) {
  json::object summary;
  for (const char* key : {"session_id", "conversation_id", "agent_id", "active", "events_total",
                          "user_audio_bytes", "agent_audio_bytes", "close"}) {
    if (const auto* value = stats.if_contains(key)) summary[key] = *value;
  }
  return summary;
}

http::Response Detail(int status, std::string_view code, std::string_view message) {
  return http::Response::Json(status, {{"detail", {{"status", code}, {"message", message}}}});
}

}  // namespace

struct ConversationService::Registry {
  mutable std::mutex mutex;
  bool closed = false;
  std::uint64_t next_id = 0;
  std::size_t pending = 0;  // accepted, not yet open
  std::map<std::string, std::shared_ptr<agent::Session>> live;
  std::deque<json::object> ended;  // statistics, oldest first
  std::optional<WebSocketFault> fault;
  std::size_t max_ended = 1000;

  void Finished(const std::string& session_id) {
    std::shared_ptr<agent::Session> session;
    {
      std::lock_guard lock(mutex);
      auto it = live.find(session_id);
      if (it == live.end()) return;
      session = it->second;
    }
    json::object stats = session->Stats();  // outside the registry lock
    std::lock_guard lock(mutex);
    live.erase(session_id);
    if (ended.size() >= std::max<std::size_t>(1, max_ended)) ended.pop_front();
    ended.push_back(std::move(stats));
  }
};

// What the server holds: registers the session when the handshake has completed (OnClose only
// follows a completed handshake), and refuses to start one once the service is stopping.
class ConversationService::Handler final : public http::WebSocketHandler {
 public:
  Handler(std::shared_ptr<Registry> registry, std::shared_ptr<agent::Session> session)
      : registry_(std::move(registry)), session_(std::move(session)) {}
  ~Handler() override {
    if (!opened_) {
      std::lock_guard lock(registry_->mutex);
      --registry_->pending;
    }
  }

  void OnOpen(std::shared_ptr<http::WebSocketConnection> connection) override {
    {
      std::lock_guard lock(registry_->mutex);
      --registry_->pending;
      opened_ = true;
      if (registry_->closed) {
        connection->Close(1001, "server shutting down");
        return;
      }
      registry_->live.emplace(session_->session_id(), session_);
      registered_ = true;
    }
    session_->OnOpen(std::move(connection));
  }
  void OnText(std::string_view message) override {
    if (registered_) session_->OnText(message);
  }
  void OnClose(std::uint16_t code, std::string_view reason) override {
    if (registered_) session_->OnClose(code, reason);
  }

 private:
  std::shared_ptr<Registry> registry_;
  std::shared_ptr<agent::Session> session_;
  bool opened_ = false;      // strand only
  bool registered_ = false;  // strand only
};

ConversationService::ConversationService(Simulator& simulator, core::Scheduler& scheduler,
                                         ConversationServiceOptions options)
    : simulator_(simulator),
      scheduler_(scheduler),
      options_(std::move(options)),
      registry_(std::make_shared<Registry>()),
      worker_("sim-tts", kWorkerQueue) {
  registry_->max_ended = options_.max_ended_sessions;
}

ConversationService::~ConversationService() {
  std::vector<std::shared_ptr<agent::Session>> live;
  {
    std::lock_guard lock(registry_->mutex);
    registry_->closed = true;
    for (auto& [id, session] : registry_->live)
      live.push_back(session);
  }
  for (auto& session : live)
    session->Shutdown();
  worker_.Stop();  // queued syntheses run; their sessions have ended and ignore the results
}

void ConversationService::AddRoutes(http::Router& router) {
  router.AddWebSocket("/v1/convai/conversation",
                      [this](const http::Request& request) { return Accept(request); });
  router.Add("GET", "/_sim/websockets",
             [this](http::Request, http::Responder responder) { responder.Send(ListSessions()); });
  router.Add("GET", "/_sim/conversations/{conversation_id}/websocket",
             [this](http::Request request, http::Responder responder) {
               responder.Send(GetSession(request.PathParam("conversation_id")));
             });
  router.Add("POST", "/_sim/websocket-faults",
             [this](http::Request request, http::Responder responder) {
               responder.Send(SetFault(request));
             },
             {.body = http::BodyKind::kJson, .max_body_bytes = 4096});
  router.Add("GET", "/_sim/websocket-faults",
             [this](http::Request, http::Responder responder) { responder.Send(GetFault()); });
  router.Add("DELETE", "/_sim/websocket-faults",
             [this](http::Request, http::Responder responder) { responder.Send(ClearFault()); });
}

http::WebSocketAccept ConversationService::Accept(const http::Request& request) {
  http::WebSocketAccept accept;
  if (auto offered = request.headers.Get("Sec-WebSocket-Protocol");
      offered && OffersProtocol(*offered, "convai")) {
    accept.subprotocol = "convai";
  }
  agent::SessionSettings settings;
  settings.options = options_;
  settings.agent_id = request.QueryParam("agent_id").value_or("");
  std::optional<agent::Refusal> refusal;
  int http_status = 403;
  const AgentConfig* agent = nullptr;
  if (settings.agent_id.empty()) {
    refusal = agent::Refusal{"missing_fields", "agent_id is required"};
    http_status = 422;
  } else if (agent = simulator_.FindAgent(settings.agent_id); agent == nullptr) {
    refusal = agent::Refusal{"value_error", "Agent " + settings.agent_id + " not found"};
    http_status = 404;
  } else {
    auto signature = request.QueryParam("conversation_signature");
    if (!signature) signature = request.QueryParam("token");
    if (signature) {
      const auto check = simulator_.ConsumeSignature(settings.agent_id, *signature);
      if (check != Simulator::SignatureCheck::kOk) {
        refusal = agent::Refusal{"authentication_error", std::string(SignatureProblem(check))};
      }
    } else if (!agent->is_public) {
      refusal = agent::Refusal{"authentication_error",
                               "This agent requires authentication: use a signed URL"};
    }
  }
  {
    std::lock_guard lock(registry_->mutex);
    if (!refusal && registry_->live.size() + registry_->pending >= options_.max_sessions) {
      refusal = agent::Refusal{"value_error", "Too many concurrent conversations"};
      http_status = 429;
    }
    settings.session_id = "ws_" + std::to_string(++registry_->next_id);
    if (!refusal && registry_->fault) {
      settings.fault = registry_->fault;
      registry_->fault.reset();
    }
  }
  if (refusal && options_.reject_with_http) {
    if (http_status == 422) {
      accept.refusal =
          http::Response::Json(422, {{"detail", json::array{{{"type", "missing"},
                                                             {"loc", {"query", "agent_id"}},
                                                             {"msg", "Field required"},
                                                             {"input", nullptr}}}}});
    } else {
      accept.refusal = Detail(http_status, refusal->error_type, refusal->message);
    }
    return accept;
  }
  settings.agent = agent;
  settings.refusal = std::move(refusal);
  std::weak_ptr<Registry> weak_registry = registry_;
  agent::SessionDependencies deps{
      .simulator = simulator_,
      .scheduler = scheduler_,
      .clock = clock_,
      .speak =
          [this](std::string text, int rate, std::string language,
                 std::function<void(std::vector<std::int16_t>)> done) {
            return Speak(std::move(text), rate, std::move(language), std::move(done));
          },
      .on_finished =
          [weak_registry](const std::string& session_id) {
            if (auto registry = weak_registry.lock()) registry->Finished(session_id);
          },
  };
  auto session = std::make_shared<agent::Session>(std::move(deps), std::move(settings));
  {
    std::lock_guard lock(registry_->mutex);
    ++registry_->pending;
  }
  accept.handler = std::make_shared<Handler>(registry_, std::move(session));
  return accept;
}

// Requests for a text already queued join it (sessions started together all greet with the same
// line): one synthesis, one worker task, however many sessions wait for it, so a burst of
// sessions does not fill the worker's queue.
bool ConversationService::Speak(std::string text, int sample_rate, std::string language,
                                std::function<void(std::vector<std::int16_t>)> done) {
  SpeechKey key{std::move(text), sample_rate, std::move(language)};
  // Posting under the lock (Worker::Post never calls back): nobody joins a request whose task
  // could not be queued.
  std::lock_guard lock(speech_mutex_);
  if (auto it = speech_waiting_.find(key); it != speech_waiting_.end()) {
    it->second.push_back(std::move(done));
    return true;
  }
  const bool posted = worker_.Post([this, key] {
    std::vector<std::int16_t> samples;
    try {
      if (!synthesizer_) synthesizer_ = std::make_unique<audio::SpeechSynthesizer>();
      samples = synthesizer_->Synthesize(std::get<0>(key), std::get<1>(key), std::get<2>(key));
    } catch (const std::exception& e) {
      spdlog::error("sim: speech synthesis failed: {}", e.what());
    }
    std::vector<std::function<void(std::vector<std::int16_t>)>> waiting;
    {
      std::lock_guard waiting_lock(speech_mutex_);
      if (auto it = speech_waiting_.find(key); it != speech_waiting_.end()) {
        waiting = std::move(it->second);
        speech_waiting_.erase(it);
      }
    }
    for (std::size_t i = 0; i < waiting.size(); ++i)
      waiting[i](i + 1 == waiting.size() ? std::move(samples) : samples);
  });
  if (posted) speech_waiting_[std::move(key)].push_back(std::move(done));
  return posted;
}

http::Response ConversationService::ListSessions() const {
  std::vector<std::shared_ptr<agent::Session>> live;
  json::array sessions;
  {
    std::lock_guard lock(registry_->mutex);
    for (const auto& stats : registry_->ended)
      sessions.push_back(Summary(stats));
    for (const auto& [id, session] : registry_->live)
      live.push_back(session);
  }
  for (const auto& session : live)
    sessions.push_back(Summary(session->Stats()));
  return http::Response::Json(200, {{"sessions", std::move(sessions)}});
}

http::Response ConversationService::GetSession(std::string_view conversation_id) const {
  std::vector<std::shared_ptr<agent::Session>> live;
  {
    std::lock_guard lock(registry_->mutex);
    for (auto it = registry_->ended.rbegin(); it != registry_->ended.rend(); ++it) {
      const auto* id = it->if_contains("conversation_id");
      if (id != nullptr && id->is_string() && id->as_string() == conversation_id) {
        return http::Response::Json(200, *it);
      }
    }
    for (const auto& [id, session] : registry_->live)
      live.push_back(session);
  }
  for (const auto& session : live) {
    if (session->conversation_id() == conversation_id) {
      return http::Response::Json(200, session->Stats());
    }
  }
  return Detail(404, "conversation_not_found",
                "No WebSocket session for conversation " + std::string(conversation_id));
}

http::Response ConversationService::SetFault(const http::Request& request) {
  if (!request.json || !request.json->is_object()) {
    return Detail(400, "invalid_fault", "the body must be a JSON object");
  }
  const auto& body = request.json->as_object();
  auto count = [&](const char* key) -> std::optional<std::int64_t> {
    const auto* value = body.if_contains(key);
    if (value == nullptr || !value->is_int64() || value->as_int64() < 1) return std::nullopt;
    return value->as_int64();
  };
  WebSocketFault fault;
  if (body.contains("drop_after_events")) {
    auto n = count("drop_after_events");
    if (!n) return Detail(400, "invalid_fault", "drop_after_events must be an integer >= 1");
    fault.drop = true;
    fault.after_events = static_cast<std::size_t>(*n);
  } else if (body.contains("close_code")) {
    const auto* code = body.if_contains("close_code");
    auto n = count("after_events");
    if (!code->is_int64() || code->as_int64() < 1000 || code->as_int64() > 4999 ||
        code->as_int64() == 1005 || code->as_int64() == 1006 || code->as_int64() == 1015) {
      return Detail(400, "invalid_fault", "close_code must be a sendable close code");
    }
    if (!n) return Detail(400, "invalid_fault", "after_events must be an integer >= 1");
    fault.close_code = static_cast<int>(code->as_int64());
    fault.after_events = static_cast<std::size_t>(*n);
  } else {
    return Detail(400, "invalid_fault", "expected drop_after_events or close_code + after_events");
  }
  {
    std::lock_guard lock(registry_->mutex);
    registry_->fault = fault;
  }
  return GetFault();
}

http::Response ConversationService::GetFault() const {
  std::lock_guard lock(registry_->mutex);
  json::value fault = nullptr;
  if (registry_->fault) {
    const auto& f = *registry_->fault;
    json::object object{{"after_events", f.after_events}};
    if (f.drop) {
      object["drop"] = true;
    } else {
      object["close_code"] = f.close_code;
    }
    fault = std::move(object);
  }
  return http::Response::Json(200, {{"fault", fault}});
}

http::Response ConversationService::ClearFault() {
  {
    std::lock_guard lock(registry_->mutex);
    registry_->fault.reset();
  }
  return http::Response::Json(200, {{"fault", nullptr}});
}

}  // namespace callgate::sim
