// The gateway's conversation routes: thin handlers over upstream::ElevenLabsApi and the pure
// rendering in render.hpp / list_query.hpp. Every route requires an API key
// (RouteOptions::requires_api_key) and every upstream failure is answered through
// upstream::ToGatewayResponse, the one mapping (401 -> 502 upstream_auth_failed, 404 -> 404,
// 5xx -> 502, timeout -> 504, a non-JSON answer -> 502 upstream_bad_response, ...).
//
//   GET /api/conversations/{conversation_id}
//       200 with RenderConversation (render.hpp). An id outside [A-Za-z0-9_-]{1,128} is a 400
//       `invalid_conversation_id` and nothing is sent upstream. An unknown id is the upstream's
//       404, answered as 404 `not_found` in the envelope.
//       recording_url = <base>/api/conversations/<id>/audio, where <base> is
//       ConversationRoutesOptions::public_base_url when set (PUBLIC_BASE_URL), otherwise
//       "http://" (or "https://" when the request came over TLS) + the request's Host header.
//       X-Forwarded-* headers are NOT trusted (behind a proxy, set PUBLIC_BASE_URL). A missing
//       Host, or one that is not a plain host[:port] (IsSaneHost), is never reflected: the URL
//       is then relative, "/api/conversations/<id>/audio".
//
//   GET /api/conversations/{conversation_id}/audio   (HEAD is served by this GET route)
//       First asks ConversationRoutesOptions::local_recording (the webhook inbox's stored
//       post_call_audio MP3) when set; a non-empty answer is served as audio/mpeg. Otherwise
//       GET /v1/convai/conversations/{id}/audio upstream (ElevenLabsApi::OpenConversationAudio),
//       streamed: 200 with the upstream Content-Type (audio/...) and, when the upstream sent one,
//       its Content-Length (else Transfer-Encoding: chunked); the bytes are pulled from the
//       upstream only as fast as the client reads them, one bounded chunk at a time, so the
//       recording is never held whole in memory. An upstream failure once the headers are out
//       cuts the connection (the client sees a truncated body). An upstream 404 (no such
//       conversation, or no recording yet) is a 404 `recording_not_found` whose message says
//       the conversation has no recording (yet) and quotes the upstream message. Same id rule.
//
//   GET /api/conversations
//       Proxies the upstream listing (list_query.hpp: parameters validated, then passed on).
//       200 {"conversations":[upstream items as received],"next_cursor":str|null,
//       "has_more":bool}. An unknown parameter, a repeated single-valued one or a bad value is
//       a 400 `invalid_query` naming it (details.parameter), with no upstream request.
//
// Threading: handlers return at once; answers are sent from the ElevenLabsApi callbacks (an I/O
// or scheduler thread) or the local_recording callback through the thread-safe http::Responder.
// `api` must outlive the router's use.
#pragma once

#include "http/message.hpp"
#include "http/router.hpp"
#include "upstream/elevenlabs.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::conversations {

// Answers `done` exactly once, from any thread: the stored MP3 bytes of the conversation, or
// nullopt (or an empty string) when it has none.
using LocalRecording = std::function<void(
    std::string conversation_id, std::function<void(std::optional<std::string> mp3)> done)>;

struct ConversationRoutesOptions {
  // How clients reach this gateway, e.g. "https://abc.ngrok.app" or "https://example.com/cg";
  // may contain a path; trailing slashes are ignored. Empty = derived from each request's Host.
  std::string public_base_url;
  LocalRecording local_recording;  // empty = always fetch the recording upstream
};

void AddConversationRoutes(http::Router& router, upstream::ElevenLabsApi& api,
                           ConversationRoutesOptions options);

// [A-Za-z0-9_-]{1,128}: what ElevenLabs conversation ids look like (conv_...), and nothing that
// could change the upstream path.
bool IsValidConversationId(std::string_view id);

// A Host header worth putting in a URL: a DNS name or IPv4 address ([A-Za-z0-9.-], not starting
// with '.' or '-', at most 253 characters) or a bracketed IPv6 literal, optionally followed by
// ":port" (1..65535).
bool IsSaneHost(std::string_view host);

// The base of the URLs the gateway hands out (see above): public_base_url without trailing
// slashes, else scheme://host, else "" (relative URLs).
std::string PublicBaseUrl(std::string_view public_base_url, bool tls,
                          std::optional<std::string_view> host);

// <base>/api/conversations/<id>/audio (`id` percent-encoded).
std::string RecordingUrl(std::string_view base, std::string_view conversation_id);

}  // namespace callgate::conversations
