#include "conversations/routes.hpp"

#include "conversations/list_query.hpp"
#include "conversations/render.hpp"
#include "http/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include <algorithm>
#include <memory>
#include <utility>
#include <variant>

namespace callgate::conversations {
namespace {

namespace json = boost::json;
using upstream::ApiError;
using upstream::ApiResult;

constexpr std::size_t kMaxConversationIdLength = 128;
constexpr std::size_t kMaxHostLength = 253;
constexpr http::RouteOptions kRouteOptions{.requires_api_key = true};

bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}
bool IsAlnum(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsHex(char c) {
  return IsDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool IsPort(std::string_view text) {
  if (text.empty() || text.size() > 5 || !std::all_of(text.begin(), text.end(), IsDigit)) {
    return false;
  }
  int port = 0;
  for (const char c : text)
    port = port * 10 + (c - '0');
  return port >= 1 && port <= 65535;
}

http::Response InvalidId(std::string_view id, std::string_view request_id) {
  return http::ErrorResponse(400, "invalid_conversation_id",
                             "conversation_id must be 1 to 128 characters from A-Z, a-z, 0-9, '_' "
                             "and '-', such as conv_9601k8pjchj6fnvamdmbsvdq5ptv",
                             request_id, {{"length", id.size()}});
}

void LogUpstreamFailure(std::string_view what, std::string_view request_id, const ApiError& error) {
  // A 404 is an answer, not a failure of ours; anything else means the caller got a 4xx/5xx
  // because of the upstream.
  if (error.kind == ApiError::Kind::kStatus && error.upstream_status == 404) {
    spdlog::debug("conversations: request {}: {}: upstream 404: {}", request_id, what,
                  error.message);
    return;
  }
  spdlog::warn("conversations: request {}: {} failed upstream (status {}, upstream request {}): {}",
               request_id, what, error.upstream_status, error.request_id, error.message);
}

http::Response AudioResponse(std::string content_type, std::string_view conversation_id) {
  http::Response response;
  response.status = 200;
  response.headers.Set("Content-Type", std::move(content_type));
  // The id is [A-Za-z0-9_-] (validated), so it needs no quoting beyond the quotes.
  response.headers.Set("Content-Disposition",
                       "inline; filename=\"" + std::string(conversation_id) + ".mp3\"");
  return response;
}

http::Response RecordingNotFound(const ApiError& error, std::string_view conversation_id,
                                 std::string_view request_id) {
  json::object details;
  details["upstream_status"] = error.upstream_status;
  if (!error.code.empty()) details["upstream_code"] = error.code;
  if (!error.request_id.empty()) details["upstream_request_id"] = error.request_id;
  return http::ErrorResponse(404, "recording_not_found",
                             "conversation " + std::string(conversation_id) +
                                 " has no recording (yet); ElevenLabs answered: " + error.message,
                             request_id, std::move(details));
}

void GetConversation(upstream::ElevenLabsApi& api, const std::string& public_base_url,
                     http::Request request, http::Responder responder) {
  std::string id(request.PathParam("conversation_id"));
  if (!IsValidConversationId(id)) {
    responder.Send(InvalidId(id, request.request_id));
    return;
  }
  std::string url =
      RecordingUrl(PublicBaseUrl(public_base_url, request.tls, request.headers.Get("Host")), id);
  api.GetConversationDocument(
      id, [responder, url = std::move(url), id,
           request_id = request.request_id](ApiResult<upstream::ConversationDocument> result) {
        if (const auto* error = std::get_if<ApiError>(&result)) {
          LogUpstreamFailure("GET conversation " + id, request_id, *error);
          responder.Send(upstream::ToGatewayResponse(*error, request_id));
          return;
        }
        // The answer is built in the document's arena, with the upstream's own text spliced in.
        const auto& document = std::get<upstream::ConversationDocument>(result);
        responder.Send(http::Response::JsonText(
            200, RenderConversationText(document.object, document.body, url)));
      });
}

void FetchUpstreamAudio(upstream::ElevenLabsApi& api, std::string id, std::string request_id,
                        http::Responder responder) {
  api.OpenConversationAudio(
      id, [responder, id, request_id](ApiResult<upstream::AudioStream> result) {
        if (auto* error = std::get_if<ApiError>(&result)) {
          LogUpstreamFailure("GET recording of " + id, request_id, *error);
          if (error->kind == ApiError::Kind::kStatus && error->upstream_status == 404) {
            responder.Send(RecordingNotFound(*error, id, request_id));
          } else {
            responder.Send(upstream::ToGatewayResponse(*error, request_id));
          }
          return;
        }
        // Streamed: the server pulls the upstream body chunk by chunk as the client reads, with
        // the upstream's Content-Length when it sent one (the stream's Length()).
        auto& audio = std::get<upstream::AudioStream>(result);
        http::Response response = AudioResponse(std::move(audio.content_type), id);
        response.stream = std::move(audio.body);
        responder.Send(std::move(response));
      });
}

void GetAudio(upstream::ElevenLabsApi& api, const LocalRecording& local_recording,
              http::Request request, http::Responder responder) {
  std::string id(request.PathParam("conversation_id"));
  if (!IsValidConversationId(id)) {
    responder.Send(InvalidId(id, request.request_id));
    return;
  }
  if (!local_recording) {
    FetchUpstreamAudio(api, std::move(id), std::move(request.request_id), std::move(responder));
    return;
  }
  local_recording(
      id, [&api, responder, id, request_id = request.request_id](std::optional<std::string> mp3) {
        if (mp3 && !mp3->empty()) {
          http::Response response = AudioResponse("audio/mpeg", id);
          response.body = std::move(*mp3);
          responder.Send(std::move(response));
          return;
        }
        FetchUpstreamAudio(api, id, request_id, responder);
      });
}

void ListConversations(upstream::ElevenLabsApi& api, http::Request request,
                       http::Responder responder) {
  ParsedConversationQuery parsed = ParseConversationQuery(request.query);
  if (parsed.error) {
    responder.Send(http::ErrorResponse(400, "invalid_query", parsed.error->message,
                                       request.request_id,
                                       {{"parameter", parsed.error->parameter}}));
    return;
  }
  api.ListConversations(
      std::move(parsed.upstream_query),
      [responder, request_id = request.request_id](ApiResult<json::object> result) {
        if (const auto* error = std::get_if<ApiError>(&result)) {
          LogUpstreamFailure("list conversations", request_id, *error);
          responder.Send(upstream::ToGatewayResponse(*error, request_id));
          return;
        }
        json::object& listing = std::get<json::object>(result);
        json::value* conversations = listing.if_contains("conversations");
        if (conversations == nullptr || !conversations->is_array()) {
          ApiError error;
          error.kind = ApiError::Kind::kBadResponse;
          error.upstream_status = 200;
          error.message = "the listing's conversations is not an array";
          LogUpstreamFailure("list conversations", request_id, error);
          responder.Send(upstream::ToGatewayResponse(error, request_id));
          return;
        }
        const json::value* next_cursor = listing.if_contains("next_cursor");
        const json::value* has_more = listing.if_contains("has_more");
        json::object answer;
        answer["conversations"] = std::move(*conversations);
        answer["next_cursor"] =
            next_cursor != nullptr && next_cursor->is_string() && !next_cursor->get_string().empty()
                ? *next_cursor
                : json::value();
        answer["has_more"] = has_more != nullptr && has_more->is_bool() && has_more->get_bool();
        responder.Send(http::Response::Json(200, answer));
      });
}

}  // namespace

bool IsValidConversationId(std::string_view id) {
  return !id.empty() && id.size() <= kMaxConversationIdLength &&
         std::all_of(id.begin(), id.end(),
                     [](char c) { return IsAlnum(c) || c == '_' || c == '-'; });
}

bool IsSaneHost(std::string_view host) {
  if (host.empty() || host.size() > kMaxHostLength + 6) return false;
  std::string_view name = host;
  std::string_view port;
  if (host.front() == '[') {
    const std::size_t close = host.find(']');
    if (close == std::string_view::npos || close < 3) return false;
    const std::string_view literal = host.substr(1, close - 1);
    if (literal.size() > 45 || !std::all_of(literal.begin(), literal.end(), [](char c) {
          return IsHex(c) || c == ':' || c == '.';
        })) {
      return false;
    }
    const std::string_view rest = host.substr(close + 1);
    if (rest.empty()) return true;
    return rest.front() == ':' && IsPort(rest.substr(1));
  }
  if (const std::size_t colon = host.find(':'); colon != std::string_view::npos) {
    name = host.substr(0, colon);
    port = host.substr(colon + 1);
    if (!IsPort(port)) return false;
  }
  return !name.empty() && name.size() <= kMaxHostLength && name.front() != '.' &&
         name.front() != '-' && std::all_of(name.begin(), name.end(), [](char c) {
           return IsAlnum(c) || c == '.' || c == '-';
         });
}

std::string PublicBaseUrl(std::string_view public_base_url, bool tls,
                          std::optional<std::string_view> host) {
  if (!public_base_url.empty()) {
    while (public_base_url.ends_with('/'))
      public_base_url.remove_suffix(1);
    if (!public_base_url.empty()) return std::string(public_base_url);
  }
  if (!host || !IsSaneHost(*host)) return {};
  return (tls ? "https://" : "http://") + std::string(*host);
}

std::string RecordingUrl(std::string_view base, std::string_view conversation_id) {
  return std::string(base) + "/api/conversations/" + upstream::EncodeComponent(conversation_id) +
         "/audio";
}

void AddConversationRoutes(http::Router& router, upstream::ElevenLabsApi& api,
                           ConversationRoutesOptions options) {
  auto shared = std::make_shared<const ConversationRoutesOptions>(std::move(options));
  router.Add(
      "GET", "/api/conversations",
      [&api](http::Request request, http::Responder responder) {
        ListConversations(api, std::move(request), std::move(responder));
      },
      kRouteOptions);
  router.Add(
      "GET", "/api/conversations/{conversation_id}",
      [&api, shared](http::Request request, http::Responder responder) {
        GetConversation(api, shared->public_base_url, std::move(request), std::move(responder));
      },
      kRouteOptions);
  router.Add(
      "GET", "/api/conversations/{conversation_id}/audio",
      [&api, shared](http::Request request, http::Responder responder) {
        GetAudio(api, shared->local_recording, std::move(request), std::move(responder));
      },
      kRouteOptions);
}

}  // namespace callgate::conversations
