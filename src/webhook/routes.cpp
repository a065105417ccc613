#include "webhook/routes.hpp"

#include "core/logging.hpp"
#include "http/dispatcher.hpp"

#include <spdlog/spdlog.h>
#include <boost/json.hpp>

#include <charconv>
#include <memory>

namespace callgate::webhook {
namespace {

struct State {
  Inbox& inbox;
  const core::Clock& clock;
  WebhookRouteOptions options;
};

http::Response Busy(std::string_view message, std::string_view request_id) {
  http::Response response = http::ErrorResponse(503, "inbox_busy", message, request_id);
  response.headers.Set("Retry-After", "1");
  return response;
}

http::Response EventErrorResponse(const EventError& error, std::string_view request_id) {
  boost::json::object details;
  if (!error.field.empty()) details["field"] = error.field;
  if (error.offset) {
    details["offset"] = *error.offset;
    details["line"] = error.line;
    details["column"] = error.column;
  }
  return http::ErrorResponse(400, error.code, error.message, request_id, std::move(details));
}

// Verifies, parses and submits one delivery; answers through `responder` (now for refusals,
// after the commit otherwise).
void Receive(const State& state, http::Request request, const http::Responder& responder) {
  const std::string& rid = request.request_id;
  const VerifyResult verified = Verify(request.headers.Get(kSignatureHeader), request.body,
                                       state.options.verify, state.clock);
  if (!verified.ok()) {
    const std::string_view code = ErrorCode(*verified.error);
    spdlog::warn("request {}: webhook from {} refused: {} ({} bytes)", rid, request.remote_address,
                 code, request.body.size());
    responder.Send(http::ErrorResponse(401, code, verified.message, rid));
    return;
  }
  const std::size_t body_bytes = request.body.size();
  EventResult parsed = ParseEvent(std::move(request.body));
  if (!parsed) {
    spdlog::warn("request {}: webhook body refused: {} {} ({} bytes)", rid, parsed.error().code,
                 parsed.error().field, body_bytes);
    responder.Send(EventErrorResponse(parsed.error(), rid));
    return;
  }
  Submission submission{.event = std::move(*parsed),
                        .source = Source::kWebhook,
                        .verification = std::string(VerificationName(verified.verification)),
                        .replay_key = verified.replay_key};
  const std::string type = submission.event.type;
  const std::string conversation = submission.event.conversation_id;
  state.inbox.Submit(
      std::move(submission), [responder, rid, type, conversation](SubmitResult result) {
        switch (result.status) {
          case SubmitStatus::kStored:
          case SubmitStatus::kDuplicate:
            spdlog::debug("request {}: webhook {} for {} {} as {}", rid, type, conversation,
                          SubmitStatusName(result.status), result.event_id);
            // Formatted directly: this runs on the database thread, the inbox's serial stage.
            responder.Send(http::Response::JsonText(
                200, R"({"status":")" + std::string(SubmitStatusName(result.status)) +
                         R"(","event_id":")" + core::JsonEscape(result.event_id) + R"("})"));
            return;
          case SubmitStatus::kBusy:
            spdlog::warn("request {}: webhook {} for {} not accepted: {}", rid, type, conversation,
                         result.message);
            responder.Send(Busy(result.message, rid));
            return;
          case SubmitStatus::kFailed:
            spdlog::error("request {}: webhook {} for {} not stored: {}", rid, type, conversation,
                          result.message);
            responder.Send(http::ErrorResponse(500, "store_failed", result.message, rid));
            return;
        }
      });
}

std::optional<std::int64_t> ParseInteger(std::string_view text) {
  std::int64_t value = 0;
  if (text.empty() || text.size() > 18) return std::nullopt;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

http::Response BadParameter(std::string_view name, std::string message, std::string_view rid) {
  return http::ErrorResponse(400, "invalid_parameter", message, rid, {{"parameter", name}});
}

void ListEvents(const State& state, const http::Request& request,
                const http::Responder& responder) {
  const std::string& rid = request.request_id;
  EventFilter filter;
  filter.type = request.QueryParam("type").value_or("");
  filter.conversation_id = request.QueryParam("conversation_id").value_or("");
  for (const char* name : {"since", "until"}) {
    if (auto text = request.QueryParam(name)) {
      const auto value = ParseInteger(*text);
      if (!value) {
        responder.Send(BadParameter(name, std::string(name) + " must be unix seconds", rid));
        return;
      }
      (std::string_view(name) == "since" ? filter.since_unix : filter.until_unix) = value;
    }
  }
  std::size_t limit = 50;
  if (auto text = request.QueryParam("limit")) {
    const auto value = ParseInteger(*text);
    if (!value || *value < 1 || *value > 1000) {
      responder.Send(BadParameter("limit", "limit must be an integer from 1 to 1000", rid));
      return;
    }
    limit = static_cast<std::size_t>(*value);
  }
  std::string cursor = request.QueryParam("cursor").value_or("");
  if (!cursor.empty()) {
    const auto value = ParseInteger(cursor);
    if (!value || *value <= 0) {
      responder.Send(BadParameter("cursor", "cursor must be a next_cursor from a listing", rid));
      return;
    }
  }
  const bool posted = state.inbox.List(
      std::move(filter), std::move(cursor), limit,
      [responder, rid](std::optional<EventPage> page, std::string error) {
        if (!page) {
          spdlog::error("request {}: listing webhook events failed: {}", rid, error);
          responder.Send(
              http::ErrorResponse(500, "store_failed", "the events could not be listed", rid));
          return;
        }
        boost::json::array events;
        for (const EventRecord& record : page->events) {
          events.push_back(EventRecordJson(record, false));
        }
        boost::json::object body{{"events", std::move(events)}};
        if (page->next_cursor.empty()) {
          body["next_cursor"] = nullptr;
        } else {
          body["next_cursor"] = page->next_cursor;
        }
        responder.Send(http::Response::Json(200, body));
      });
  if (!posted) responder.Send(Busy("the database is not accepting work", rid));
}

void GetEvent(const State& state, const http::Request& request, const http::Responder& responder) {
  const std::string rid = request.request_id;
  std::string event_id(request.PathParam("event_id"));
  Forwarder* forwarder = state.options.forwarder;
  const bool posted = state.inbox.Get(event_id, [responder, rid, event_id, forwarder](
                                                    std::optional<EventRecord> record,
                                                    std::string error) {
    if (!error.empty()) {
      spdlog::error("request {}: reading webhook event failed: {}", rid, error);
      responder.Send(http::ErrorResponse(500, "store_failed", "the event could not be read", rid));
      return;
    }
    if (!record) {
      responder.Send(http::ErrorResponse(404, "event_not_found",
                                         "no webhook event has the id " + event_id, rid));
      return;
    }
    auto body = std::make_shared<boost::json::object>(EventRecordJson(*record, true));
    if (forwarder == nullptr ||
        !forwarder->Deliveries(event_id,
                               [responder, body](std::vector<Delivery> deliveries, std::string) {
                                 boost::json::array list;
                                 for (const Delivery& delivery : deliveries)
                                   list.push_back(DeliveryJson(delivery));
                                 (*body)["deliveries"] = std::move(list);
                                 responder.Send(http::Response::Json(200, *body));
                               })) {
      responder.Send(http::Response::Json(200, *body));
    }
  });
  if (!posted) responder.Send(Busy("the database is not accepting work", rid));
}

void ReplayEvent(const State& state, const http::Request& request,
                 const http::Responder& responder) {
  const std::string rid = request.request_id;
  std::string event_id(request.PathParam("event_id"));
  if (state.options.forwarder == nullptr) {
    responder.Send(http::ErrorResponse(409, "forwarding_not_configured",
                                       "no forwarding target is configured (FORWARD_WEBHOOK_URLS)",
                                       rid));
    return;
  }
  const bool posted = state.options.forwarder->Replay(
      event_id, [responder, rid, event_id](std::size_t rows, std::string error) {
        if (!error.empty()) {
          spdlog::error("request {}: replaying webhook event failed: {}", rid, error);
          responder.Send(
              http::ErrorResponse(500, "store_failed", "the event could not be replayed", rid));
        } else if (rows == 0) {
          responder.Send(http::ErrorResponse(404, "event_not_found",
                                             "no webhook event has the id " + event_id, rid));
        } else {
          responder.Send(http::Response::Json(
              202, {{"status", "queued"}, {"event_id", event_id}, {"deliveries", rows}}));
        }
      });
  if (!posted) responder.Send(Busy("the database is not accepting work", rid));
}

}  // namespace

boost::json::object EventRecordJson(const EventRecord& record, bool with_payload) {
  boost::json::object json{{"event_id", record.event_id},
                           {"type", record.type},
                           {"conversation_id", nullptr},
                           {"agent_id", nullptr},
                           {"event_timestamp", nullptr},
                           {"received_at_ms", record.received_at_ms},
                           {"source", record.source},
                           {"verification", record.verification},
                           {"payload_bytes", record.payload_bytes},
                           {"has_recording", !record.recording.empty()}};
  if (!record.conversation_id.empty()) json["conversation_id"] = record.conversation_id;
  if (!record.agent_id.empty()) json["agent_id"] = record.agent_id;
  if (record.event_timestamp) json["event_timestamp"] = *record.event_timestamp;
  if (with_payload) json["payload"] = record.payload;  // the bytes as received (valid UTF-8 JSON)
  return json;
}

boost::json::object DeliveryJson(const Delivery& delivery) {
  boost::json::object json{
      {"target", delivery.target},     {"state", delivery.state},
      {"attempts", delivery.attempts}, {"next_attempt_ms", delivery.next_attempt_ms},
      {"last_status", nullptr},        {"last_error", nullptr}};
  if (delivery.last_status != 0) json["last_status"] = delivery.last_status;
  if (!delivery.last_error.empty()) json["last_error"] = delivery.last_error;
  return json;
}

void AddWebhookRoutes(http::Router& router, Inbox& inbox, const core::Clock& clock,
                      WebhookRouteOptions options) {
  const std::size_t max_body = options.max_body_bytes;
  auto state = std::make_shared<const State>(State{inbox, clock, std::move(options)});

  router.Add("POST", "/api/webhooks/elevenlabs",
             [state](http::Request request, http::Responder responder) {
               if (request.body.size() < state->options.offload_bytes) {
                 Receive(*state, std::move(request), responder);
                 return;
               }
               const std::string rid = request.request_id;
               auto moved = std::make_shared<http::Request>(std::move(request));
               if (!state->inbox.Offload([state, moved, responder] {
                     Receive(*state, std::move(*moved), responder);
                   })) {
                 responder.Send(Busy("the webhook inbox's work queue is full", rid));
               }
             },
             {.body = http::BodyKind::kRaw, .max_body_bytes = max_body});

  router.Add("GET", "/api/webhooks/events",
             [state](http::Request request, http::Responder responder) {
               ListEvents(*state, request, responder);
             },
             {.requires_api_key = true});

  router.Add("GET", "/api/webhooks/events/{event_id}",
             [state](http::Request request, http::Responder responder) {
               GetEvent(*state, request, responder);
             },
             {.requires_api_key = true});

  router.Add("POST", "/api/webhooks/events/{event_id}/replay",
             [state](http::Request request, http::Responder responder) {
               ReplayEvent(*state, request, responder);
             },
             {.requires_api_key = true});
}

}  // namespace callgate::webhook
