#include "http/dispatcher.hpp"

#include "core/secure_compare.hpp"
#include "core/strings.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/stream_parser.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>

namespace callgate::http {
namespace {

std::optional<std::size_t> ContentLength(const Request& head) {
  const auto header = head.headers.Get("Content-Length");
  if (!header) return std::nullopt;
  std::size_t length = 0;
  const auto [end, ec] = std::from_chars(header->data(), header->data() + header->size(), length);
  if (ec != std::errc{} || end != header->data() + header->size()) return std::nullopt;
  return length;
}

std::string_view PresentedKey(const Request& head) {
  if (auto key = head.headers.Get("X-API-Key")) return core::TrimWhitespace(*key);
  if (auto auth = head.headers.Get("Authorization")) {
    std::string_view value = core::TrimWhitespace(*auth);
    if (value.size() > 7 && core::AsciiLower(value.substr(0, 7)) == "bearer ")
      return core::TrimWhitespace(value.substr(7));
  }
  return {};
}

}  // namespace

// application/json, application/json; charset=utf-8, application/problem+json ...
bool IsJsonContentType(std::string_view value) {
  const std::string media =
      core::AsciiLower(core::TrimWhitespace(value.substr(0, value.find(';'))));
  return media == "application/json" ||
         (media.starts_with("application/") && media.ends_with("+json"));
}

Response ErrorResponse(int status, std::string_view code, std::string_view message,
                       std::string_view request_id, boost::json::object details) {
  boost::json::object error{{"code", code}, {"message", message}, {"request_id", request_id}};
  if (!details.empty()) error["details"] = std::move(details);
  Response response = Response::Json(status, boost::json::object{{"error", std::move(error)}});
  return response;
}

JsonParseResult ParseJsonBody(std::string_view body, std::string_view request_id) {
  JsonParseResult result;
  boost::json::stream_parser parser;
  boost::system::error_code ec;
  const std::size_t consumed = parser.write_some(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (!ec) {
    result.value = parser.release();
    return result;
  }
  // Position of the failure: the byte where the parser stopped (the end for truncated input).
  const std::size_t offset = std::min(consumed, body.size());
  std::size_t line = 1;
  std::size_t column = 1;
  for (std::size_t i = 0; i < offset; ++i) {
    if (body[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  const std::string message = body.empty() ? std::string("the request body is empty; expected JSON")
                                           : "the request body is not valid JSON: " + ec.message() +
                                                 " at line " + std::to_string(line) + ", column " +
                                                 std::to_string(column);
  result.error = ErrorResponse(400, "invalid_json", message, request_id,
                               {{"offset", offset}, {"line", line}, {"column", column}});
  return result;
}

Dispatcher::Dispatcher(const Router& router, DispatchOptions options)
    : router_(router), options_(std::move(options)) {
  key_digests_.reserve(options_.api_keys.size());
  for (const std::string& key : options_.api_keys) {
    const auto digest = core::Sha256(key);
    if (!digest) throw std::runtime_error("SHA-256 is not available");
    key_digests_.push_back(*digest);
  }
}

// The time depends neither on where the strings differ, nor on their lengths, nor on which
// key matched (core::MatchesAnyKeyDigest, the keys' digests computed once).
bool Dispatcher::MatchesAnyKey(std::string_view candidate) const {
  return core::MatchesAnyKeyDigest(candidate, key_digests_);
}

Response Dispatcher::RenderError(int status, std::string_view code, std::string_view message,
                                 std::string_view request_id, boost::json::object details) const {
  if (options_.render_error) {
    return options_.render_error(status, code, message, request_id, std::move(details));
  }
  return ErrorResponse(status, code, message, request_id, std::move(details));
}

void Dispatcher::Observe(const Request& request, const Response& response) const {
  if (options_.observer) options_.observer(request, response);
}

Prepared Dispatcher::Prepare(const Request& head) const {
  Prepared prepared;
  prepared.body_limit = options_.default_max_body_bytes;
  prepared.match = router_.Match(head.method, head.path);
  const std::string& rid = head.request_id;

  switch (prepared.match.kind) {
    case RouteMatch::Kind::kNotFound:
      prepared.early =
          RenderError(404, "not_found", "no route for " + head.method + " " + head.path, rid);
      return prepared;
    case RouteMatch::Kind::kMethodNotAllowed:
      prepared.early = RenderError(405, "method_not_allowed",
                                   "method " + head.method + " is not allowed for " + head.path +
                                       "; allowed: " + prepared.match.allow,
                                   rid);
      prepared.early->headers.Set("Allow", prepared.match.allow);
      return prepared;
    case RouteMatch::Kind::kFound:
      break;
  }
  const Route& route = *prepared.match.route;

  if (route.options.requires_api_key && !options_.api_keys.empty()) {
    const std::string_view key = PresentedKey(head);
    if (key.empty()) {
      prepared.early = RenderError(401, "missing_api_key",
                                   "this route needs an API key: send it in the X-API-Key header "
                                   "(or Authorization: Bearer <key>)",
                                   rid);
    } else if (!MatchesAnyKey(key)) {
      prepared.early = RenderError(401, "invalid_api_key", "the API key is not valid", rid);
    }
    if (prepared.early) {
      prepared.early->headers.Set("WWW-Authenticate", "Bearer realm=\"callgate\"");
      return prepared;
    }
  }

  if (route.options.max_body_bytes != 0) prepared.body_limit = route.options.max_body_bytes;
  if (const auto length = ContentLength(head); length && *length > prepared.body_limit) {
    prepared.early = RenderError(413, "payload_too_large",
                                 "the request body is " + std::to_string(*length) +
                                     " bytes; the limit for this route is " +
                                     std::to_string(prepared.body_limit) + " bytes",
                                 rid, {{"limit_bytes", prepared.body_limit}});
    return prepared;
  }

  if (route.options.body == BodyKind::kJson) {
    const auto type = head.headers.Get("Content-Type");
    if (type && !IsJsonContentType(*type)) {
      prepared.early = RenderError(
          415, "unsupported_media_type",
          "Content-Type must be application/json, got '" + std::string(*type) + "'", rid);
      return prepared;
    }
  }
  return prepared;
}

void Dispatcher::Run(Prepared prepared, Request request, Responder responder) const {
  responder.set_request_id(request.request_id);
  if (prepared.early) {
    responder.Send(std::move(*prepared.early));
    return;
  }
  const Route& route = *prepared.match.route;
  if (route.websocket) {
    Response refusal = RenderError(
        426, "upgrade_required",
        "this endpoint speaks WebSocket: send an Upgrade: websocket request", request.request_id);
    refusal.headers.Set("Upgrade", "websocket");
    responder.Send(std::move(refusal));
    return;
  }
  request.path_params = std::move(prepared.match.params);
  if (route.options.body == BodyKind::kJson) {
    JsonParseResult parsed = ParseJsonBody(request.body, request.request_id);
    if (parsed.error) {
      responder.Send(std::move(*parsed.error));
      return;
    }
    request.json = std::move(parsed.value);
  }
  const std::string request_id = request.request_id;
  try {
    route.handler(std::move(request), responder);
  } catch (const std::exception& e) {
    spdlog::error("request {}: unhandled exception in {} {}: {}", request_id, route.method,
                  route.pattern, e.what());
    responder.Send(RenderError(500, "internal_error",
                               "an unexpected error occurred; quote the request id when "
                               "reporting it",
                               request_id));
  } catch (...) {
    spdlog::error("request {}: unknown exception in {} {}", request_id, route.method,
                  route.pattern);
    responder.Send(RenderError(500, "internal_error", "an unexpected error occurred", request_id));
  }
}

}  // namespace callgate::http
