// From a parsed request to a response, without sockets: routing, API-key auth, body limits,
// content type, JSON parsing, the JSON error envelope, and the last-resort 500.
//
// The server calls Prepare() once the request head is read (so a request that will be refused
// never has its body read) and Run() once the body is in. Both are const and thread-safe.
#pragma once

#include "http/message.hpp"
#include "http/router.hpp"

#include <boost/json/object.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::http {

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

struct DispatchOptions {
  std::size_t default_max_body_bytes = 1024 * 1024;
  std::vector<std::string> api_keys;  // empty = routes that require a key are open (see config)
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

 private:
  const Router& router_;
  DispatchOptions options_;
};

}  // namespace callgate::http
