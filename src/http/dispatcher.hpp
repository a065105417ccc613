// From a parsed request to a response, without sockets: routing, API-key auth, body limits,
// content type, JSON parsing, the JSON error envelope, and the last-resort 500.
//
// The server calls Prepare() once the request head is read (so a request that will be refused
// never has its body read) and Run() once the body is in. Both are const and thread-safe.
#pragma once

#include "http/message.hpp"
#include "http/router.hpp"

#include <boost/json/object.hpp>

#include <array>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::http {

// application/json or application/*+json, parameters (charset=...) ignored, any case.
bool IsJsonContentType(std::string_view value);

// {"error":{"code":..., "message":..., "request_id":..., "details":{...}}}
Response ErrorResponse(int status, std::string_view code, std::string_view message,
                       std::string_view request_id, boost::json::object details = {});

// Parses a JSON body; on failure the error response is a 400 `invalid_json` whose details give
// the byte offset, line and column where parsing stopped.
struct JsonParseResult {
  std::optional<boost::json::value> value;
  std::optional<Response> error;
};
JsonParseResult ParseJsonBody(std::string_view body, std::string_view request_id);

// Renders an error the server or dispatcher produces (404, 405, 408, 413, ...). The default is
// ErrorResponse; the simulator renders the upstream's FastAPI shapes instead.
using ErrorRenderer =
    std::function<Response(int status, std::string_view code, std::string_view message,
                           std::string_view request_id, boost::json::object details)>;

// Sees every request that got as far as its head being read, with its body when it was read,
// and the response about to be written (the simulator's journal). Called on an I/O thread.
using RequestObserver = std::function<void(const Request& request, const Response& response)>;

struct DispatchOptions {
  std::size_t default_max_body_bytes = 1024 * 1024;
  std::vector<std::string> api_keys;  // empty = routes that require a key are open (see config)
  ErrorRenderer render_error;         // empty = ErrorResponse
  RequestObserver observer;           // empty = none
};

struct Prepared {
  std::optional<Response> early;  // set when the request is refused before its body is read
  RouteMatch match;
  std::size_t body_limit = 0;
};

class Dispatcher {
 public:
  Dispatcher(const Router& router, DispatchOptions options);

  // `head` is the request without its body (Content-Length may announce one).
  Prepared Prepare(const Request& head) const;

  // Runs the matched route's handler (JSON routes: after parsing the body). An exception from a
  // handler becomes a 500 `internal_error` and is logged with the request id.
  void Run(Prepared prepared, Request request, Responder responder) const;

  const Router& router() const { return router_; }

  Response RenderError(int status, std::string_view code, std::string_view message,
                       std::string_view request_id, boost::json::object details = {}) const;
  void Observe(const Request& request, const Response& response) const;
  bool observed() const { return static_cast<bool>(options_.observer); }

 private:
  // Constant time, as core::MatchesAnyKey: every key's digest is compared.
  bool MatchesAnyKey(std::string_view candidate) const;

  const Router& router_;
  DispatchOptions options_;
  std::vector<std::array<unsigned char, 32>> key_digests_;  // SHA-256 of each api_keys entry
};

}  // namespace callgate::http
