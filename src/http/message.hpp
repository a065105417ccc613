// The HTTP request and response as handlers see them: plain values, no sockets, no Beast.
//
// The server (server.cpp) converts Beast messages to and from these types; handlers and the
// dispatcher work only with them, so they are unit-tested without a network.
#pragma once

#include <boost/json/value.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callgate::http {

// Header fields in arrival order; names compare case-insensitively.
class Headers {
 public:
  std::optional<std::string_view> Get(std::string_view name) const;
  void Set(std::string name, std::string value);  // replaces every field of that name
  void Add(std::string name, std::string value);
  const std::vector<std::pair<std::string, std::string>>& All() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

struct Request {
  std::string method;  // "GET", upper case as received
  std::string target;  // raw request target, "/api/calls?status=done"
  std::string path;    // target without the query, still percent-encoded
  std::string query;   // raw query string without '?', may be empty
  Headers headers;
  std::string body;
  std::string remote_address;
  bool tls = false;        // arrived over HTTPS
  std::string request_id;  // from X-Request-Id when acceptable, otherwise generated

  // Filled by the dispatcher.
  std::map<std::string, std::string, std::less<>> path_params;  // percent-decoded
  std::optional<boost::json::value> json;  // parsed body, for routes that take JSON

  std::string_view PathParam(std::string_view name) const;
  // First value of a query parameter, percent-decoded ('+' is a space).
  std::optional<std::string> QueryParam(std::string_view name) const;
};

struct Response {
  int status = 200;
  Headers headers;
  std::string body;
  // Fault injection (the simulator): drop the connection with a TCP reset, writing nothing.
  bool abort_connection = false;

  static Response Json(int status, const boost::json::value& value);
  static Response Text(int status, std::string text,
                       std::string content_type = "text/plain; charset=utf-8");
};

}  // namespace callgate::http
