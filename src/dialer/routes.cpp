#include "dialer/routes.hpp"

#include "core/ids.hpp"
#include "http/dispatcher.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <utility>

namespace callgate::dialer {
namespace {

bool IsValidSessionId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
  });
}

http::Response Invalid(std::string_view field, std::string message, std::string_view rid) {
  return http::ErrorResponse(400, "invalid_request", message, rid, {{"field", field}});
}

// The answer to a session the engine would not start: its HTTP status and error code.
std::pair<int, std::string_view> StartErrorAnswer(conversation::StartError::Code code) {
  using Code = conversation::StartError::Code;
  switch (code) {
    case Code::kInvalidRequest:
      return {400, "invalid_request"};
    case Code::kTooManySessions:
      return {503, "too_many_sessions"};
    case Code::kDeviceBusy:
      return {409, "audio_device_busy"};
    case Code::kDuplicateId:
      return {409, "session_exists"};
    case Code::kShuttingDown:
      return {503, "shutting_down"};
  }
  return {400, "invalid_request"};
}

http::Response SessionNotFound(const std::string& id, std::string_view rid) {
  return http::ErrorResponse(404, "session_not_found", "no session with id '" + id + "'", rid);
}

}  // namespace

Dialer::Dialer(conversation::Engine& engine, SessionStore& store, DialerOptions options)
    : engine_(engine), store_(store), options_(std::move(options)) {}

void Dialer::AddRoutes(http::Router& router) {
  router.Add(
      "POST", "/webhook/initiate-call",
      [this](http::Request r, http::Responder s) { Initiate(std::move(r), std::move(s)); },
      {.body = http::BodyKind::kJson, .max_body_bytes = 64 * 1024, .requires_api_key = true});
  router.Add("GET", "/webhook/sessions",
             [this](http::Request r, http::Responder s) { List(std::move(r), std::move(s)); },
             {.requires_api_key = true});
  router.Add("GET", "/webhook/sessions/{session_id}",
             [this](http::Request r, http::Responder s) { Show(std::move(r), std::move(s)); },
             {.requires_api_key = true});
  router.Add("DELETE", "/webhook/sessions/{session_id}",
             [this](http::Request r, http::Responder s) { End(std::move(r), std::move(s)); },
             {.requires_api_key = true});
}

boost::json::object Dialer::Render(const conversation::SessionStats& stats,
                                   const boost::json::object& metadata) {
  boost::json::object out = conversation::StatsToJson(stats);
  out["metadata"] = metadata;
  return out;
}

