// Routes: method + path pattern -> handler, with per-route body and auth options.
//
// Patterns are absolute paths whose segments are literals or "{name}" parameters, e.g.
// "/api/calls/{call_id}". A literal segment beats a parameter at the same position. HEAD is
// served by the GET route of the same path. The router is built once at start-up and then only
// read, so concurrent Match() calls are safe.
#pragma once

#include "http/message.hpp"
#include "http/websocket.hpp"

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::http {

// Delivers a handler's response to the connection. Copyable; Send() may be called from any
// thread, once. If every copy is destroyed without Send() (a handler bug), the client still gets
// a 500 instead of a hang.
class Responder {
 public:
  using Deliver = std::function<void(Response)>;
  explicit Responder(Deliver deliver);
  void Send(Response response) const;
  const std::string& request_id() const;
  void set_request_id(std::string id);

 private:
  struct State;
  std::shared_ptr<State> state_;
};

using Handler = std::function<void(Request request, Responder responder)>;

enum class BodyKind {
  kNone,  // the route takes no body (GET-like); a body is read and ignored under the default limit
  kJson,  // Content-Type must be JSON (or absent); parsed into Request::json before the handler
  kRaw,   // any body, passed as bytes (e.g. a webhook that verifies a signature over raw bytes)
};

struct RouteOptions {
  BodyKind body = BodyKind::kNone;
  std::size_t max_body_bytes = 0;  // 0 = the server's default (MAX_BODY_BYTES)
  bool requires_api_key = false;   // X-API-Key or Authorization: Bearer, checked against API_KEYS
};

struct Route {
  std::string method;
  std::string pattern;  // also the metrics label of the route
  Handler handler;
  RouteOptions options;
  WebSocketAcceptor websocket;        // set for WebSocket routes (method GET)
  std::vector<std::string> segments;  // pattern split on '/'
};

struct RouteMatch {
  enum class Kind { kFound, kNotFound, kMethodNotAllowed };
  Kind kind = Kind::kNotFound;
  const Route* route = nullptr;
  std::map<std::string, std::string, std::less<>> params;  // percent-decoded
  std::string allow;                                       // for kMethodNotAllowed: "GET, HEAD"
};

class Router {
 public:
  // Throws std::invalid_argument for a malformed pattern or a duplicate method+pattern
  // (a programming error, found at start-up).
  void Add(std::string method, std::string pattern, Handler handler, RouteOptions options = {});

  // A WebSocket endpoint: GET with an Upgrade request. A plain GET gets 426 Upgrade Required.
  void AddWebSocket(std::string pattern, WebSocketAcceptor acceptor, RouteOptions options = {});

  RouteMatch Match(std::string_view method, std::string_view path) const;
  const std::vector<std::unique_ptr<Route>>& routes() const { return routes_; }

 private:
  std::vector<std::unique_ptr<Route>> routes_;
};

}  // namespace callgate::http