void Dialer::Initiate(http::Request request, http::Responder responder) {
  const std::string& rid = request.request_id;
  if (!request.json || !request.json->is_object()) {
    responder.Send(
        http::ErrorResponse(400, "invalid_request", "the body must be a JSON object", rid));
    return;
  }
  const auto& body = request.json->as_object();
  for (const auto& [name, value] : body) {
    if (name != "agent_id" && name != "session_id" && name != "metadata" &&
        name != "dynamic_variables" && name != "conversation_config_override") {
      responder.Send(Invalid(name,
                             "unknown field '" + std::string(name) +
                                 "'; accepted: agent_id, session_id, metadata, "
                                 "dynamic_variables, conversation_config_override",
                             rid));
      return;
    }
  }
  conversation::SessionRequest session;
  session.agent_id = options_.default_agent_id;
  if (const auto* agent = body.if_contains("agent_id")) {
    if (!agent->is_string() || agent->as_string().empty() || agent->as_string().size() > 128) {
      responder.Send(Invalid("agent_id", "agent_id must be a non-empty string", rid));
      return;
    }
    session.agent_id = agent->as_string();
  }
  if (session.agent_id.empty()) {
    responder.Send(
        http::ErrorResponse(400, "invalid_request",
                            "agent_id is required (or set ELEVENLABS_AGENT_ID for a default agent)",
                            rid, {{"field", "agent_id"}}));
    return;
  }
  session.session_id = core::NewId("sess");
  if (const auto* id = body.if_contains("session_id"); id != nullptr && !id->is_null()) {
    if (!id->is_string() || !IsValidSessionId(id->as_string())) {
      responder.Send(Invalid(
          "session_id", "session_id must be 1-128 characters of letters, digits and -_.:", rid));
      return;
    }
    session.session_id = id->as_string();
  }
  boost::json::object metadata;
  if (const auto* value = body.if_contains("metadata"); value != nullptr && !value->is_null()) {
    if (!value->is_object() ||
        boost::json::serialize(*value).size() > options_.max_metadata_bytes) {
      responder.Send(Invalid("metadata",
                             "metadata must be an object of at most " +
                                 std::to_string(options_.max_metadata_bytes) + " bytes of JSON",
                             rid));
      return;
    }
    metadata = value->as_object();
  }
  if (const auto* vars = body.if_contains("dynamic_variables"); vars && !vars->is_null()) {
    if (!vars->is_object()) {
      responder.Send(Invalid("dynamic_variables", "dynamic_variables must be an object", rid));
      return;
    }
    for (const auto& [name, value] : vars->as_object()) {
      if (!(value.is_string() || value.is_number() || value.is_bool() || value.is_null())) {
        responder.Send(Invalid("dynamic_variables",
                               "dynamic variable '" + std::string(name) +
                                   "' must be a string, number, boolean or null",
                               rid));
        return;
      }
    }
    session.initiation.dynamic_variables = vars->as_object();
  }
  if (const auto* config = body.if_contains("conversation_config_override");
      config && !config->is_null()) {
    if (!config->is_object()) {
      responder.Send(Invalid("conversation_config_override",
                             "conversation_config_override must be an object", rid));
      return;
    }
    session.initiation.conversation_config_override = config->as_object();
  }
  session.input = options_.input;
  session.output = options_.output;
  const std::string session_id = session.session_id;
  const std::string agent_id = session.agent_id;
  {
    std::lock_guard lock(shared_->mutex);
    if (shared_->running.contains(session_id)) {
      responder.Send(http::ErrorResponse(409, "session_exists",
                                         "a session with id '" + session_id + "' is running", rid,
                                         {{"session_id", session_id}}));
      return;
    }
  }
  auto shared = shared_;
  SessionStore* store = &store_;
  session.on_done = [shared, store, session_id](const conversation::SessionStats& stats) {
    boost::json::object kept;
    {
      std::lock_guard lock(shared->mutex);
      auto it = shared->running.find(session_id);
      if (it != shared->running.end()) kept = it->second.metadata;
    }
    const std::string reason = stats.end_reason ? stats.end_reason->ToString() : "";
    spdlog::info("dialer: session {} ended ({})", session_id, reason);
    // Listed as running (with its final stats) until the store has it: never a 404 in between.
    store->Save(Render(stats, kept), [shared, session_id](bool) {
      std::lock_guard lock(shared->mutex);
      shared->running.erase(session_id);
    });
  };
  {
    // Registered before Start so that a session ending at once still finds its metadata.
    std::lock_guard lock(shared_->mutex);
    shared_->running[session_id] = Running{nullptr, metadata};
  }
  auto started = engine_.Start(std::move(session));
  if (auto* error = std::get_if<conversation::StartError>(&started)) {
    {
      std::lock_guard lock(shared_->mutex);
      shared_->running.erase(session_id);
    }
    const auto [status, code] = StartErrorAnswer(error->code);
    responder.Send(http::ErrorResponse(status, code, error->message, rid));
    return;
  }
  {
    std::lock_guard lock(shared_->mutex);
    auto it = shared_->running.find(session_id);
    if (it != shared_->running.end()) {
      it->second.session = std::get<std::shared_ptr<conversation::Session>>(started);
    }
  }
  spdlog::info("dialer: session {} starting with agent {}", session_id, agent_id);
  responder.Send(http::Response::Json(202, {{"session_id", session_id},
                                            {"status", "starting"},
                                            {"agent_id", agent_id},
                                            {"metadata", metadata}}));
}

void Dialer::List(http::Request, http::Responder responder) {
  boost::json::array sessions;
  {
    std::lock_guard lock(shared_->mutex);
    for (const auto& [id, running] : shared_->running) {
      if (running.session) sessions.push_back(Render(running.session->Stats(), running.metadata));
    }
  }
  store_.List(options_.recent_sessions, [responder, sessions = std::move(sessions)](
                                            std::vector<boost::json::object> ended) mutable {
    for (auto& session : ended)
      sessions.push_back(std::move(session));
    responder.Send(http::Response::Json(200, {{"sessions", std::move(sessions)}}));
  });
}

void Dialer::Show(http::Request request, http::Responder responder) {
  const std::string id(request.PathParam("session_id"));
  {
    std::lock_guard lock(shared_->mutex);
    auto it = shared_->running.find(id);
    if (it != shared_->running.end() && it->second.session) {
      responder.Send(
          http::Response::Json(200, Render(it->second.session->Stats(), it->second.metadata)));
      return;
    }
  }
  const std::string rid = request.request_id;
  store_.Get(id, [responder, id, rid](std::optional<boost::json::object> stored) {
    if (!stored) {
      responder.Send(SessionNotFound(id, rid));
      return;
    }
    responder.Send(http::Response::Json(200, *stored));
  });
}

void Dialer::End(http::Request request, http::Responder responder) {
  const std::string id(request.PathParam("session_id"));
  std::shared_ptr<conversation::Session> session;
  {
    std::lock_guard lock(shared_->mutex);
    auto it = shared_->running.find(id);
    if (it != shared_->running.end()) session = it->second.session;
  }
  if (session && session->finished()) {
    // Ended, its record still being written: the same answer as once it is stored.
    responder.Send(http::ErrorResponse(409, "session_ended",
                                       "session '" + id + "' has already ended", request.request_id,
                                       {{"session", Render(session->Stats(), {})}}));
    return;
  }
  if (session) {
    session->Stop();
    responder.Send(http::Response::Json(202, {{"session_id", id}, {"status", "ending"}}));
    return;
  }
  const std::string rid = request.request_id;
  store_.Get(id, [responder, id, rid](std::optional<boost::json::object> stored) {
    if (!stored) {
      responder.Send(SessionNotFound(id, rid));
      return;
    }
    responder.Send(http::ErrorResponse(409, "session_ended",
                                       "session '" + id + "' has already ended", rid,
                                       {{"session", *stored}}));
  });
}

}  // namespace callgate::dialer
